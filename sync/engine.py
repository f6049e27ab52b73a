"""The sync engine: advance one sync operation by one tick, gate first.

Who calls it: the reconciler and the CLI's local mode (through ``api``), which build a
:class:`sync.engine_request.SyncRequest` for the operation, call :meth:`SyncEngine.tick` until the
operation is completed, and persist the returned :class:`sync.operation.OperationState` after every
tick, so a restart resumes from the persisted state instead of applying everything again. A tick never
blocks waiting (only short client calls, and bounded retries of transient errors inside them).

The first tick of every attempt (the first one, each retry, a queued operation resumed after a restart):

1. the whole desired set the operation may write, hooks included (and the namespace CreateNamespace would
   create), goes through the injected gate (``policy.evaluate``, bound by ``api``); any violation ends the
   operation Failed with every violation in its message, and nothing is written;
2. a sync whose desired set came back empty does not prune every managed resource unless ``allowEmpty``;
3. CreateNamespace creates the destination namespace (and a Git-defined destination Namespace is applied)
   before anything else, with the app's managedNamespaceMetadata (:mod:`sync.namespace_meta`; an existing
   namespace is applied again only for that metadata, and what was applied is recorded in the state); then
   every object is dry-run on the server (``dryRun=All``); a failure ends the operation Failed before
   anything else is written.

Every tick first checks that the operation may run at all: with ``FailOnSharedResource=true`` a resource
shared with another app (the comparison's ``SharedResourceWarning``) ends it Failed "Shared resource found: ..."
before anything is written. With ``RespectIgnoreDifferences=true`` every object that exists already is written
with the live values of the fields the app's ignoreDifferences ignore (:mod:`sync.ignore_respect`).

Every later tick is :func:`sync.engine_steps.advance`: steps by (phase, wave), waiting for health between
steps, SyncFail hooks on failure, hook cleanup by policy. A sync timeout (``settings.sync_timeout_seconds``)
and :meth:`SyncEngine.terminate` stop it. Every phase change and resource result goes to the event sink
first; when the sink fails the operation ends Error "audit log unavailable" before anything further is
written (:mod:`sync.engine_events`).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from config.settings import SyncSettings
from sync import compare_ignore, hook_finalizer, hooks, ignore_respect, namespace_meta
from sync.cluster import Cluster, ClusterError, NotFound, Unavailable, UnknownKind
from sync.engine_events import AuditUnavailable, Recorder
from sync.engine_exec import ClusterCalls, apply_mode, field_validation, namespaced_lookup
from sync.engine_request import SyncRequest
from sync.engine_steps import Tick, advance, complete, make_result, prune, terminate
from sync.gate import EventSink, Gate, GateRequest, Violation
from sync.hooks import DeletePolicy, Phase
from sync.models import ResourceKey
from sync.operation import OperationPhase, OperationState, ResultCode, TaskPhase
from sync.plan import Task, build_plan

__all__ = ["SyncEngine"]

log = logging.getLogger(__name__)

DRY_RUN_FAILED = "one or more objects failed to apply (dry run)"


class SyncEngine:
    """Executes sync operations against one cluster. Stateless between ticks: the state is the operation."""

    def __init__(
        self,
        cluster: Cluster,
        gate: Gate,
        events: EventSink,
        settings: SyncSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        transient_attempts: int = 4,
        transient_delay_seconds: float = 0.2,
        transient_max_delay_seconds: float = 5.0,
    ) -> None:
        """``transient_*``: how often and how long a call failing with 429/5xx/409 is retried within a tick
        (the server's Retry-After wins, capped at the maximum); ``sleep`` does the waiting."""
        self.cluster = cluster
        self.gate = gate
        self.events = events
        self.settings = settings
        self.calls = ClusterCalls(
            cluster,
            attempts=transient_attempts,
            base_delay=transient_delay_seconds,
            max_delay=transient_max_delay_seconds,
            sleep=sleep,
        )

    # -- entry points ----------------------------------------------------------------------------------

    def tick(self, op: OperationState, request: SyncRequest, *, now: datetime) -> OperationState:
        """Advance ``op`` by one tick and return the new state (``op`` itself is not changed)."""
        return self._guarded(op, request, now, lambda rec, new: self._tick(new, request, now, rec))

    def terminate(
        self, op: OperationState, request: SyncRequest, *, now: datetime, message: str = "Operation terminated"
    ) -> OperationState:
        """Stop ``op`` now (the user's terminate): running hooks are deleted; Failed, never retried."""

        def stop(rec: Recorder, new: OperationState) -> None:
            rec.phase(OperationPhase.TERMINATING, "operation is terminating")
            terminate(self._context(new, request, now, rec), message)

        return self._guarded(op, request, now, stop)

    def _guarded(
        self,
        op: OperationState,
        request: SyncRequest,
        now: datetime,
        work: Callable[[Recorder, OperationState], None],
    ) -> OperationState:
        """Run ``work`` on a copy of ``op``: an unavailable cluster leaves it waiting, another cluster error
        ends it Error, and a refused event ends it Error "audit log unavailable"."""
        op = op.copy()
        if op.completed:
            return op
        rec = self._recorder(op, request, now)
        try:
            work(rec, op)
        except AuditUnavailable:
            rec.audit_failed()
        except Unavailable as exc:
            log.warning("app %s: cluster unavailable; the operation waits: %s", request.app.name, exc)
            op.message = f"waiting for the cluster: {exc.message}"
        except ClusterError as exc:  # e.g. Forbidden reading a hook: the operation cannot go on properly
            log.error("app %s: operation %s: %s", request.app.name, op.operation_id, exc)
            try:
                complete(self._bare(op, request, now, rec), OperationPhase.ERROR, exc.message)
            except AuditUnavailable:
                rec.audit_failed()
        return op

    # -- one tick ------------------------------------------------------------------------------------

    def _recorder(self, op: OperationState, request: SyncRequest, now: datetime) -> Recorder:
        app = request.app
        return Recorder(self.events, op, app=app.name, project=app.project, subject=request.subject, now=now)

    def _tick(self, op: OperationState, request: SyncRequest, now: datetime, rec: Recorder) -> None:
        if op.phase is OperationPhase.TERMINATING:
            terminate(self._context(op, request, now, rec))
            return
        timeout = self.settings.sync_timeout_seconds
        if timeout > 0 and now - op.started_at > timedelta(seconds=timeout):
            rec.phase(OperationPhase.TERMINATING, "operation is terminating due to timeout")
            message = f"Operation terminated: sync timeout of {timeout:g}s exceeded"
            terminate(self._context(op, request, now, rec), message)
            return
        if op.waiting_for_retry:
            if op.next_attempt_at is not None and now < op.next_attempt_at:
                return
            op.start_attempt()
            rec.phase(
                OperationPhase.RUNNING,
                f"Retrying operation. Attempt #{op.retry_count}",
                action="sync.retry",
                result="started",
            )
        if not op.revision:
            op.revision = request.revision
        if not op.gate_passed and op.retry_count == 0:
            rec.phase(OperationPhase.RUNNING, "sync started", action="sync.started", result="started")
        refused = request.refusal()
        if refused is not None:
            complete(self._bare(op, request, now, rec), *refused)
            return
        t = self._context(op, request, now, rec)
        if not op.gate_passed and not self._gate(t):
            return
        if not op.dry_run_done:
            if not self._first_tick(t):
                return
            if request.options.dry_run:
                self._dry_run_operation(t)
                return
        advance(t)

    def _bare(self, op: OperationState, request: SyncRequest, now: datetime, rec: Recorder) -> Tick:
        """A tick context without tasks, enough to end an operation."""
        return Tick(op=op, request=request, now=now, rec=rec, calls=self.calls, tasks=[])

    def _context(self, op: OperationState, request: SyncRequest, now: datetime, rec: Recorder) -> Tick:
        options = request.options
        selected = None
        if options.selective:
            entries = options.resources
            selected = lambda key: any(entry.matches(key) for entry in entries)  # noqa: E731
        plan = build_plan(
            request.targets,
            request.live,
            destination_namespace=request.destination_namespace,
            namespaced=namespaced_lookup(self.cluster),
            revision=op.revision or request.revision,
            started_unix=int(op.started_at.timestamp()),
            prune_last=options.prune_last,
            skip_hooks=options.skip_hooks or options.selective,
            selected=selected,
        )
        # RespectIgnoreDifferences with rules it cannot evaluate is refused before any write (refusal())
        respect = options.respect_ignore_differences and not compare_ignore.validate(request.app.ignore_differences)
        tasks = [
            dataclasses.replace(task, target=_prepared(request, _respecting(request, task, task.target, respect),
                                                       hook=task.hook))
            if task.target is not None
            else task
            for task in plan.tasks
        ]
        # the attempt's first plan fixes each task's wave: later ticks see pruned objects vanish from the live
        # set, and re-planning without them would move the remaining prunes to other waves
        if not op.waves:
            op.waves = {_task_id(task): task.wave for task in tasks}
        tasks = [dataclasses.replace(task, wave=op.waves.get(_task_id(task), task.wave)) for task in tasks]
        tasks.sort(key=lambda task: (task.phase.order, task.wave))  # stable: the plan's order within a step
        return Tick(op=op, request=request, now=now, rec=rec, calls=self.calls, tasks=tasks)

    # -- the gate --------------------------------------------------------------------------------------

    def _namespace_to_create(self, t: Tick) -> dict[str, Any] | None:
        ns = t.request.destination_namespace
        if not t.request.options.create_namespace or not ns:
            return None
        if any(task.target is not None and _is_namespace(task.key, ns) for task in t.tasks if not task.hook):
            return None  # a Git-defined Namespace wins (over managedNamespaceMetadata too)
        return namespace_meta.namespace_object(ns, namespace_meta.declared(t.request.app))

    def _gate(self, t: Tick) -> bool:
        op, request = t.op, t.request
        objects = [task.target for task in t.tasks if task.target is not None]
        namespace = self._namespace_to_create(t)
        if namespace is not None:
            objects.insert(0, namespace)
        gate_request = GateRequest(
            app=request.app,
            objects=objects,
            trigger="retry" if op.retry_count else request.trigger,
            at=t.now,
            started_at=op.started_at if op.retry_count else None,
            subject=request.subject,
            groups=request.groups,
            override_reason=request.override_reason,
        )
        try:
            verdict = self.gate(gate_request)
        except Exception as exc:  # noqa: BLE001 - fail closed: a gate that cannot decide denies
            log.error("app %s: the policy gate failed; denying: %s", request.app.name, exc)
            complete(
                t,
                OperationPhase.FAILED,
                f"sync denied: the policy gate could not decide ({type(exc).__name__})",
                action="sync.denied",
                result="denied",
            )
            return False
        if verdict.allowed:
            op.gate_passed = True
            return True
        violations = verdict.violations or (Violation(code="Denied", message="denied by policy", rule=verdict.rule),)
        op.violations = [dataclasses.asdict(v) for v in violations]
        message = "sync denied by project policy: " + "; ".join(
            f"{v.message}" + (f" ({v.field})" if v.field else "") for v in violations
        )
        # a sync window's refusal is not retried: the reconciler tries an automatic sync again at its next poll
        window_only = all(v.code == "window.blocked" for v in violations)
        complete(t, OperationPhase.FAILED, message, action="sync.denied", result="denied", violations=violations,
                 retryable=not window_only)
        return False

    # -- first tick of an attempt: empty-set guard, namespace, dry-run ----------------------------------------

    def _first_tick(self, t: Tick) -> bool:
        request, options = t.request, t.request.options
        desired = [obj for obj in request.targets if not hooks.is_hook(obj) and not hooks.is_skipped(obj)]
        managed = [obj for obj in request.live if not hooks.is_hook(obj)]
        if options.prune and not desired and managed and not options.allow_empty:
            complete(
                t,
                OperationPhase.FAILED,
                "refusing to prune every managed resource: the desired set is empty (allowEmpty is not set)",
            )
            return False
        creating = self._create_namespaces(t)
        if creating is None:
            return False
        failures: list[tuple[Task, ClusterError]] = []
        crd_kinds = {_crd_kind(task.target) for task in t.tasks if task.target is not None}
        for task in t.tasks:
            if task.target is None or t.result(task) is not None or t.skip_unchanged(task):
                continue
            if task.hook and DeletePolicy.BEFORE_HOOK_CREATION in task.delete_policies and t.calls.get(task.key):
                continue  # it will be deleted and created afresh; its old object says nothing
            try:
                mode, force = apply_mode(task.target, task.live, options)
                validation = field_validation(task.target, options)
                t.calls.apply(task.target, mode=mode, force=force, dry_run=True, field_validation=validation)
            except UnknownKind as exc:
                skip = options.skip_dry_run_on_missing_resource or (task.key.group, task.key.kind) in crd_kinds
                if skip or hooks.sync_options(task.target).get("SkipDryRunOnMissingResource") == "true":
                    continue
                failures.append((task, exc))
            except NotFound as exc:
                if task.key.namespace in creating:
                    continue  # its namespace is created by this sync
                failures.append((task, exc))
            except ClusterError as exc:
                failures.append((task, exc))
        for task, error in failures:
            t.rec.record(make_result(task, ResultCode.SYNC_FAILED, TaskPhase.FAILED, error.message))
        if failures:
            reasons = sorted({error.message for _, error in failures})
            complete(t, OperationPhase.FAILED, f"{DRY_RUN_FAILED}, reason: " + ", ".join(reasons))
            return False
        t.op.dry_run_done = True
        return True

    def _create_namespaces(self, t: Tick) -> set[str] | None:
        """Create the destination namespace before the dry-run (CreateNamespace, or a Git-defined one that
        does not exist yet); returns the namespaces this sync creates, or None when creating one failed."""
        creating = {
            task.key.name
            for task in t.tasks
            if task.key.kind == "Namespace" and task.key.group == "" and task.target is not None and task.live is None
        }
        ns = t.request.destination_namespace
        synthetic = self._namespace_to_create(t)
        # an existing namespace is applied again only to keep managedNamespaceMetadata on it (server-side
        # apply: what other managers set survives); what was applied is recorded for the comparison (§2.1)
        metadata = namespace_meta.declared(t.request.app) if synthetic is not None else None
        exists = synthetic is not None and t.calls.get(ResourceKey("", "Namespace", "", ns)) is not None
        if synthetic is not None and (not exists or metadata is not None):
            if not exists:
                creating.add(ns)
            task = Task(ResourceKey("", "Namespace", "", ns), Phase.PRE_SYNC, 0, synthetic, None)
            done = f"namespace {ns} metadata applied" if exists else f"namespace {ns} created"
            if not t.request.options.dry_run:
                if not self._apply_namespace(t, task, TaskPhase.SUCCEEDED, done):
                    return None
                if metadata is not None:
                    t.op.managed_namespace_metadata = metadata.to_dict()
        for task in t.tasks:
            if (
                not t.request.options.dry_run
                and task.target is not None
                and task.live is None
                and not task.hook
                and _is_namespace(task.key, ns)
                and t.result(task) is None
                and not self._apply_namespace(t, task, TaskPhase.RUNNING)
            ):
                return None
        return creating

    def _apply_namespace(self, t: Tick, task: Task, phase: TaskPhase, message: str = "") -> bool:
        assert task.target is not None
        try:
            t.calls.apply(task.target, mode="server-side", force=True, dry_run=False)
        except ClusterError as exc:
            t.rec.record(make_result(task, ResultCode.SYNC_FAILED, TaskPhase.FAILED, exc.message))
            complete(t, OperationPhase.FAILED, f"the namespace failed to apply, reason: {exc.message}")
            return False
        t.rec.record(make_result(task, ResultCode.SYNCED, phase, message or f"namespace {task.key.name} created"))
        return True

    def _dry_run_operation(self, t: Tick) -> None:
        """A dry-run operation: every task's result as if it ran (the server dry-run above passed)."""
        for task in t.tasks:
            if task.phase is Phase.SYNC_FAIL or t.result(task) is not None or t.skip_unchanged(task):
                continue
            if task.is_prune:
                t.rec.record(prune(t, task))
            else:
                t.rec.record(make_result(task, ResultCode.SYNCED, TaskPhase.SUCCEEDED, "dry run"))
        complete(t, OperationPhase.SUCCEEDED, "successfully synced (dry run)")


def _respecting(request: SyncRequest, task: Task, target: dict[str, Any], respect: bool) -> dict[str, Any]:
    """A copy of the target to write; with ``respect`` (``RespectIgnoreDifferences``) an existing object's
    ignored fields keep their live values (§4.12; hooks are created afresh and are left as they are)."""
    if not respect or task.live is None or task.hook:
        return copy.deepcopy(target)
    return ignore_respect.respect_ignored(target, task.live, request.app.ignore_differences, task.key)


def _prepared(request: SyncRequest, target: dict[str, Any], *, hook: bool) -> dict[str, Any]:
    """The object a task writes (a copy the caller owns): tracking stamped; a hook also carries the hook
    finalizer (§4.2)."""
    prepared = request.prepare_target(target)
    return hook_finalizer.added(prepared) if hook else prepared


def _task_id(task: Task) -> str:
    return f"{task.phase.value}:{task.key}"


def _is_namespace(key: ResourceKey, name: str) -> bool:
    return key.group == "" and key.kind == "Namespace" and key.name == name


def _crd_kind(obj: dict[str, Any]) -> tuple[str, str] | None:
    if obj.get("kind") != "CustomResourceDefinition":
        return None
    spec = obj.get("spec") or {}
    return str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))
