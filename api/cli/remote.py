"""The one place that decides "local or server?" for a CLI command, and keeps the stored login.

Who calls: ``proj``, ``proj role``, ``proj windows``, ``audit``, ``check`` and the app commands call
:func:`target` first; a :class:`Remote` means server mode, None means the local database as before.
``syncwarden login``/``logout`` (:mod:`api.cli.login`) write and remove the stored login.

The server is ``--server``, else ``SYNCWARDEN_SERVER``, else the one stored by ``syncwarden login``. The token is
``--auth-token``, else ``SYNCWARDEN_TOKEN``, else the stored one — and the stored token is only ever sent to the
server it was issued by. The login lives in ``$XDG_CONFIG_HOME/syncwarden/config.json`` (``~/.config`` when the
variable is unset), written atomically with mode 0600 in a 0700 directory. No message prints a token.

Failures of a request map onto the exit codes of :mod:`api.cli.common`: 1 denied (403, with the violations),
2 any other 4xx, 3 a 5xx, a timeout or a server that cannot be reached.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from api import client
from api.cli.common import EXIT_INVALID, err_console, fail

__all__ = [
    "AuthTokenOpt",
    "Remote",
    "ServerOpt",
    "StoredLogin",
    "config_path",
    "connect",
    "forget_login",
    "load_login",
    "save_login",
    "target",
]

ServerOpt = Annotated[
    str | None,
    typer.Option("--server", help="Talk to this syncwarden server (default: SYNCWARDEN_SERVER, or `login`'s)."),
]
AuthTokenOpt = Annotated[
    str | None,
    typer.Option("--auth-token", help="Bearer token for the server (default: SYNCWARDEN_TOKEN, or `login`'s)."),
]


@dataclass(frozen=True)
class StoredLogin:
    server: str
    token: str


@dataclass(frozen=True)
class Remote:
    """Server mode: where to send requests, with which token (None: anonymous)."""

    server: str
    token: str | None

    def __repr__(self) -> str:  # the token stays out of every rendering
        return f"Remote(server={self.server!r})"


def config_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "syncwarden" / "config.json"


def load_login() -> StoredLogin | None:
    """The stored login, or None (no file, or one that is unreadable: then say so and ignore it)."""
    file = config_path()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        err_console().print(f"warning: {file}: ignored, cannot be read ({type(exc).__name__})", markup=False)
        return None
    server, token = (data.get("server"), data.get("token")) if isinstance(data, dict) else (None, None)
    if not isinstance(server, str) or not server:
        return None
    return StoredLogin(server=server, token=token if isinstance(token, str) else "")


def save_login(server: str, token: str) -> Path:
    """Store ``{server, token}`` (mode 0600, replaced atomically so no reader sees half a file)."""
    file = config_path()
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"server": server, "token": token}, out)
            out.write("\n")
        os.chmod(partial, 0o600)  # O_CREAT's mode is filtered by the umask; be explicit
        os.replace(partial, file)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return file


def forget_login() -> bool:
    """Remove the stored login; False when there was none."""
    try:
        config_path().unlink()
    except FileNotFoundError:
        return False
    return True


def _server_url(value: str, where: str) -> str:
    try:
        return client.normalize_server(value)
    except ValueError as exc:
        fail(f"{where}: {exc}", EXIT_INVALID)


def target(server: str | None, auth_token: str | None) -> Remote | None:
    """Server mode (a :class:`Remote`) or local mode (None) for this command line and environment."""
    stored = load_login()
    if server:
        url = _server_url(server, "--server")
    elif os.environ.get("SYNCWARDEN_SERVER"):
        url = _server_url(os.environ["SYNCWARDEN_SERVER"], "SYNCWARDEN_SERVER")
    elif stored is not None:
        url = _server_url(stored.server, str(config_path()))
    else:
        if auth_token:
            fail("--auth-token needs a server: give --server URL, set SYNCWARDEN_SERVER, or `syncwarden login`")
        return None
    token = auth_token or os.environ.get("SYNCWARDEN_TOKEN") or None
    if token is None and stored is not None and stored.token and _same(stored.server, url):
        token = stored.token
    return Remote(server=url, token=token)


def _same(stored: str, url: str) -> bool:
    try:
        return client.normalize_server(stored) == url
    except ValueError:
        return False


def _report(exc: client.ClientError) -> None:
    out = err_console()
    suffix = f" (request {exc.request_id})" if exc.request_id else ""
    out.print(f"error: {exc.message}{suffix}", markup=False)
    for v in exc.violations:
        line = f"  - [{v.get('code', '')}] {v.get('message', '')}"
        if v.get("field"):
            line += f" (at {v['field']})"
        out.print(line, markup=False)


@contextlib.contextmanager
def connect(remote: Remote, *, timeout: float = client.DEFAULT_TIMEOUT) -> Iterator[client.Client]:
    """A client for ``remote``; a failed request prints the error (and its violations) and exits 1, 2 or 3."""
    try:
        api = client.Client(remote.server, token=remote.token, timeout=timeout)
    except ValueError as exc:
        fail(str(exc), EXIT_INVALID)
    try:
        yield api
    except client.ClientError as exc:
        _report(exc)
        raise typer.Exit(exc.exit_code) from None
    finally:
        api.close()
