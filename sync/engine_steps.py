"""One tick's work after the gate and the dry-run: refresh running tasks, wait, run the next step, finish.

Who calls it: :class:`sync.engine.SyncEngine` (``advance`` every tick, ``terminate`` on request or timeout).
It follows gitops-engine's ``Sync`` (``argocd-sync-semantics.md`` §4.5–§4.13): a step is one (phase, wave);
prunes of a step run before its hooks' BeforeHookCreation deletions and its applies (the whole step waits while
a ``Prune=confirm`` prune lacks the app's ``deletion-approved``, §4.6 step 2); a multi-step sync waits
for the step's hooks and resources to be healthy (health from the live object) before the next step; a
failure runs the SyncFail hooks and ends the operation Failed with the cause; hooks hold the hook finalizer
until their result is read (:mod:`sync.hook_finalizer`) and are deleted by their policies when the operation
ends. Nothing here blocks waiting: a tick that has to wait says so in the message and returns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from sync import approval, hook_finalizer, hooks
from sync.cluster import ClusterError
from sync.engine_events import Recorder
from sync.engine_exec import ClusterCalls, apply_mode, field_validation
from sync.engine_request import SyncRequest
from sync.gate import Violation
from sync.health import Health, assess
from sync.hooks import DeletePolicy, Phase
from sync.operation import OperationPhase, OperationState, ResourceResult, ResultCode, TaskPhase, retry_delay
from sync.plan import Task

__all__ = ["Tick", "advance", "complete", "make_result", "prune", "run_step", "terminate"]

log = logging.getLogger(__name__)


class Outcome(int, Enum):
    """A step's outcome; they merge to the worst (successful < pending < failed)."""

    OK = 0
    PENDING = 1
    FAILED = 2


@dataclass
class Tick:
    """What one tick works with: the operation (mutated in place), the request, the planned tasks."""

    op: OperationState
    request: SyncRequest
    now: datetime
    rec: Recorder
    calls: ClusterCalls
    tasks: list[Task]
    #: why the step just run is pending, when no running task says it (a prune awaiting confirmation)
    pending: str = ""

    @property
    def multi_step(self) -> bool:
        steps = {t.step for t in self.tasks} | {(r.sync_phase.order, r.wave) for r in self.op.results}
        return len(steps) > 1

    def result(self, task: Task) -> ResourceResult | None:
        return self.op.result(task.key, task.phase)

    def skip_unchanged(self, task: Task) -> bool:
        """ApplyOutOfSyncOnly: a live, unmodified, non-hook resource is not applied (§4.12)."""
        if not self.request.options.apply_out_of_sync_only or task.hook or task.target is None or task.live is None:
            return False
        return not self.request.modified(task.target, task.live)


def make_result(task: Task, status: ResultCode, phase: TaskPhase, message: str) -> ResourceResult:
    source = task.target if task.target is not None else task.live
    version = str((source or {}).get("apiVersion", "")).rpartition("/")[2]
    return ResourceResult(
        key=task.key,
        sync_phase=task.phase,
        status=status,
        task_phase=phase,
        message=message,
        version=version,
        hook=task.hook,
        wave=task.wave,
    )


def _label(task: Task) -> str:
    return f"{task.key.group}/{task.key.kind}/{task.key.name}"


def _health_phase(task: Task, live: dict[str, Any]) -> tuple[TaskPhase, str]:
    """Hooks: Healthy or no check ⇒ Succeeded, Degraded/Unknown ⇒ Failed. Resources: Degraded ⇒ Failed,
    Healthy or no check ⇒ Succeeded; anything else keeps the task running (§4.5 step 3)."""
    health = assess(live)
    if health is None or health.status is Health.HEALTHY:
        return TaskPhase.SUCCEEDED, health.message if health else ""
    if health.status is Health.DEGRADED or (task.hook and health.status is Health.UNKNOWN):
        return TaskPhase.FAILED, health.message or f"{_label(task)} is {health.status.value}"
    return TaskPhase.RUNNING, health.message


