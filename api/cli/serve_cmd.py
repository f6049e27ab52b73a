"""``syncwarden serve``: run the HTTP API and the reconciler in one process until SIGINT/SIGTERM.

Embedded default: SQLite in the data directory, the example project and app of ``config/examples/`` loaded on
first start. ``--sandbox`` also starts the sandbox cluster in-process (its kubeconfig is written to the data
directory) and makes the example app sync from a Git repository prepared there. Several replicas against one
PostgreSQL (``SYNCWARDEN_DATABASE_URL``) share the apps; ``--lease-seconds`` bounds the handover when one dies.

Prints the URL, the API docs URL, the kubeconfig path and — on the very first start only — ``initial admin
password: ...``. Exit 0 after a graceful shutdown, 2 for bad configuration (settings, kubeconfig, a port in use),
3 when the database is unavailable.
"""

from __future__ import annotations

import gc
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import sqlalchemy as sa
import typer

from api.cli.common import EXIT_INVALID, EXIT_RETRY, console, fail
from api.cli.local_store import local_settings
from api.serve import ServeOptions, Server
from api.serve_demo import DemoError
from config.logging import configure_logging
from config.settings import ApiSettings
from policy import tokens
from sync.cluster import ClusterError, Unavailable

__all__ = ["serve"]


def serve(
    sandbox: Annotated[bool, typer.Option(
        "--sandbox", help="Start the sandbox cluster in-process; the example app syncs from a local Git repo.")
    ] = False,
    host: Annotated[str | None, typer.Option("--host", help="Listen address (default: settings, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535,
                                             help="TCP port (default: settings, 8080; 0 picks a free one).")] = None,
    kubeconfig: Annotated[Path | None, typer.Option(
        "--kubeconfig", help="Kubeconfig of the clusters to sync to (default: $KUBECONFIG or ~/.kube/config).")
    ] = None,
    context: Annotated[str | None, typer.Option(
        "--context", help="Context that https://kubernetes.default.svc means (default: current-context).")
    ] = None,
    examples: Annotated[bool, typer.Option(
        "--examples/--no-examples", help="Load the example project and app on first start.")] = True,
    interval: Annotated[float, typer.Option(
        "--interval", min=0.05, help="Seconds between reconcile passes when idle (also the lease round).")] = 1.0,
    lease_seconds: Annotated[float, typer.Option(
        "--lease-seconds", min=0.5, help="An app lease not renewed for this long passes to another replica.")
    ] = 15.0,
    replica_id: Annotated[str | None, typer.Option("--replica-id", help="Name of this replica in app leases.")
                          ] = None,
) -> None:
    """Run the API and the reconciler (Ctrl-C stops gracefully)."""
    settings = local_settings()
    configure_logging(settings.logging)
    if host is not None or port is not None:
        api = settings.api.model_dump()
        api.update({k: v for k, v in (("host", host), ("port", port)) if v is not None})
        settings = settings.model_copy(update={"api": ApiSettings(**api)})
    if lease_seconds < 2 * interval:
        fail(f"--lease-seconds ({lease_seconds:g}) must be at least twice --interval ({interval:g})")
    out = console()
    options = ServeOptions(sandbox=sandbox, kubeconfig=kubeconfig, context=context, examples=examples,
                           interval=interval, lease_seconds=lease_seconds,
                           write=lambda text: out.print(text, markup=False, highlight=False))
    if replica_id:
        options.replica_id = replica_id
    server = Server(settings, options)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except tokens.SigningKeyError as exc:
            fail(str(exc))
        except DemoError as exc:
            fail(str(exc))
        except ClusterError as exc:
            fail(str(exc), EXIT_RETRY if isinstance(exc, Unavailable) else EXIT_INVALID)
        except sa.exc.SQLAlchemyError as exc:
            fail(f"the database is unavailable ({type(exc).__name__}); try again", EXIT_RETRY)
        except (OSError, ValueError) as exc:
            fail(str(exc))
        # What start built lives as long as the process: take it out of the collector's way, so a full collection
        # walks only what requests create (measured: a quarter of the admission check's CPU went to collections).
        gc.collect()
        gc.freeze()
        server.announce()
        done.wait()
        out.print("shutting down", markup=False)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
