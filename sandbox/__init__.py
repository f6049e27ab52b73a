"""A local Kubernetes API emulator over HTTP, for the demo and the tests. Imports none of policy/sync/api.

The official ``kubernetes`` client (typed APIs and ``DynamicClient``) and ``kubectl`` accept it as a
cluster: discovery, the built-in resources and CRDs, resourceVersions, watches, every PATCH flavour
including server-side apply, dry-run, deletion with finalizers and garbage collection, the status
subresource and simulated controllers. Tests reach it over HTTP, and steer it from Python::

    with sandbox.start() as sb:
        sb.write_kubeconfig(tmp_path / "kubeconfig")
        sb.faults.add("patch", "deployments", status=503, times=1)
        ...
        assert [r.verb for r in sb.requests.records()] == [...]

Who calls it: the tests, ``syncwarden serve --sandbox``, ``syncwarden sandbox`` and ``python -m sandbox``.
"""

from __future__ import annotations

from pathlib import Path

from sandbox.app import Sandbox, StateFileError
from sandbox.controllers import ControllerTiming
from sandbox.faults import Fault, FaultInjector, RequestLog, RequestRecord

__all__ = [
    "ControllerTiming",
    "Fault",
    "FaultInjector",
    "RequestLog",
    "RequestRecord",
    "Sandbox",
    "StateFileError",
    "start",
]


def start(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state_file: Path | None = None,
    timing: ControllerTiming | None = None,
    tick_interval: float = 0.2,
    bookmark_interval: float = 1.0,
) -> Sandbox:
    """Start a sandbox serving in background threads (port 0 picks a free port; see ``Sandbox.url``).

    ``state_file`` keeps objects across restarts (read at start, written while running and at stop);
    ``timing`` sets how long the simulated controllers take; they run every ``tick_interval`` seconds
    (and on ``Sandbox.tick()``); watches with ``allowWatchBookmarks`` get a bookmark every
    ``bookmark_interval`` seconds.
    """
    return Sandbox(
        host=host,
        port=port,
        state_file=state_file,
        timing=timing,
        tick_interval=tick_interval,
        bookmark_interval=bookmark_interval,
    )
