"""``syncwarden login`` and ``syncwarden logout``: a session with a syncwarden server for the CLI's server mode.

``login`` posts the user name and password to ``POST /api/v1/session`` (Argo CD's session API) and stores
``{server, token}`` through :mod:`api.cli.remote` (mode 0600); afterwards the commands that support server mode
talk to that server. The password comes from stdin with ``--password-stdin`` (for scripts: nothing on the command
line or in the process list), else from a hidden prompt. ``logout`` ends the session on the server (best effort)
and removes the stored login. Neither ever prints the token.

Exit codes: 0 ok, 2 wrong credentials or bad input, 3 server unreachable or failing.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from api import client
from api.cli.common import err_console, fail
from api.cli.remote import config_path, connect, forget_login, load_login, save_login, target

__all__ = ["login", "logout"]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password.rstrip("\r")
    else:
        password = typer.prompt("Password", hide_input=True)
    if not password:
        fail("the password is empty")
    return password


def login(
    server: Annotated[
        str | None, typer.Option("--server", help="Server URL, e.g. http://127.0.0.1:8080 (default: the stored one).")
    ] = None,
    username: Annotated[str, typer.Option("--username", help="Local account name, e.g. admin.")] = "admin",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Log in to a syncwarden server and store the session token for the other commands."""
    remote = target(server, None)
    if remote is None:
        fail("give --server URL (or set SYNCWARDEN_SERVER)")
    password = _password(password_stdin)
    with connect(remote) as api:
        token = api.login(username, password)
    file = save_login(remote.server, token)
    err_console().print(f"logged in to {remote.server} as {username!r} (session stored in {file})", markup=False)


def logout() -> None:
    """End the stored session on its server and forget it."""
    stored = load_login()
    if stored is None:
        err_console().print("not logged in; nothing to do", markup=False)
        return
    if stored.token:
        try:
            with client.Client(stored.server, token=stored.token) as api:
                api.delete("/api/v1/session")
        except (client.ClientError, ValueError) as exc:
            err_console().print(f"warning: the server did not end the session: {exc}", markup=False)
    forget_login()
    err_console().print(f"logged out of {stored.server} (removed {config_path()})", markup=False)
