"""Settings, logging setup, safe YAML loading and packaged assets (Casbin model, built-in policy, examples).

Imports none of the other syncwarden packages.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["asset_path", "read_asset"]


def read_asset(name: str) -> str:
    """Text of a file packaged in ``config/`` (``model.conf``, ``builtin-policy.csv``, ``examples/...``)."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def asset_path(name: str) -> str:
    """Filesystem path of a packaged asset (the package is installed unzipped)."""
    return str(resources.files(__name__).joinpath(name))
