"""The composition root: the Typer CLI (``api.cli``) and, later, the FastAPI app. Wires policy into sync."""
