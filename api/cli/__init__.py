"""``syncwarden``: the command line. One module per command group; this module only assembles them.

Commands print results to stdout and errors to stderr, and exit 0 (ok/allowed), 1 (denied), 2 (invalid
input or usage) or 3 (could not decide, retryable).
"""

from __future__ import annotations

import sys

import typer

from api.cli import admin, app_cmd, audit, check, proj, sandbox_cmd, serve_cmd
from api.cli import login as login_cmd

__all__ = ["cli", "main"]

cli = typer.Typer(
    name="syncwarden",
    help="GitOps delivery for Kubernetes, gated by Argo CD-compatible project policy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
cli.command(name="check")(check.check)
cli.add_typer(admin.app, name="admin")
cli.add_typer(proj.app, name="proj")
cli.add_typer(app_cmd.app, name="app")
cli.add_typer(audit.app, name="audit")
cli.command(name="sandbox")(sandbox_cmd.sandbox)
cli.command(name="serve")(serve_cmd.serve)
cli.command(name="login")(login_cmd.login)
cli.command(name="logout")(login_cmd.logout)


def main() -> None:
    try:
        cli(prog_name="syncwarden")
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)
