"""The reconciler loop: compare every app with Git and the cluster, persist its status, run automated syncs,
self-heal and operations, and finalise deleted apps.

Who calls this: ``api`` (``syncwarden serve`` runs :meth:`Reconciler.run_forever` in a thread; the CLI's
local mode calls :meth:`Reconciler.run_once` / :meth:`Reconciler.process_app`), and the tests, which call
``run_once(now)`` with chosen times. Only :meth:`run_forever` reads the clock.

One pass (``argocd-sync-semantics.md`` §4.1, §5):

1. every app with the deletion mark and no operation is finalised (:mod:`sync.reconcile_delete`);
2. every app's operation in progress advances one tick (:mod:`sync.reconcile_ops`), persisted before the
   next; a completed operation asks for a refresh of its app;
3. an app is compared when one of these holds, strongest first (§5.2): a refresh request (``hard``
   re-renders, bypassing the render cache; ``normal`` re-resolves the revision, bypassing the shared
   ls-remote listing; both come from webhooks, the CLI or the API), its spec changed since the last
   comparison, its poll is due (``poll_interval`` plus a random jitter in ``[0, poll_jitter)``, from the
   injected ``rand``), or the watch cache reported a change to one of its objects since the last pass
   (drift: compared at the revision it was last compared at, with no Git resolution);
4. the comparison (render via :class:`sync.render.Renderer`, :func:`sync.compare.compare`) is persisted and
   the automated-sync decision (:mod:`sync.autosync`) may start an operation, which ticks at once; before
   that, the app gets or loses the PreDelete/PostDelete finalizers its manifests call for
   (:func:`sync.reconcile_delete_hooks.manage_finalizers`). An app
   whose effective managedNamespaceMetadata is not what the last sync applied is OutOfSync (§2.1); orphaned
   resources are listed with the status when the project monitors them (:mod:`sync.orphans`). A render that
   fails during a poll or drift comparison leaves the status alone until the repo-error grace period since
   the app's first failure is over (:mod:`sync.repo_grace`); a refresh or a spec change reports it at once.

What keeps a pass cheap when nothing changed (issue 6; ``bench/reconcile.py`` measures it): the statuses are
read in one query and written in one transaction per pass (written before any operation starts, and at the
end); a poll or drift comparison first resolves the revisions and, when the spec, the commits, the live
objects and the project's verdicts are the ones last compared, reuses that comparison
(:mod:`sync.compare_memo`) instead of rendering and comparing again; a refresh request or a spec change
always compares afresh, and asks the remote once per repository per pass, however many of its apps do.

Triggers reach the gate through the operation: ``auto`` (new revision or spec), ``self-heal`` (drift against
an unchanged combination), ``webhook`` (an automatic sync found by a webhook's refresh), ``retry`` (set by the
engine for retried attempts), ``manual``/``rollback`` (:class:`sync.appservice.AppService`). One app's failure
never stops the pass: it is logged with the app's name and the pass goes on.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sync import appparse, autosync, namespace_meta
from sync.application import Application
from sync.autosync import SelfHealBackoff
from sync.cluster_cache import CacheEvent
from sync.compare import SyncStatus
from sync.compare_memo import CachedComparison, ComparisonMemo, SpecKey
from sync.models import ResourceKey
from sync.operation import OperationState
from sync.reconcile_delete import finalize
from sync.reconcile_delete_hooks import manage_finalizers
from sync.reconcile_env import Environment
from sync.reconcile_ops import Prepared, run_tick
from sync.reconcile_status import PassState, compared_status, failed_status, flush, orphans_of
from sync.render import RenderError
from sync.render_cache import digest
from sync.repo_grace import RepoErrorGrace
from sync.source import GitError
from sync.store import OperationInProgress, RefreshRequest, StaleOperation, StoredApp

__all__ = ["WEBHOOK", "PassReport", "Reconciler", "compared_to"]

log = logging.getLogger(__name__)

#: ``requested_by`` of a refresh request made by a Git webhook: an automatic sync it leads to is a webhook sync
WEBHOOK = "webhook"
#: refresh levels, weakest first: drift reuses the last revision; poll resolves via the shared listing
_RECENT, _POLL, _NORMAL, _HARD = 1, 2, 3, 4

AppKey = tuple[str, str]


@dataclass
class PassReport:
    """What one pass did, per app (for logs, the CLI and the tests)."""

    compared: dict[AppKey, str] = field(default_factory=dict)
    ticked: dict[AppKey, str] = field(default_factory=dict)
    started: dict[AppKey, str] = field(default_factory=dict)
    deleted: list[AppKey] = field(default_factory=list)
    errors: dict[AppKey, str] = field(default_factory=dict)
    #: apps whose render failed within the repo-error grace period: status left as it was (the reason)
    deferred: dict[AppKey, str] = field(default_factory=dict)


def _backing_off(state: dict[str, Any], now: datetime) -> bool:
    op = OperationState.from_dict(state)
    return op.waiting_for_retry and op.next_attempt_at is not None and now < op.next_attempt_at and not op.completed


def compared_to(app: Application) -> str:
    """What a comparison depends on in the spec (Argo CD ``comparedTo``): sources, destination, ignores, and
    the effective managedNamespaceMetadata (when there is one, so other apps' digests stay as they were)."""
    parts: dict[str, Any] = {
        "sources": [appparse.source_to_dict(s) for s in app.sources],
        "destination": [app.destination.server, app.destination.name, app.destination.namespace],
        "ignore": [repr(i) for i in app.ignore_differences],
    }
    metadata = namespace_meta.effective(app)
    if metadata is not None:
        parts["managedNamespaceMetadata"] = metadata.to_dict()
    return digest(parts)


class Reconciler:
    def __init__(
        self,
        env: Environment,
        *,
        rand: Callable[[], float] = random.random,
        self_heal: SelfHealBackoff | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        owner: str | None = None,
        lease_seconds: float = 60.0,
    ) -> None:
        """``rand`` gives the poll jitter fraction in [0, 1); ``clock`` is read by :meth:`run_forever` only.
        ``owner`` names this reconciler in operation leases (replicas sharing a database never tick one
        operation at once; a lease not renewed for ``lease_seconds`` can be taken over)."""
        self.env = env
        self.owner = owner or secrets.token_hex(8)
        self.lease_seconds = lease_seconds
        self.rand = rand
        self.self_heal = self_heal or SelfHealBackoff()
        self.clock = clock
        self._drifted: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._refresh_after_op: set[AppKey] = set()
        self._window_blocked: set[AppKey] = set()
        #: the last comparison of every app, reused by polls that find nothing changed
        self.memo = ComparisonMemo()
        self._specs: dict[AppKey, tuple[SpecKey, Application, str]] = {}
        #: when each app's current run of render failures began (§5.3)
        self.repo_errors = RepoErrorGrace(env.settings.repo_error_grace_seconds)
        #: replicas sharing a database (``sync.leases``): when set, a pass skips the apps it returns False for
        self.holds: Callable[[AppKey], bool] | None = None

    # -- inputs from other threads ----------------------------------------------------------------------

    def on_cache_event(self, event: CacheEvent) -> None:
        """The watch cache's callback: remember which app instances drifted, and wake the loop."""
        if not event.apps:
            return
        with self._lock:
            self._drifted.update(event.apps)
        self._wake.set()

    def drifted(self) -> set[str]:
        """App instances the watch cache reported changes for since the last pass."""
        with self._lock:
            return set(self._drifted)

    def wake(self) -> None:
        """Run the next pass now (a refresh request or a manual sync was just stored)."""
        self._wake.set()

    def wait(self, timeout: float) -> None:
        """Block until :meth:`wake` or ``timeout`` seconds (a loop outside, like ``api.serve``'s), then re-arm."""
        self._wake.wait(timeout)
        self._wake.clear()

    # -- the loop --------------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event, *, idle_seconds: float = 1.0) -> None:
        """Run passes until ``stop`` is set; sleeps ``idle_seconds`` between passes unless woken."""
        while not stop.is_set():
            self._wake.clear()
            try:
                report = self.run_once(self.clock())
            except Exception:  # a pass that fails as a whole (database down) is retried; the loop must live
                log.exception("reconcile pass failed")
                report = PassReport()
            # a just-started operation gets its next tick at once; others are looked at every idle_seconds
            self._wake.wait(0.05 if report.started else idle_seconds)

    def run_once(self, now: datetime) -> PassReport:
        """One pass over every app at time ``now`` (see the module docstring)."""
        report = PassReport()
        with self._lock:
            drifted, self._drifted = self._drifted, set()
        refreshes = self.env.store.operations.refresh_requests()
        in_progress = set(self.env.store.operations.in_progress())
        ctx = PassState(statuses=self.env.store.apps.statuses())
        apps = self.env.store.apps.list()
        ctx.apps = {(s.namespace, s.name) for s in apps}
        if self.holds is not None:
            apps = [s for s in apps if self.holds((s.namespace, s.name))]
        for stored in apps:
            key = (stored.namespace, stored.name)
            try:
                self._process(stored, key in in_progress, refreshes.get(key), drifted, now, report, ctx)
            except Exception as exc:  # one app's failure must not stop the others; logged with the app
                log.exception("app %s/%s: reconcile failed", *key)
                report.errors[key] = f"{type(exc).__name__}: {exc}"
        self._flush(ctx, report)
        live_apps = {(s.namespace, s.name) for s in apps}
        self.memo.retain(live_apps)
        self.repo_errors.retain(live_apps)
        for gone in set(self._specs) - live_apps:
            self._specs.pop(gone, None)
        return report

    def process_app(self, namespace: str, name: str, *, now: datetime) -> PassReport:
        """One pass for one app (the CLI's local mode drives an operation with it)."""
        report = PassReport()
        stored = self.env.store.apps.get(namespace, name)
        op = self.env.store.operations.operation(namespace, name)
        refresh = self.env.store.operations.refresh_requests().get((namespace, name))
        ctx = PassState()
        try:
            self._process(stored, op is not None and op.in_progress, refresh, set(), now, report, ctx)
        finally:
            self._flush(ctx, report)
        return report

    def _flush(self, ctx: PassState, report: PassReport) -> None:
        def failed(key: AppKey, exc: Exception) -> None:
            report.compared.pop(key, None)
            report.errors[key] = f"{type(exc).__name__}: {exc}"

        flush(self.env.store, ctx, failed)

    # -- one app ---------------------------------------------------------------------------------------

    def _process(self, stored: StoredApp, op_running: bool, refresh: RefreshRequest | None, drifted: set[str],
                 now: datetime, report: PassReport, ctx: PassState) -> None:
        key = (stored.namespace, stored.name)
        if op_running and not self._tick(stored, now, report):
            return  # still running; a completed operation is compared again at once (§4.1: refresh)
        if stored.deleting_at is not None:
            if finalize(self.env, stored, now=now):
                report.deleted.append(key)
            return
        _, app, spec_digest = self._spec(stored)
        level = self._level(app, key, refresh, drifted, now, ctx, spec_digest)
        if level:
            self._reconcile(stored, app, level, refresh, now, report, ctx)

    def _spec(self, stored: StoredApp) -> tuple[SpecKey, Application, str]:
        """The parsed app and its ``compared_to`` digest, parsed again only when the stored manifest changed."""
        key, spec = (stored.namespace, stored.name), (stored.version, stored.created_at)
        known = self._specs.get(key)
        if known is None or known[0] != spec:
            app = stored.application()
            known = (spec, app, compared_to(app))
            self._specs[key] = known
        return known

    def _tick(self, stored: StoredApp, now: datetime, report: PassReport, prepared: Prepared | None = None) -> bool:
        """One tick of the app's operation; True when there is none in progress any more. ``prepared``: the
        comparison that just started it (see :class:`sync.reconcile_ops.Prepared`)."""
        key = (stored.namespace, stored.name)
        record = self.env.store.operations.operation(*key)
        if record is None or record.request is None:
            return True
        if record.state is not None and not record.request.get("terminate") and _backing_off(record.state, now):
            return False  # a failed attempt waits for its retry: nothing to do (and nothing to write) yet
        if not self.env.store.operations.claim(*key, owner=self.owner, now=now, seconds=self.lease_seconds):
            log.debug("app %s/%s: operation %s is leased by another reconciler", *key, record.op_id)
            return False
        try:
            outcome = run_tick(self.env, stored, record, now=now, prepared=prepared)
        except StaleOperation:
            log.info("app %s/%s: operation %s was advanced elsewhere", *key, record.op_id)
            return False
        report.ticked[key] = outcome.state.phase.value
        if outcome.window_blocked:
            # not an attempt; tried again at the next poll (not at once: that would spin while the window is shut)
            self._window_blocked.add(key)
            return False
        if outcome.completed:
            with self._lock:
                self._refresh_after_op.add(key)
            self._wake.set()
        return outcome.completed

    def _level(self, app: Application, key: AppKey, refresh: RefreshRequest | None, drifted: set[str],
               now: datetime, ctx: PassState, spec_digest: str) -> int:
        if refresh is not None:
            return _HARD if refresh.level == "hard" else _NORMAL
        compared, next_poll_at = ctx.schedule(self.env.store, key)
        if compared != spec_digest:
            return _NORMAL
        with self._lock:
            after_op = key in self._refresh_after_op
            self._refresh_after_op.discard(key)
        if after_op:
            return _POLL  # the operation just resolved the revision: no need to ask the remote again
        if next_poll_at is None or next_poll_at <= now:
            return _POLL
        if self.env.instance(app) in drifted:
            return _RECENT
        return 0

    def _reconcile(self, stored: StoredApp, app: Application, level: int, refresh: RefreshRequest | None,
                   now: datetime, report: PassReport, ctx: PassState) -> None:
        key = (stored.namespace, stored.name)
        ops = self.env.store.operations
        previous = ctx.status(self.env.store, key)
        revision = None
        if level == _RECENT and len(app.sources) == 1 and previous.revisions:
            revision = previous.revisions[0]
        if level >= _NORMAL:
            for src in app.sources:
                if src.repo_url not in ctx.listed:  # once per repository per pass, however many apps ask
                    ctx.listed.add(src.repo_url)
                    self.env.renderer.repos.expire_listing(src.repo_url)
        spec = (stored.version, stored.created_at)
        found = self._unchanged(app, key, spec, revision) if level < _NORMAL else None
        live = found[1] if found is not None else None  # read once: reused by a comparison after a miss
        if found is not None and found[2] is not None:
            revisions, cached = found[0], found[2]
        else:
            try:
                rendered = self.env.renderer.render(app, revision=revision, hard=level == _HARD)
            except RenderError as exc:
                self.memo.forget(key)
                if not self.repo_errors.report(key, now=now, forced=level >= _NORMAL):
                    # within the grace period: the status stays; only the next look is scheduled (§5.3)
                    log.info("app %s/%s: rendering failed; within the repo-error grace period: %s", *key, exc)
                    report.deferred[key] = str(exc)
                    if level >= _POLL:
                        ctx.writes.append((*key, replace(previous, next_poll_at=self._next_poll(now))))
                    return
                ctx.writes.append((*key, failed_status(
                    previous, f"failed to load target state: {exc}", compared_to=self._spec(stored)[2],
                    poll=level >= _POLL, next_poll=lambda: self._next_poll(now), now=now)))
                report.compared[key] = "Unknown"
                self._clear_refresh(key, refresh)
                return
            revisions = rendered.revisions
            live = self.env.live(app) if live is None else live
            fetched: list[ResourceKey] = []
            comparison = self.env.compare(app, rendered.manifests, live, fetched=fetched)
            cached = self.memo.remember(key, spec=spec, revisions=revisions, live=live, comparison=comparison,
                                        fetched=bool(fetched), permitted=self.env.permitted(app),
                                        namespaced=self.env.scope_lookup(app))
        self.repo_errors.succeeded(key)
        comparison = cached.comparison
        # before the status is stored (§1.14); only finalizers change, so the comparison stands for the new version
        spec = manage_finalizers(self.env, stored, app, comparison, now=now) or spec
        if comparison.sync_status is SyncStatus.SYNCED and self.env.namespace_metadata_differs(app, comparison):
            comparison = replace(comparison, sync_status=SyncStatus.OUT_OF_SYNC)  # §2.1: not what was applied
            cached = replace(cached, comparison=comparison)
        automated = app.sync_policy.automated if app.sync_policy is not None else None
        # the decision reads ``last`` only for an automated app that is OutOfSync: spare the query otherwise
        wants_last = automated is not None and automated.enabled and comparison.sync_status is SyncStatus.OUT_OF_SYNC
        decision = autosync.decide(
            app,
            sync_status=comparison.sync_status.value,
            resources=cached.rows,
            revisions=revisions,
            operation_in_progress=False,
            deleting=stored.deleting_at is not None,
            last=ops.autosync(*key) if wants_last else None,
            now=now,
            backoff=self.self_heal,
        ) if not comparison.errors else autosync.AutoSyncDecision(reason="comparison errors")
        ctx.writes.append((*key, compared_status(
            previous, cached, revisions, decision, compared_to=self._spec(stored)[2], poll=level >= _POLL,
            next_poll=lambda: self._next_poll(now), now=now,
            orphaned=orphans_of(self.env, app, comparison, previous, ctx))))
        self._clear_refresh(key, refresh)
        report.compared[key] = comparison.sync_status.value
        if decision.request is None:
            return
        request = decision.request
        if key in self._window_blocked:
            if level < _POLL:
                return  # a sync window refused the last automatic sync: wait for the next poll or a refresh
            self._window_blocked.discard(key)
        if refresh is not None and refresh.requested_by == WEBHOOK and request.trigger == "auto":
            request = replace(request, trigger="webhook")
        self._flush(ctx, report)  # the status that led to the operation is stored before the operation
        op_id = secrets.token_hex(8)
        try:
            ops.start(*key, op_id=op_id, request=request.to_dict(), now=now)
        except OperationInProgress:
            return  # a person (or another replica) was faster; Argo CD ignores this silently too
        self.env.emit(app, "sync.initiated", "started", at=now, operation_id=op_id,
                      message=f"Initiated automated sync to {', '.join(revisions)}",
                      details={"trigger": request.trigger, "selfHealAttempts": request.self_heal_attempts})
        report.started[key] = request.trigger
        self.memo.forget(key)  # the live objects are about to change, and the engine now works on these objects
        current = self.env.store.apps.get(*key)
        unchanged = (current.version, current.created_at) == spec
        self._tick(current, now, report, Prepared(revisions, comparison) if unchanged else None)

    def _unchanged(self, app: Application, key: AppKey, spec: SpecKey, revision: str | None,
                   ) -> tuple[tuple[str, ...], list[dict[str, Any]], CachedComparison | None] | None:
        """The commits ``render`` would use, the live objects, and the app's last comparison when nothing it
        depends on changed since (:mod:`sync.compare_memo`); None when resolving fails (the render reports it)."""
        commits = []
        for src in app.sources:
            if src.chart or src.plugin is not None:
                return None
            try:
                commits.append(self.env.renderer.repos.resolve(src.repo_url, revision or src.target_revision))
            except (GitError, ValueError):
                return None
        revisions, live = tuple(commits), self.env.live(app)
        return revisions, live, self.memo.lookup(key, spec=spec, revisions=revisions, live=live,
                                                 permitted=self.env.permitted(app),
                                                 namespaced=self.env.scope_lookup(app))

    def _clear_refresh(self, key: AppKey, refresh: RefreshRequest | None) -> None:
        if refresh is not None:
            self.env.store.operations.clear_refresh(*key, requested_at=refresh.requested_at)

    # -- status ------------------------------------------------------------------------------------------

    def _next_poll(self, now: datetime) -> datetime:
        s = self.env.settings
        return now + timedelta(seconds=s.poll_interval_seconds + self.rand() * s.poll_jitter_seconds)