def refresh_running(t: Tick) -> None:
    """Bring every running task up to date from its live object."""
    for task in t.tasks:
        res = t.result(task)
        if res is None or res.task_phase is not TaskPhase.RUNNING:
            continue
        live = t.calls.get(task.key)
        if res.status is ResultCode.PRUNED:
            if live is None:
                t.rec.record(replace(res, task_phase=TaskPhase.SUCCEEDED))
            continue
        if live is None:
            message = f"Resource {_label(task)} is missing, it might have been deleted"
            t.rec.record(replace(res, status=ResultCode.SYNC_FAILED, task_phase=TaskPhase.ERROR, message=message))
            continue
        phase, message = _health_phase(task, live)
        if phase is res.task_phase:
            continue
        if task.hook and phase.completed:
            try:  # its result is read: the object may go now (§4.5 step 6)
                _release(t, task, live, "hook completed")
            except ClusterError as exc:
                message = f"failed to remove the hook finalizer: {exc.message}"
                t.rec.record(replace(res, task_phase=TaskPhase.ERROR, message=message))
                continue
        t.rec.record(replace(res, task_phase=phase, message=message or res.message))


def _waiting(what: str, tasks: Sequence[Task], noun: str) -> str:
    more = f" and {len(tasks) - 1} more {noun}" if len(tasks) > 1 else ""
    return f"{what} {_label(tasks[0])}{more}"


def waiting_message(t: Tick) -> str | None:
    """Why this tick must wait (running hooks, unhealthy resources, deletions in flight), or None."""
    running: list[Task] = []
    deleting: list[Task] = []
    for task in t.tasks:
        res = t.result(task)
        if res is None or res.task_phase is not TaskPhase.RUNNING:
            continue
        if res.status is ResultCode.PRUNED:
            deleting.append(task)
        elif task.hook or t.multi_step:
            running.append(task)
    hooks_running = [task for task in running if task.hook]
    if hooks_running:
        return _waiting("waiting for completion of hook", hooks_running, "hooks")
    if running:
        return _waiting("waiting for healthy state of", running, "resources")
    if deleting:
        return _waiting("waiting for deletion of", deleting, "resources")
    return None


def _prune_option(t: Tick, task: Task) -> str:
    """``Prune`` of the live object, else the app-level default: ``false``, ``confirm`` or anything else
    (prune normally; a resource's ``Prune=true`` overrides an app-level ``false`` or ``confirm``)."""
    own = hooks.sync_options(task.live).get("Prune")
    if own is not None:
        return own
    options = t.request.options
    return "false" if options.prune_disabled else "confirm" if options.prune_confirm else ""


def _unconfirmed(t: Tick, prunes: Sequence[Task]) -> list[Task]:
    """The prunes that would delete a ``Prune=confirm`` object while the app has not approved deletions since
    the operation started (§4.6 step 2); skipped prunes and dry runs need no confirmation."""
    options = t.request.options
    if not options.prune or options.dry_run:
        return []
    waiting = [
        task
        for task in prunes
        if _prune_option(t, task) == "confirm"
        and not ((task.live or {}).get("metadata") or {}).get("ownerReferences")
        and t.request.may_prune(task.live or {})
    ]
    if waiting and approval.approved_since(t.request.app.annotations, t.op.started_at):
        return []
    return waiting


