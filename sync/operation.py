"""The state of one sync operation, as it is persisted between ticks, and the retry backoff math.

Who uses it: :mod:`sync.engine` advances an :class:`OperationState` one tick at a time; the store persists
``to_dict()`` after every tick and the reconciler rebuilds it with :meth:`OperationState.from_dict`, so a
restart resumes an operation where it stopped instead of applying everything again; the API and the CLI
show it. Shape and vocabulary follow Argo CD's ``status.operationState`` (``argocd-sync-semantics.md``
§2.3): an operation phase, a message, ``startedAt``/``finishedAt``, a retry count, and one result per
(resource, sync phase), which is how the state of each task survives from one tick to the next.

``Running`` with ``finishedAt`` set means "an attempt failed; waiting for the retry backoff". The wait
before retry #k is ``delay(k-1)`` with ``delay(n) = min(maxDuration, duration × factor^n)`` (§4.14), which
is the time the message announces; Argo CD enforces ``delay(k)`` instead (§10 quirk 1), we do not.

Error tree::

    InvalidOperationState (ValueError)   a persisted state that cannot be read back; names the field
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sync.application import Backoff, Retry
from sync.hooks import Phase
from sync.models import ResourceKey

__all__ = [
    "DEFAULT_AUTOMATED_RETRY",
    "NAMESPACE_METADATA",
    "InvalidOperationState",
    "OperationPhase",
    "OperationState",
    "ResourceResult",
    "ResultCode",
    "TaskPhase",
    "retry_delay",
]

#: Argo CD's defaults for a backoff that leaves a field out (application_defaults.go)
DEFAULT_BACKOFF = Backoff(duration="5s", factor=2, max_duration="3m")
#: automated operations retry 5 times when ``spec.syncPolicy.retry`` is absent (§1.11)
DEFAULT_AUTOMATED_RETRY = Retry(limit=5, backoff=DEFAULT_BACKOFF)
#: the state's key for the managedNamespaceMetadata the operation applied (Argo CD
#: ``syncResult.managedNamespaceMetadata``); the store keeps it beyond the operation
NAMESPACE_METADATA = "managedNamespaceMetadata"


class InvalidOperationState(ValueError):
    """A persisted operation state that cannot be read; ``field`` is the path of the bad value."""

    def __init__(self, field_path: str, problem: str) -> None:
        self.field = field_path
        super().__init__(f"operation state: {field_path}: {problem}")


class OperationPhase(str, Enum):
    RUNNING = "Running"
    TERMINATING = "Terminating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"

    @property
    def completed(self) -> bool:
        return self in (OperationPhase.SUCCEEDED, OperationPhase.FAILED, OperationPhase.ERROR)


class ResultCode(str, Enum):
    """What happened to one resource (Argo CD's ``ResultCode``)."""

    SYNCED = "Synced"
    SYNC_FAILED = "SyncFailed"
    PRUNED = "Pruned"
    PRUNE_SKIPPED = "PruneSkipped"


class TaskPhase(str, Enum):
    """Where one task stands (Argo CD's per-resource ``hookPhase``, kept for non-hooks too)."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    TERMINATING = "Terminating"

    @property
    def completed(self) -> bool:
        return self in (TaskPhase.SUCCEEDED, TaskPhase.FAILED, TaskPhase.ERROR)

    @property
    def successful(self) -> bool:
        return self is TaskPhase.SUCCEEDED


@dataclass
class ResourceResult:
    """The result of one task: a resource in one sync phase (a hook can appear once per phase)."""

    key: ResourceKey
    sync_phase: Phase
    status: ResultCode
    task_phase: TaskPhase
    message: str = ""
    version: str = ""
    hook: bool = False
    wave: int = 0

    @property
    def label(self) -> str:
        """``group/Kind/name`` as in Argo CD's messages (the core group prints empty: ``/Pod/web``)."""
        return f"{self.key.group}/{self.key.kind}/{self.key.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.key.group,
            "version": self.version,
            "kind": self.key.kind,
            "namespace": self.key.namespace,
            "name": self.key.name,
            "status": self.status.value,
            "message": self.message,
            "hookType": self.sync_phase.value if self.hook else "",
            "hookPhase": self.task_phase.value,
            "syncPhase": self.sync_phase.value,
            "syncWave": self.wave,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str) -> ResourceResult:
        if not isinstance(data, Mapping):
            raise InvalidOperationState(where, "must be an object")
        key = ResourceKey(
            group=_str(data, "group", where),
            kind=_str(data, "kind", where, required=True),
            namespace=_str(data, "namespace", where),
            name=_str(data, "name", where, required=True),
        )
        wave = data.get("syncWave", 0)
        if not isinstance(wave, int) or isinstance(wave, bool):
            raise InvalidOperationState(f"{where}.syncWave", "must be an integer")
        return cls(
            key=key,
            sync_phase=_enum(Phase, data, "syncPhase", where),
            status=_enum(ResultCode, data, "status", where),
            task_phase=_enum(TaskPhase, data, "hookPhase", where),
            message=_str(data, "message", where),
            version=_str(data, "version", where),
            hook=bool(_str(data, "hookType", where)),
            wave=wave,
        )


