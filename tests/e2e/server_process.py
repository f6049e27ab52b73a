"""A real syncwarden API server in a subprocess (uvicorn on 127.0.0.1, SQLite in a tmp dir), for the tests of the
CLI's server mode and the HTTP client.

The child binds a free port itself and passes the bound socket to uvicorn (no race for the port), prints
``listening <port>``; the lifespan prints ``initial admin password: ...`` once; the parent waits for both and for
``/healthz``. Stopping sends SIGTERM and waits (SIGKILL after a bounded wait).
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

#: the child: bind, announce the port, serve create_app(load_settings()) on that socket
CHILD = """
import socket, sys
import uvicorn
from api.app import create_app
from config.settings import load_settings
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # proto set: asyncio then sets TCP_NODELAY
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(1024)
print(f"listening {sock.getsockname()[1]}", flush=True)
config = uvicorn.Config(create_app(load_settings()), log_level="warning", access_log=False)
uvicorn.Server(config).run(sockets=[sock])
"""

#: seconds the server may take to start (imports, migrations) on a busy 2-core machine
START_TIMEOUT = 60.0


@dataclass
class ServerProcess:
    url: str
    admin_password: str
    env: dict[str, str]
    stderr_path: Path
    proc: subprocess.Popen[str]

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def server_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCWARDEN_")}
    env.update({
        "SYNCWARDEN_DATA_DIR": str(tmp / "server-data"),
        "SYNCWARDEN_DATABASE_URL": f"sqlite:///{tmp / 'server.db'}",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _pump(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)


#: ``syncwarden serve`` itself (the reconciler too); with ``--sandbox`` the example app syncs into the sandbox
SERVE = [sys.executable, "-c", "from api.cli import main; main()", "serve", "--port", "0"]


@contextmanager
def running_server(tmp: Path, *, extra_env: dict[str, str] | None = None,
                   serve_args: list[str] | None = None) -> Iterator[ServerProcess]:
    """The API alone (``create_app``), or with ``serve_args`` the whole ``syncwarden serve``."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**server_env(tmp), **(extra_env or {})}
    stderr_path = tmp / "server.stderr"
    command = [*SERVE, *serve_args] if serve_args is not None else [sys.executable, "-c", CHILD]
    with stderr_path.open("w") as err:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err,
                                text=True, cwd=Path(__file__).resolve().parents[2])
    lines: queue.Queue[str] = queue.Queue()
    pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    pump.start()
    try:
        port, password = 0, ""
        deadline = time.monotonic() + START_TIMEOUT
        while not (port and password):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {stderr_path.read_text(errors='replace')[-2000:]}")
            try:
                line = lines.get(timeout=0.5).strip()
            except queue.Empty:
                continue
            if line.startswith("listening "):
                port = int(line.split()[1])
            elif line.startswith("syncwarden serving at "):
                port = int(line.split()[3].rsplit(":", 1)[1])
            elif line.startswith("initial admin password: "):
                password = line.split(": ", 1)[1]
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server never answered /healthz")
            time.sleep(0.1)
        yield ServerProcess(url=url, admin_password=password, env=env, stderr_path=stderr_path, proc=proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        pump.join(timeout=5)  # the child is gone: the pump reads EOF
        if proc.stdout is not None:
            proc.stdout.close()