def prune(t: Tick, task: Task) -> ResourceResult:
    """The result of pruning one live object (§4.8); deletes it unless an option or the project says no."""
    live = task.live or {}
    options = t.request.options
    skipped = ResultCode.PRUNE_SKIPPED
    if not options.prune:
        return make_result(task, skipped, TaskPhase.SUCCEEDED, "ignored (requires pruning)")
    if _prune_option(t, task) == "false":
        return make_result(task, skipped, TaskPhase.SUCCEEDED, "ignored (no prune)")
    if (live.get("metadata") or {}).get("ownerReferences") or not t.request.may_prune(live):
        log.warning("app %s: not pruning %s: not permitted", t.rec.app, task.key)
        return make_result(task, skipped, TaskPhase.SUCCEEDED, "ignored (not permitted by the project)")
    if options.dry_run:
        return make_result(task, ResultCode.PRUNED, TaskPhase.SUCCEEDED, "pruned (dry run)")
    if (live.get("metadata") or {}).get("deletionTimestamp"):
        return make_result(task, ResultCode.PRUNED, TaskPhase.RUNNING, "pruned")
    try:
        existed = t.calls.delete(task.key, propagation=options.prune_propagation)
    except ClusterError as exc:
        return make_result(task, ResultCode.SYNC_FAILED, TaskPhase.FAILED, exc.message)
    # still there (finalizers, foreground deletion of dependents): later steps wait until it is gone
    gone = not existed or t.calls.get(task.key) is None
    return make_result(task, ResultCode.PRUNED, TaskPhase.SUCCEEDED if gone else TaskPhase.RUNNING, "pruned")


def _release(t: Tick, task: Task, live: dict[str, Any], why: str) -> dict[str, Any] | None:
    """Take the hook finalizer off ``live`` if it has it, announced first; the object now (None once gone)."""
    if not hook_finalizer.has(live):
        return live
    t.rec.emit("sync.hook.finalizer", "removing", target=str(task.key), message=why)
    return hook_finalizer.remove(t.calls.cluster, task.key, live, retry=t.calls.call)


def _make_way_for_hook(t: Tick, task: Task) -> Outcome:
    """A hook left from an earlier run loses the hook finalizer (§4.6 step 1); with BeforeHookCreation it is
    deleted before it is created again (§4.6 step 3)."""
    live = t.calls.get(task.key)
    if live is None:
        return Outcome.OK
    try:
        live = _release(t, task, live, "left by an earlier run")
    except ClusterError as exc:
        t.rec.record(make_result(task, ResultCode.SYNC_FAILED, TaskPhase.ERROR, exc.message))
        return Outcome.FAILED
    if live is None:
        return Outcome.OK
    if (live.get("metadata") or {}).get("deletionTimestamp"):
        return Outcome.PENDING
    if DeletePolicy.BEFORE_HOOK_CREATION not in task.delete_policies:
        return Outcome.OK  # re-applied as it is; a completed Job counts as succeeded at once
    t.rec.emit("sync.hook.delete", "requested", target=str(task.key), message="before hook creation")
    try:
        t.calls.delete(task.key, propagation=t.request.options.prune_propagation)
    except ClusterError as exc:
        t.rec.record(make_result(task, ResultCode.SYNC_FAILED, TaskPhase.ERROR, exc.message))
        return Outcome.FAILED
    return Outcome.OK if t.calls.get(task.key) is None else Outcome.PENDING


def run_step(t: Tick, step: Sequence[Task]) -> Outcome:
    """Run one step's tasks: prunes, then hook deletions, then applies in order (§4.6). A step with a prune
    awaiting confirmation is pending and runs nothing (``Tick.pending`` says which)."""
    dry = t.request.options.dry_run
    unconfirmed = _unconfirmed(t, [s for s in step if s.is_prune])
    if unconfirmed:
        t.pending = _waiting("waiting for pruning confirmation of", unconfirmed, "resources")
        return Outcome.PENDING
    outcome = Outcome.OK
    for task in (s for s in step if s.is_prune):
        res = prune(t, task)
        t.rec.record(res)
        if res.status is ResultCode.SYNC_FAILED:
            outcome = Outcome.FAILED
    if outcome is Outcome.FAILED:
        return outcome  # creations of a step whose prunes failed are not attempted
    for task in (s for s in step if not s.is_prune):
        assert task.target is not None
        if task.hook and not dry:
            cleared = _make_way_for_hook(t, task)
            outcome = max(outcome, cleared)
            if cleared is not Outcome.OK:
                continue
        mode, force = apply_mode(task.target, task.live, t.request.options)
        try:
            validation = field_validation(task.target, t.request.options)
            t.calls.apply(task.target, mode=mode, force=force, dry_run=dry, field_validation=validation)
        except ClusterError as exc:
            t.rec.record(make_result(task, ResultCode.SYNC_FAILED, TaskPhase.FAILED, exc.message))
            outcome = Outcome.FAILED
            continue
        verb = "created" if task.live is None else "configured"
        phase = TaskPhase.SUCCEEDED if dry else TaskPhase.RUNNING
        t.rec.record(make_result(task, ResultCode.SYNCED, phase, f"{_label(task)} {verb}" + (" (dry run)" * dry)))
    return outcome


