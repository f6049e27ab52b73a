"""``syncwarden serve``: the HTTP API and the reconciler in one process, built the one way the running system is
built (:func:`api.wiring.build_services`), with the API on top of it (:func:`api.app.create_app`).

Who calls it: :mod:`api.cli.serve_cmd` (the command) and the end-to-end tests (in a subprocess). Composition:

* the system: stores, the live policy (:class:`api.state.PolicyCache`, shared by the routes and the sync gate),
  cluster registry, renderer, gate, audit sink, Reconciler and AppService;
* the API: ``create_app(settings, services=Services(store=system.policy_store, policy=system.policy,
  system=system, refresh=..., project_apps=...))`` — the webhook's refresh asks ``AppService.refresh(...,
  requested_by=sync.reconciler.WEBHOOK)`` of every app of the pushed repository; project updates and deletes
  see the project's apps;
* the reconciler loop (a thread): before each pass the replica takes its share of the apps
  (:class:`sync.leases.AppLeases`), the pass reconciles only those, and its results feed ``/metrics``
  (``syncwarden_app_info`` per compared app, ``syncwarden_app_sync_total`` per finished operation). A separate
  heartbeat thread renews the leases and claims orphaned apps every third of ``lease_seconds``, so a long pass
  neither loses them nor delays a dead replica's handover (bound: ``lease_seconds`` plus a third of it);
* uvicorn in a thread; SIGINT/SIGTERM stop it gracefully, then the loop, then hand the leases over, close
  everything and stop the in-process sandbox.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn

import sandbox as sandbox_pkg
from api.app import create_app
from api.gate import app_target
from api.routes.metrics import Metrics
from api.serve_demo import create_namespaces, load_examples, prepare_demo_repo
from api.state import Services
from api.wiring import Services as System
from api.wiring import build_services
from config.settings import Settings
from policy.evaluate import AppTarget
from sync.gate import SyncEvent
from sync.giturl import normalise_url
from sync.leases import AppLeases
from sync.reconciler import WEBHOOK, PassReport

__all__ = ["ServeOptions", "Server", "same_repo"]

log = logging.getLogger(__name__)

_FINISHED = {"sync.succeeded": "Succeeded", "sync.failed": "Failed", "sync.error": "Error", "sync.denied": "Failed"}


@dataclass
class ServeOptions:
    sandbox: bool = False
    kubeconfig: Path | None = None
    context: str | None = None
    #: load the example project and app of ``config/examples/`` on first start
    examples: bool = True
    #: seconds between reconcile passes when nothing wakes the loop (also the lease round)
    interval: float = 1.0
    #: how long an app lease lasts without renewal: the bound on a dead replica's handover
    lease_seconds: float = 15.0
    replica_id: str = field(default_factory=lambda: secrets.token_hex(6))
    write: Callable[[str], None] = print


def same_repo(a: str, b: str) -> bool:
    """One repository in two spellings (scheme, user, ``.git``, case of the host do not matter)."""
    pa, pb = urlsplit(normalise_url(a)), urlsplit(normalise_url(b))
    if pa.scheme == "file" or pb.scheme == "file":
        return pa.scheme == pb.scheme and pa.path == pb.path
    return (pa.hostname or "") == (pb.hostname or "") and pa.path.lower() == pb.path.lower()


class Server:
    """Everything ``serve`` runs; :meth:`start` then :meth:`stop` (the command waits for a signal between)."""

    def __init__(self, settings: Settings, options: ServeOptions, *, clock: Callable[[], datetime] | None = None,
                 ) -> None:
        self.settings = settings
        self.options = options
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sandbox: sandbox_pkg.Sandbox | None = None
        self.kubeconfig: Path | None = options.kubeconfig
        self.system: System | None = None
        self.metrics: Metrics | None = None
        self.leases: AppLeases | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._uvicorn: uvicorn.Server | None = None
        self.url = ""

    # -- building -------------------------------------------------------------------------------------------

    def _build(self) -> System:
        repo_url = None
        if self.options.sandbox:
            data = self.settings.data_dir
            data.mkdir(parents=True, exist_ok=True)
            self.sandbox = sandbox_pkg.start(port=0, state_file=data / "sandbox-state.json")
            self.kubeconfig = self.sandbox.write_kubeconfig(data / "kubeconfig", context="sandbox")
            repo_url = prepare_demo_repo(data)
        system = build_services(
            self.settings,
            kubeconfig=[self.kubeconfig] if self.kubeconfig is not None else None,
            context="sandbox" if self.options.sandbox else self.options.context,
            client="server",
            allow_file_urls=True if self.options.sandbox else None,
            owner=self.options.replica_id,
            watch=True,
            clock=self.clock,
        )
        try:
            if self.options.examples:
                for what in load_examples(system, now=self.clock(), repo_url=repo_url):
                    log.info("loaded the example %s", what)
            if self.options.sandbox:
                create_namespaces(system)
        except BaseException:
            system.close()
            raise
        return system

    def _refresh(self, repo_url: str, revision: str) -> None:
        """The webhook's refresh: every app with a source in that repository compares now (never syncs the
        payload's revision: the app's own target revision is resolved)."""
        system = self._require_system()
        for stored in system.apps.list():
            sources = stored.application().sources
            if any(same_repo(src.repo_url, repo_url) for src in sources):
                system.apps.refresh(stored.namespace, stored.name, now=self.clock(), level="normal",
                                    requested_by=WEBHOOK)

    def _project_apps(self, project: str) -> Sequence[AppTarget]:
        return [app_target(s.application()) for s in self._require_system().apps.list(project=project)]

    def _require_system(self) -> System:
        if self.system is None:
            raise RuntimeError("the server is not started")
        return self.system

    def build_app(self, system: System, **overrides: Any) -> Any:
        """The FastAPI app over ``system`` (the tests call this to drive the routes through ``TestClient``)."""
        services = Services(store=system.policy_store, policy=system.policy, system=system, refresh=self._refresh,
                            project_apps=self._project_apps, request_timeout=self.settings.api.request_timeout_seconds,
                            **overrides)
        app = create_app(self.settings, services=services)
        self.metrics = app.state.metrics
        system.events.observers.append(self._count_sync)
        return app

    # -- the reconciler loop ----------------------------------------------------------------------------------

    def _count_sync(self, event: SyncEvent) -> None:
        phase = _FINISHED.get(event.action)
        if phase is not None and self.metrics is not None:
            self.metrics.count_sync(name=event.app, project=event.project, phase=phase)

    def _feed_metrics(self, system: System, report: PassReport) -> None:
        if self.metrics is None:
            return
        for _, name in report.deleted:
            self.metrics.remove_app(name)
        for key in set(report.compared) | set(report.ticked):
            stored = system.apps.store.apps.find(*key)
            if stored is None:
                continue
            app = stored.application()
            status = system.apps.store.apps.status(*key)
            self.metrics.set_app_info(name=app.name, project=app.project, dest_server=app.destination.server,
                                      dest_namespace=app.destination.namespace, sync_status=status.sync_status,
                                      health_status=status.health_status)

    def _loop(self) -> None:
        system, leases = self._require_system(), self.leases
        assert leases is not None
        reconciler = system.reconciler
        reconciler.holds = leases.holds
        held: frozenset[tuple[str, str]] = frozenset()
        while not self._stop.is_set():
            now = self.clock()
            try:
                keys = [(ns, name) for ns, name, _ in system.apps.store.apps.names()]
                previous, held = held, leases.acquire(keys, now=now)
                for _, name in previous - held:  # another replica reports it now
                    if self.metrics is not None:
                        self.metrics.remove_app(name)
                report = reconciler.run_once(now)
                self._feed_metrics(system, report)
            except Exception:  # the database is down, say: the loop must live and retry
                log.exception("reconcile pass failed")
                report = PassReport()
            reconciler.wait(0.05 if report.started else self.options.interval)

    def _heartbeat(self) -> None:
        """Every third of the lease: renew, and claim free or expired apps (a long pass must neither lose the
        leases nor delay a dead replica's handover). Releasing a surplus is left to the loop, between passes."""
        system, leases = self._require_system(), self.leases
        assert leases is not None
        while not self._stop.wait(leases.lease_seconds / 3):
            try:
                keys = [(ns, name) for ns, name, _ in system.apps.store.apps.names()]
                leases.acquire(keys, now=self.clock(), release=False)
            except Exception:  # logged; the next round tries again
                log.exception("lease renewal failed")

    # -- lifecycle ------------------------------------------------------------------------------------------

    def _check_port(self) -> None:
        """Fail before anything starts (and before the one-time admin password is printed) when the port is taken."""
        host, port = self.settings.api.host, self.settings.api.port
        if port == 0:
            return
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    def start(self) -> None:
        """Build, serve HTTP, start the loop; returns once the API answers."""
        self._check_port()
        self.system = self._build()
        try:
            app = self.build_app(self.system)
            self.leases = AppLeases(self.system.sync_store.leases, owner=self.options.replica_id,
                                    lease_seconds=self.options.lease_seconds)
            config = uvicorn.Config(app, host=self.settings.api.host, port=self.settings.api.port, log_level="warning",
                                    lifespan="on", timeout_graceful_shutdown=10)
            self._uvicorn = uvicorn.Server(config)
            web = threading.Thread(target=self._uvicorn.run, name="syncwarden-http", daemon=True)
            web.start()
            while not self._uvicorn.started:
                if not web.is_alive():
                    raise OSError(f"the HTTP server could not start on {self.settings.api.host}:"
                                  f"{self.settings.api.port}")
                web.join(0.05)
            port = self._uvicorn.servers[0].sockets[0].getsockname()[1]
            self.url = f"http://{self.settings.api.host}:{port}"
            self._threads = [web]
            for target, name in ((self._loop, "syncwarden-reconciler"), (self._heartbeat, "syncwarden-leases")):
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
        except BaseException:
            self.stop()
            raise

    def announce(self) -> None:
        write = self.options.write
        write(f"syncwarden serving at {self.url} (replica {self.options.replica_id})")
        write(f"API docs: {self.url}/docs")
        if self.kubeconfig is not None:
            write(f"kubeconfig: {self.kubeconfig}" + (" (context 'sandbox')" if self.options.sandbox else ""))
        write(f"data directory: {self.settings.data_dir}")
        write("press Ctrl-C to stop")

    def stop(self) -> None:
        """Graceful: HTTP first (requests in flight finish), then the loop, then the leases go to the others."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        self._stop.set()
        if self.system is not None:
            self.system.reconciler.wake()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []
        try:
            if self.leases is not None:
                self.leases.retire()
        except Exception:  # the leases expire by themselves
            log.exception("could not hand the leases over; they expire in %gs", self.options.lease_seconds)
        finally:
            if self.system is not None:
                self.system.close()
                self.system = None
            if self.sandbox is not None:
                self.sandbox.stop()
                self.sandbox = None
