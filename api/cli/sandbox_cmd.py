"""``syncwarden sandbox``: serve the local Kubernetes API emulator until interrupted.

It writes a kubeconfig whose context ``sandbox`` points at the emulator and prints how to use kubectl
with it, so a new user has a cluster to sync to with zero setup. ``--state FILE`` keeps the objects
across restarts. Exit 0 on Ctrl-C/SIGTERM, 2 when the port cannot be bound or the state file is not one.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

import sandbox as sandbox_pkg
from api.cli.common import EXIT_INVALID, console, fail

__all__ = ["DEFAULT_KUBECONFIG", "sandbox"]

DEFAULT_KUBECONFIG = Path.home() / ".kube" / "syncwarden-sandbox.yaml"


def sandbox(
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0 picks a free one).")] = 8001,
    state: Annotated[
        Path | None, typer.Option("--state", help="Keep objects in this file across restarts.")
    ] = None,
    kubeconfig: Annotated[
        Path, typer.Option("--kubeconfig", help="Where to write the kubeconfig (context 'sandbox').")
    ] = DEFAULT_KUBECONFIG,
) -> None:
    """Run a local Kubernetes API emulator (the sandbox) until interrupted."""
    try:
        running = sandbox_pkg.start(port=port, state_file=state)
    except sandbox_pkg.StateFileError as exc:
        fail(str(exc), EXIT_INVALID)
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", EXIT_INVALID)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        path = running.write_kubeconfig(kubeconfig, context="sandbox")
        out = console()
        out.print(f"sandbox serving at {running.url}", markup=False)
        out.print(f"kubeconfig written to {path} (context 'sandbox')", markup=False)
        out.print("use it with kubectl:", markup=False)
        out.print(f"  export KUBECONFIG={path}", markup=False)
        out.print("  kubectl get namespaces", markup=False)
        out.print(f"  kubectl --kubeconfig {path} --context sandbox apply --validate=false -f app.yaml",
                  markup=False)
        if state is not None:
            out.print(f"objects are kept in {state}", markup=False)
        out.print("press Ctrl-C to stop", markup=False)
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
    finally:
        running.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