@dataclass
class OperationState:
    """One sync operation. The engine works on a copy each tick and returns the new state."""

    operation_id: str
    phase: OperationPhase
    started_at: datetime
    message: str = ""
    finished_at: datetime | None = None
    retry_count: int = 0
    #: the resolved revision every tick of the operation syncs (pinned on the first tick)
    revision: str = ""
    results: list[ResourceResult] = field(default_factory=list)
    #: per attempt: the gate allowed this attempt's desired set (it runs again on every new attempt)
    gate_passed: bool = False
    #: per attempt: the server dry-run of every object passed
    dry_run_done: bool = False
    #: per attempt: why the attempt is failing while its SyncFail hooks run ("" when it is not failing)
    failure: str = ""
    #: when a failed attempt is retried (only while ``phase`` is Running and ``finished_at`` is set)
    next_attempt_at: datetime | None = None
    #: the gate's violations when it refused the operation, for the status and the audit trail
    violations: list[dict[str, str]] = field(default_factory=list)
    #: per attempt: each task's wave as planned on the attempt's first tick ("Phase:group/Kind/ns/name" → wave),
    #: so the order of steps stays put while pruned objects disappear from the live set
    waves: dict[str, int] = field(default_factory=dict)
    #: the managedNamespaceMetadata (``{"labels": ..., "annotations": ...}``) this operation applied to the
    #: destination namespace; None until it did
    managed_namespace_metadata: dict[str, Any] | None = None

    @classmethod
    def new(cls, operation_id: str, *, started_at: datetime, revision: str = "") -> OperationState:
        return cls(operation_id=operation_id, phase=OperationPhase.RUNNING, started_at=started_at, revision=revision)

    @property
    def completed(self) -> bool:
        return self.phase.completed

    @property
    def waiting_for_retry(self) -> bool:
        return self.phase is OperationPhase.RUNNING and self.finished_at is not None

    def result(self, key: ResourceKey, phase: Phase) -> ResourceResult | None:
        for res in self.results:
            if res.key == key and res.sync_phase is phase:
                return res
        return None

    def put_result(self, result: ResourceResult) -> None:
        """Record a task's result, replacing its earlier one (results keep their first-seen order)."""
        for i, res in enumerate(self.results):
            if res.key == result.key and res.sync_phase is result.sync_phase:
                self.results[i] = result
                return
        self.results.append(result)

    def start_attempt(self) -> None:
        """Forget the previous attempt (a retry re-runs the whole operation, from the gate on)."""
        self.results = []
        self.gate_passed = False
        self.dry_run_done = False
        self.failure = ""
        self.violations = []
        self.waves = {}
        self.finished_at = None
        self.next_attempt_at = None

    def copy(self) -> OperationState:
        return OperationState.from_dict(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        applied = self.managed_namespace_metadata
        return {
            "operationId": self.operation_id,
            "phase": self.phase.value,
            "message": self.message,
            "startedAt": self.started_at.isoformat(),
            "finishedAt": self.finished_at.isoformat() if self.finished_at else None,
            "retryCount": self.retry_count,
            "revision": self.revision,
            "resources": [r.to_dict() for r in self.results],
            "attempt": {
                "gatePassed": self.gate_passed,
                "dryRunDone": self.dry_run_done,
                "failure": self.failure,
                "nextAttemptAt": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
                "waves": dict(self.waves),
            },
            "violations": [dict(v) for v in self.violations],
            **({} if applied is None else {NAMESPACE_METADATA: copy.deepcopy(applied)}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OperationState:
        """Read back ``to_dict()``; raises :class:`InvalidOperationState` naming the bad field."""
        if not isinstance(data, Mapping):
            raise InvalidOperationState("(root)", "must be an object")
        attempt = data.get("attempt") or {}
        if not isinstance(attempt, Mapping):
            raise InvalidOperationState("attempt", "must be an object")
        started = _time(data, "startedAt", "")
        if started is None:
            raise InvalidOperationState("startedAt", "is required")
        retry_count = data.get("retryCount", 0)
        if not isinstance(retry_count, int) or isinstance(retry_count, bool) or retry_count < 0:
            raise InvalidOperationState("retryCount", "must be a non-negative integer")
        resources = data.get("resources") or []
        if not isinstance(resources, list):
            raise InvalidOperationState("resources", "must be a list")
        waves = attempt.get("waves") or {}
        if not isinstance(waves, Mapping) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in waves.values()
        ):
            raise InvalidOperationState("attempt.waves", "must map task names to integer waves")
        violations = data.get("violations") or []
        if not isinstance(violations, list) or not all(isinstance(v, Mapping) for v in violations):
            raise InvalidOperationState("violations", "must be a list of objects")
        namespace_metadata = data.get(NAMESPACE_METADATA)
        if namespace_metadata is not None and not isinstance(namespace_metadata, Mapping):
            raise InvalidOperationState(NAMESPACE_METADATA, "must be an object")
        return cls(
            operation_id=_str(data, "operationId", "", required=True),
            phase=_enum(OperationPhase, data, "phase", ""),
            started_at=started,
            message=_str(data, "message", ""),
            finished_at=_time(data, "finishedAt", ""),
            retry_count=retry_count,
            revision=_str(data, "revision", ""),
            results=[ResourceResult.from_dict(r, where=f"resources[{i}]") for i, r in enumerate(resources)],
            gate_passed=bool(attempt.get("gatePassed", False)),
            dry_run_done=bool(attempt.get("dryRunDone", False)),
            failure=_str(attempt, "failure", "attempt"),
            next_attempt_at=_time(attempt, "nextAttemptAt", "attempt"),
            violations=[{str(k): str(v) for k, v in item.items()} for item in violations],
            waves={str(k): v for k, v in waves.items()},
            managed_namespace_metadata=None if namespace_metadata is None else copy.deepcopy(dict(namespace_metadata)),
        )


def retry_delay(n: int, backoff: Backoff | None = None) -> timedelta:
    """``min(maxDuration, duration × factor^n)``; a ``maxDuration`` of 0 means no cap (§1.11, §4.14)."""
    b = backoff or DEFAULT_BACKOFF
    duration = b.duration_seconds
    cap = b.max_duration_seconds
    try:
        seconds = duration * float(b.factor) ** max(n, 0)
    except OverflowError:
        seconds = float("inf")
    if cap > 0:
        seconds = min(cap, seconds)
    # a timedelta holds at most ~2.7 million years; an uncapped backoff that large means "never"
    return timedelta(seconds=min(seconds, timedelta.max.total_seconds() - 1))


def _path(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _str(data: Mapping[str, Any], name: str, where: str, *, required: bool = False) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidOperationState(_path(where, name), "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidOperationState(_path(where, name), "must be a string")
    if required and not value:
        raise InvalidOperationState(_path(where, name), "must not be empty")
    return value


def _enum(cls: type[Any], data: Mapping[str, Any], name: str, where: str) -> Any:
    value = data.get(name)
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise InvalidOperationState(_path(where, name), f"{value!r} is not one of {allowed}") from None


def _time(data: Mapping[str, Any], name: str, where: str) -> datetime | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidOperationState(_path(where, name), "must be an RFC 3339 time string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidOperationState(_path(where, name), f"{value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise InvalidOperationState(_path(where, name), f"{value!r} has no time zone")
    return moment
