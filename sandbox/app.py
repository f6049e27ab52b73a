"""A running sandbox: the HTTP server in background threads, the simulated controllers on a timer,
and the optional state file.

``sandbox.start()`` (the public entry point) builds one; ``python -m sandbox`` and
``syncwarden sandbox`` serve one until interrupted. The controller loop feeds each workload object to
the pure ``sandbox.controllers.observe`` with the seconds since its spec last changed, so with the
same ``ControllerTiming`` a test sees the same sequence of states every run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from config import yamlsafe
from sandbox import controllers, lifecycle, ssa
from sandbox.core import Core, clone, key_of
from sandbox.faults import FaultInjector, RequestLog
from sandbox.resources import types_from_crd
from sandbox.server import Context, make_server
from sandbox.store import DEFAULT_WINDOW, Store

__all__ = ["CONTROLLED", "Sandbox"]

log = logging.getLogger(__name__)

# The resources the simulated controllers look at, as (group, plural).
CONTROLLED = (
    ("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"), ("apps", "replicasets"),
    ("batch", "jobs"), ("", "pods"), ("", "persistentvolumeclaims"), ("", "services"),
)
CONTROLLER_MANAGER = "sandbox-controller-manager"
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class StateFileError(ValueError):
    """The state file cannot be read back; the message names the file."""


class Sandbox:
    """A Kubernetes API emulator serving at ``url``; a context manager that stops it on exit.

    Beyond ``sandbox.start``'s arguments, tests may pass ``clock`` (the time objects are stamped with
    and the controllers measure age by), ``wall_clock`` (request log times), ``history`` (watch events
    kept; older resourceVersions get 410 Gone) and a long ``tick_interval`` to run controllers only
    on ``tick()``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
        timing: controllers.ControllerTiming | None = None,
        tick_interval: float = 0.2,
        bookmark_interval: float = 1.0,
        clock: Callable[[], datetime] | None = None,
        wall_clock: Callable[[], float] | None = None,
        history: int = DEFAULT_WINDOW,
    ) -> None:
        self.core = Core(store=Store(window=history))
        if clock is not None:
            self.core.clock = clock
        self.timing = timing if timing is not None else controllers.ControllerTiming()
        self.state_file = state_file
        self.tick_interval = tick_interval
        self.faults = FaultInjector()
        self.requests = RequestLog(clock=wall_clock or time.time)
        self._stopping = threading.Event()
        self._tick_lock = threading.Lock()
        if state_file is not None and state_file.exists():
            self._load(state_file)
        else:
            if state_file is not None:
                try:
                    state_file.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StateFileError(f"{state_file}: cannot create its directory ({exc.strerror})") from None
            self._bootstrap()
        context = Context(self.core, self.faults, self.requests, self._stopping, self.tick, bookmark_interval)
        self._server = make_server(host, port, context)
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host if isinstance(bound_host, str) else host}:{bound_port}"
        self._threads = [
            threading.Thread(target=self._server.serve_forever, args=(0.05,), name="sandbox-http", daemon=True),
            threading.Thread(target=self._controller_loop, name="sandbox-controllers", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("sandbox serving at %s", self.url)

    # ---- lifecycle -------------------------------------------------------------------------------

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.save()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def write_kubeconfig(self, path: Path, *, context: str = "sandbox") -> Path:
        """Write a kubeconfig whose current context ``context`` points at this sandbox."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                       "namespace": "default"}}],
            "current-context": context,
            "preferences": {},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yamlsafe.dump(config), encoding="utf-8")
        return path

    # ---- controllers -----------------------------------------------------------------------------

    def tick(self) -> None:
        """Run the simulated controllers once: every workload gets the status it has earned by now, and
        finished Jobs whose ``ttlSecondsAfterFinished`` ran out are deleted (finalizers still hold them)."""
        core = self.core
        with self._tick_lock, core.store.lock:
            now = core.clock()
            expired = []
            for group, plural in CONTROLLED:
                for key in core.store.keys(group, plural):
                    obj = core.store.get(key)
                    if obj is None or obj["metadata"].get("deletionTimestamp"):
                        continue
                    since = core.spec_changed_at.get(key) or _parse_time(obj["metadata"]["creationTimestamp"])
                    age = (now - since).total_seconds() if since is not None else float("inf")
                    status = controllers.observe(obj, age_seconds=age, timing=self.timing)
                    if status is not None and status != obj.get("status"):
                        updated = clone(obj)
                        updated["status"] = status
                        obj = ssa.record_update(obj, updated, manager=CONTROLLER_MANAGER, now=core.now(),
                                                subresource="status")
                        core.store.put(key, obj, "MODIFIED")
                    if controllers.ttl_expired(obj, age_seconds=age, timing=self.timing):
                        expired.append(key)
            for key in expired:
                lifecycle.request_delete(core, key, propagation="Background")

    def _controller_loop(self) -> None:
        while not self._stopping.wait(self.tick_interval):
            try:
                self.tick()
                if self.core.store.dirty:
                    self.save()
            except Exception:
                log.exception("sandbox: controller pass failed; continuing")

    # ---- state -----------------------------------------------------------------------------------

    def save(self) -> None:
        if self.state_file is not None:
            self.core.store.save(self.state_file)

    def _bootstrap(self) -> None:
        now = self.core.now()
        for name in INITIAL_NAMESPACES:
            self.core.store.put(("", "namespaces", "", name), {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": now,
                             "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"},
            }, "ADDED")
        self.core.store.dirty = False

    def _load(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            objects = state["objects"]
            if not isinstance(objects, list):
                raise TypeError("objects is not a list")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateFileError(f"{path}: not a sandbox state file ({exc})") from None
        registry = self.core.registry
        for obj in objects:
            if obj.get("kind") == "CustomResourceDefinition":
                registry.add_crd(obj["metadata"]["name"], types_from_crd(obj))
        keyed: list[tuple[Any, dict[str, Any]]] = []
        for obj in objects:
            rtype = registry.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
            if rtype is None:
                log.warning("sandbox: %s: skipping %s %s: its type is no longer served",
                            path, obj.get("kind"), obj.get("metadata", {}).get("name"))
                continue
            meta = obj["metadata"]
            keyed.append((key_of(rtype, meta.get("namespace", ""), meta["name"]), obj))
        self.core.store.restore(state, keyed)


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