def cleanup_hooks(t: Tick, policy: DeletePolicy) -> list[str]:
    """The operation ends: its hooks lose the hook finalizer (nothing reads their results any more, not even
    a hook still running), and those that carry ``policy`` are deleted; returns the errors (reported, not
    fatal)."""
    errors: list[str] = []
    done: set[Any] = set()
    for task in t.tasks:
        if not task.hook or task.key in done or t.result(task) is None:
            continue
        done.add(task.key)
        live = t.calls.get(task.key)
        try:
            live = _release(t, task, live, "operation ended") if live is not None else None
        except ClusterError as exc:
            log.warning("app %s: cannot remove the hook finalizer of %s: %s", t.rec.app, task.key, exc)
            errors.append(exc.message)
            continue
        if live is None or policy not in task.delete_policies:
            continue
        t.rec.emit("sync.hook.delete", "requested", target=str(task.key), message=policy.value)
        try:
            t.calls.delete(task.key, propagation=t.request.options.prune_propagation)
        except ClusterError as exc:
            log.warning("app %s: cannot delete hook %s: %s", t.rec.app, task.key, exc)
            errors.append(exc.message)
    return errors


def complete(
    t: Tick,
    phase: OperationPhase,
    message: str,
    *,
    retryable: bool = True,
    action: str | None = None,
    result: str | None = None,
    violations: Sequence[Violation] = (),
) -> None:
    """End the attempt: retry it later when the policy allows (§4.1 step 5, §4.14), else end the operation."""
    op, retry = t.op, t.request.retry
    failed = phase in (OperationPhase.FAILED, OperationPhase.ERROR)
    if failed and retryable and retry is not None and (retry.limit < 0 or op.retry_count < retry.limit):
        at = t.now + retry_delay(op.retry_count, retry.backoff)
        n = op.retry_count + 1
        text = f"{message}. Retrying attempt #{n} at {at.isoformat(timespec='seconds')}."
        t.rec.phase(
            OperationPhase.RUNNING, text, action="sync.retrying", result=result or "failed", violations=violations
        )
        op.retry_count, op.finished_at, op.next_attempt_at = n, t.now, at
        return
    if failed and op.retry_count:
        message = f"{message} (retried {op.retry_count} times)."
    t.rec.phase(phase, message, action=action, result=result, violations=violations)
    op.next_attempt_at = None


def _finish_failed(t: Tick, message: str) -> None:
    errors = cleanup_hooks(t, DeletePolicy.HOOK_FAILED)
    if errors:
        message += "; hook cleanup failed: " + "; ".join(errors)
    complete(t, OperationPhase.FAILED, message)


def fail(t: Tick, base: str) -> None:
    """The attempt is failing: run the SyncFail hooks (once), then end Failed with the cause (§4.11)."""
    op = t.op
    if not op.failure:
        failed = [r for r in op.results if r.status is ResultCode.SYNC_FAILED and r.sync_phase is not Phase.SYNC_FAIL]
        reasons = sorted({r.message for r in failed})
        op.failure = base + (", reason: " + ", ".join(reasons) if reasons else "")
    sync_fail = [task for task in t.tasks if task.phase is Phase.SYNC_FAIL]
    started = [(task, res) for task in sync_fail if (res := t.result(task)) is not None]
    if len(started) == len(sync_fail) and all(res.task_phase.completed for _, res in started):
        message = op.failure
        bad = [res for _, res in started if not res.task_phase.successful]
        if bad:
            reasons = sorted({res.message for res in bad if res.message})
            message += "\none or more SyncFail hooks failed" + (", reason: " + ", ".join(reasons) if reasons else "")
        _finish_failed(t, message)
        return
    pending = [task for task in sync_fail if t.result(task) is None]
    if pending:
        run_step(t, pending)
    t.rec.phase(OperationPhase.RUNNING, op.failure + "; running SyncFail hooks")


