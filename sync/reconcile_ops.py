"""Run an app's operation one tick at a time, persisting the state after every tick.

Who calls this: :class:`sync.reconciler.Reconciler` (every pass, for every app with an operation in
progress) and, through it, :meth:`sync.appservice.AppService.wait_for_operation` in local mode.

Per tick (``argocd-sync-semantics.md`` §4.1): read the request and the last persisted state back from the
store (a restart continues there: results already recorded are not written again); render the app at the
operation's pinned revision (a rollback renders the source from history); compare with the live objects;
refuse to run while the comparison has error conditions (``Error``, as Argo CD); build the engine's
:class:`~sync.engine_request.SyncRequest` from the app as stored now (its ``deletion-approved`` annotation
lets waiting ``Prune=confirm`` prunes go on) and the comparison's shared resources, with the request's
trigger, so the gate applies sync windows to automatic syncs, self-heal, retries and webhook-triggered syncs
alike; tick; persist. On completion: a
history entry for a successful, non-dry-run, non-selective sync (§2.5), the auto-sync bookkeeping for the
"already attempted" rule (an automatic sync refused only by a sync window does not count as an attempt),
written in one transaction with the final state, and a refresh of the app. The first tick of an automatic
sync reuses the comparison that started it (:class:`Prepared`) instead of rendering and comparing again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sync import appparse
from sync.application import Application
from sync.autosync import spec_hash
from sync.cluster import key_of
from sync.compare import Comparison, SyncStatus
from sync.compare_targets import SHARED_RESOURCE_WARNING
from sync.engine_request import SyncRequest
from sync.operation import OperationPhase, OperationState
from sync.oprequest import OperationRequest
from sync.reconcile_env import Environment
from sync.render import RenderError
from sync.store import AutoSyncRecord, OperationRecord, StoredApp
from sync.store.operations import NewHistory

__all__ = ["WINDOW_BLOCKED", "Prepared", "TickOutcome", "run_tick", "with_sources"]

log = logging.getLogger(__name__)

#: the policy's violation code for a sync refused by a sync window
WINDOW_BLOCKED = "window.blocked"

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class TickOutcome:
    state: OperationState
    completed: bool
    #: an automatic sync that only a sync window refused (not an attempt; tried again at the next poll)
    window_blocked: bool = False


def with_sources(app: Application, sources: tuple[dict[str, Any], ...]) -> Application:
    """``app`` with its source(s) replaced (a rollback syncs the source recorded in history)."""
    if not sources:
        return app
    manifest = app.to_dict()
    spec = dict(manifest["spec"])
    spec.pop("source", None)
    spec.pop("sources", None)
    if len(sources) == 1 and not app.multi_source:
        spec["source"] = dict(sources[0])
    else:
        spec["sources"] = [dict(s) for s in sources]
    manifest["spec"] = spec
    return Application.from_dict(manifest, source=f"history of {app.namespace}/{app.name}")


def _modified_from(comparison: Comparison) -> Callable[[Obj, Obj], bool]:
    out_of_sync = {r.key for r in comparison.resources if r.status is not SyncStatus.SYNCED}

    def modified(target: Obj, live: Obj) -> bool:
        del target
        return key_of(live) in out_of_sync

    return modified


def _stop(state: OperationState, phase: OperationPhase, message: str, now: datetime) -> OperationState:
    out = state.copy()
    out.phase = phase
    out.message = message
    out.finished_at = now
    out.next_attempt_at = None
    return out


@dataclass(frozen=True)
class Prepared:
    """The comparison the reconciler made of the app just before it started this operation (same spec, at
    ``revisions``): the operation's first tick uses it instead of rendering and comparing once more. The
    caller hands it over: nothing else may hold it while the engine works with its objects."""

    revisions: tuple[str, ...]
    comparison: Comparison


def run_tick(env: Environment, stored: StoredApp, record: OperationRecord, *, now: datetime,
             prepared: Prepared | None = None) -> TickOutcome:
    """Advance the app's current operation by one tick and persist it (``StaleOperation`` if it changed).

    ``prepared`` is used only by the first tick of a single-source operation pinned to its commit."""
    assert record.request is not None
    request = OperationRequest.from_dict(record.request)
    app = with_sources(stored.application(), request.sources)
    state = (OperationState.from_dict(record.state) if record.state is not None
             else OperationState.new(record.op_id, started_at=now))
    single = len(app.sources) == 1
    if _retry_refreshes(request, state, now):
        state = state.copy()
        state.revision = ""  # retry.refresh: the retry resolves the latest revision (§1.11)
        pinned = ""
    else:
        pinned = state.revision or request.revision
    revisions: tuple[str, ...]
    if (prepared is not None and record.state is None and single and not request.sources
            and prepared.revisions == (pinned,)):
        revisions, comparison = prepared.revisions, prepared.comparison
    else:
        try:
            rendered = env.renderer.render(app, revision=(pinned or None) if single else None)
        except RenderError as exc:
            if exc.retryable:
                state = state.copy()
                state.message = f"waiting for the repository: {exc}"
                return _save(env, stored, record, request, state, now=now)
            new = _stop(state, OperationPhase.ERROR, f"ComparisonError: failed to load target state: {exc}", now)
            env.emit(app, "sync.error", "error", at=now, message=new.message, operation_id=record.op_id,
                     subject=request.subject)
            return _save(env, stored, record, request, new, now=now)
        revisions = rendered.revisions
        comparison = env.compare(app, rendered.manifests, env.live(app))
    cluster = env.destinations.cluster_for(app)
    if comparison.errors and not state.completed:
        text = "; ".join(f"{c.type}: {c.message}" for c in comparison.errors)
        new = _stop(state, OperationPhase.ERROR, text, now)
        env.emit(app, "sync.error", "error", at=now, message=text, operation_id=record.op_id,
                 subject=request.subject)
        return _save(env, stored, record, request, new, now=now, revisions=revisions)
    allow_empty = bool(app.sync_policy and app.sync_policy.automated and app.sync_policy.automated.allow_empty)
    tracker, instance = env.tracker, env.instance(app)
    sync_request = SyncRequest(
        app=app,
        targets=comparison.targets,
        live=comparison.managed_live,
        revision=revisions[0] if single and revisions else "",
        options=request.sync_options_for_engine(allow_empty=allow_empty),
        trigger=request.trigger,
        subject=request.subject,
        groups=request.groups,
        override_reason=request.override_reason,
        may_prune=env.permitted(app),
        prepare_target=lambda obj: tracker.stamp(obj, instance=instance,
                                                 destination_namespace=app.destination.namespace),
        retry=request.retry,
        modified=_modified_from(comparison),
        shared_resources=tuple(c.message for c in comparison.conditions if c.type == SHARED_RESOURCE_WARNING),
    )
    engine = env.engine_for(cluster)
    if request.terminate:
        new_state = engine.terminate(state, sync_request, now=now,
                                     message=f"Operation terminated by {request.terminated_by or 'a user'}")
    else:
        new_state = engine.tick(state, sync_request, now=now)
    return _save(env, stored, record, request, new_state, now=now, app=app, revisions=revisions)


def _retry_refreshes(request: OperationRequest, state: OperationState, now: datetime) -> bool:
    retry = request.retry
    due = state.waiting_for_retry and (state.next_attempt_at is None or now >= state.next_attempt_at)
    return bool(retry is not None and retry.refresh and due and not request.terminate)


def _save(env: Environment, stored: StoredApp, record: OperationRecord, request: OperationRequest,
          state: OperationState, *, now: datetime, app: Application | None = None,
          revisions: tuple[str, ...] = ()) -> TickOutcome:
    ops = env.store.operations
    completed = state.completed
    if completed:  # the state, history and bookkeeping in one transaction
        history, record_autosync = _on_completed(stored, request, state, now=now,
                                                 app=app or stored.application(), revisions=revisions)
        ops.complete(stored.namespace, stored.name, op_id=record.op_id, state=state.to_dict(),
                     phase=state.phase.value, now=now, expected_version=record.version, history=history,
                     autosync=record_autosync)
    else:
        ops.save_state(stored.namespace, stored.name, op_id=record.op_id, state=state.to_dict(),
                       phase=state.phase.value, completed=False, now=now, expected_version=record.version)
    blocked = completed and request.automated and _window_only(state)
    return TickOutcome(state=state, completed=completed, window_blocked=blocked)


def _window_only(state: OperationState) -> bool:
    return bool(state.violations) and all(v.get("code") == WINDOW_BLOCKED for v in state.violations)


def _on_completed(stored: StoredApp, request: OperationRequest, state: OperationState, *, now: datetime,
                  app: Application, revisions: tuple[str, ...]) -> tuple[NewHistory | None, AutoSyncRecord | None]:
    """The history entry and the auto-sync bookkeeping a completed operation records (None: nothing).
    ``revisions``: the resolved commit per source the operation synced (compared as a whole by the "already
    attempted" rule, so multi-source apps work too)."""
    if request.dry_run:
        return None, None
    if state.revision and len(revisions) <= 1:
        revisions = (state.revision,)
    sources = [dict(s) for s in request.sources] or [appparse.source_to_dict(s) for s in app.sources]
    history = None
    if state.phase is OperationPhase.SUCCEEDED and not request.selective:
        history = NewHistory(revisions=revisions, sources=sources, deploy_started_at=state.started_at,
                             deployed_at=now, initiated_by=request.initiated_by(),
                             limit=app.revision_history_limit)
    if request.automated and _window_only(state):
        log.info("app %s/%s: automatic sync blocked by a sync window; not counted as an attempt",
                 stored.namespace, stored.name)
        return history, None
    return history, AutoSyncRecord(
        revisions=revisions,
        spec_hash=request.spec_hash or spec_hash(app),
        attempted_at=state.started_at,
        phase=state.phase.value,
        message=state.message,
        self_heal_attempts=request.self_heal_attempts if request.trigger == "self-heal" else 0,
        last_finished_at=state.finished_at or now,
    )
