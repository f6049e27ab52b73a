"""Every change the sync engine makes to an operation goes through here, and to the event sink first.

Who calls it: :mod:`sync.engine` and :mod:`sync.engine_steps`. An operation phase change and every
resource result is sent to the injected :class:`sync.gate.EventSink` (which ``api`` binds to the audit
log) *before* it is recorded in the operation state. When the sink raises, the change is refused:
:class:`AuditUnavailable` stops the tick before anything further is written, and the engine ends the
operation ``Error`` "audit log unavailable" (a change nobody can audit must not go on).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sync.gate import EventSink, SyncEvent, Violation
from sync.operation import OperationPhase, OperationState, ResourceResult, ResultCode

__all__ = ["AUDIT_UNAVAILABLE", "AuditUnavailable", "Recorder"]

log = logging.getLogger(__name__)

AUDIT_UNAVAILABLE = "audit log unavailable"

_RESULT_WORD = {
    ResultCode.SYNCED: "synced",
    ResultCode.SYNC_FAILED: "failed",
    ResultCode.PRUNED: "pruned",
    ResultCode.PRUNE_SKIPPED: "skipped",
}
_PHASE_ACTION = {
    OperationPhase.RUNNING: ("sync.running", "running"),
    OperationPhase.TERMINATING: ("sync.terminating", "terminating"),
    OperationPhase.SUCCEEDED: ("sync.succeeded", "succeeded"),
    OperationPhase.FAILED: ("sync.failed", "failed"),
    OperationPhase.ERROR: ("sync.error", "error"),
}


class AuditUnavailable(Exception):
    """The event sink refused an event; the change it described must not happen."""


class Recorder:
    """Changes to one operation during one tick, each announced to the sink before it is made."""

    def __init__(
        self, sink: EventSink, op: OperationState, *, app: str, project: str, subject: str | None, now: datetime
    ) -> None:
        self.sink = sink
        self.op = op
        self.app = app
        self.project = project
        self.subject = subject
        self.now = now

    def emit(
        self,
        action: str,
        result: str,
        *,
        target: str = "",
        message: str = "",
        violations: Sequence[Violation] = (),
        details: dict[str, Any] | None = None,
    ) -> None:
        event = SyncEvent(
            app=self.app,
            project=self.project,
            action=action,
            result=result,
            at=self.now,
            operation_id=self.op.operation_id,
            subject=self.subject,
            target=target,
            message=message,
            violations=tuple(violations),
            details=details or {},
        )
        try:
            self.sink(event)
        except Exception as exc:  # any failure of the injected sink means "not recorded"
            log.error("app %s operation %s: event sink refused %s: %s", self.app, self.op.operation_id, action, exc)
            raise AuditUnavailable(AUDIT_UNAVAILABLE) from exc

    def record(self, result: ResourceResult) -> None:
        """Record a task's result (announced first); an unchanged result is not announced again."""
        before = self.op.result(result.key, result.sync_phase)
        if before == result:
            return
        self.emit(
            "sync.resource",
            _RESULT_WORD[result.status],
            target=str(result.key),
            message=result.message,
            details={
                "status": result.status.value,
                "hookPhase": result.task_phase.value,
                "syncPhase": result.sync_phase.value,
                "hook": result.hook,
                "wave": result.wave,
            },
        )
        self.op.put_result(result)

    def phase(
        self,
        phase: OperationPhase,
        message: str,
        *,
        action: str | None = None,
        result: str | None = None,
        violations: Sequence[Violation] = (),
    ) -> None:
        """Move the operation to ``phase``; a change of phase (or an explicit action) is announced first."""
        if phase is not self.op.phase or action is not None:
            default_action, default_result = _PHASE_ACTION[phase]
            self.emit(
                action or default_action,
                result or default_result,
                message=message,
                violations=violations,
                details={"phase": phase.value, "retryCount": self.op.retry_count},
            )
        self.op.phase = phase
        self.op.message = message
        if phase.completed:
            self.op.finished_at = self.now

    def audit_failed(self) -> None:
        """End the operation Error without an event: the sink is the thing that failed."""
        self.op.phase = OperationPhase.ERROR
        self.op.message = AUDIT_UNAVAILABLE
        self.op.finished_at = self.now
        self.op.next_attempt_at = None