def advance(t: Tick) -> None:
    """Steps 3–14 of a tick (§4.5): refresh, wait, check for failure, run the next step, or finish."""
    refresh_running(t)
    waiting = waiting_message(t)
    if waiting:
        t.rec.phase(OperationPhase.RUNNING, waiting)
        return
    others = [task for task in t.tasks if task.phase is not Phase.SYNC_FAIL]
    failed = [
        res
        for task in others
        if (res := t.result(task)) is not None
        and (res.status is ResultCode.SYNC_FAILED or res.task_phase in (TaskPhase.FAILED, TaskPhase.ERROR))
    ]
    if failed or t.op.failure:
        fail(t, "one or more synchronization tasks completed unsuccessfully")
        return
    pending = [task for task in others if t.result(task) is None and not t.skip_unchanged(task)]
    if not pending:
        _succeed(t, "successfully synced (no more tasks)")
        return
    step = [task for task in pending if task.step == pending[0].step]
    final = pending[0].step == pending[-1].step
    t.rec.phase(OperationPhase.RUNNING, "one or more tasks are running")
    outcome = run_step(t, step)
    if outcome is Outcome.FAILED:
        fail(t, "one or more synchronization tasks completed unsuccessfully")
    elif outcome is Outcome.OK and final and not any(task.hook for task in step):
        _succeed(t, "successfully synced (all tasks run)")
    else:
        waiting = waiting_message(t) or t.pending or "waiting for deletion before the next step"
        t.rec.phase(OperationPhase.RUNNING, waiting)


def _succeed(t: Tick, message: str) -> None:
    errors = cleanup_hooks(t, DeletePolicy.HOOK_SUCCEEDED)
    if errors:
        message += "; hook cleanup failed: " + "; ".join(errors)
    complete(t, OperationPhase.SUCCEEDED, message)


def terminate(t: Tick, message: str = "Operation terminated") -> None:
    """Stop the operation (§4.13): running hooks are deleted and marked Failed "Terminated"; no retries."""
    errors: list[str] = []
    for task in t.tasks:
        res = t.result(task)
        if not task.hook or res is None or res.task_phase is not TaskPhase.RUNNING:
            continue
        live = t.calls.get(task.key)
        try:  # terminated: its result no longer matters, and it must be free to go (§4.13)
            live = _release(t, task, live, "operation terminated") if live is not None else None
        except ClusterError as exc:
            errors.append(exc.message)
        phase, health_message = _health_phase(task, live) if live is not None else (TaskPhase.RUNNING, "")
        if live is not None and (phase is TaskPhase.RUNNING or DeletePolicy.HOOK_FAILED in task.delete_policies):
            t.rec.emit("sync.hook.delete", "requested", target=str(task.key), message="terminated")
            try:
                t.calls.delete(task.key, propagation=t.request.options.prune_propagation)
            except ClusterError as exc:
                errors.append(exc.message)
        if phase is TaskPhase.RUNNING:
            t.rec.record(replace(res, task_phase=TaskPhase.FAILED, message="Terminated"))
        else:
            t.rec.record(replace(res, task_phase=phase, message=health_message or res.message))
    if errors:
        complete(t, OperationPhase.ERROR, "Operation termination had errors: " + "; ".join(errors), retryable=False)
    else:
        complete(t, OperationPhase.FAILED, message, retryable=False)
