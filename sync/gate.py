"""The seams through which policy and audit reach the sync core without ``sync`` importing them.

``sync`` declares the *shape* of a gate and of an event sink; ``api`` (the composition root) binds the policy
engine (``policy.evaluate``) and the audit log to them, the way Argo CD's controller binds
``validateSyncPermissions`` through ``WithPermissionValidator``.

The engine calls the gate with the whole desired set (hooks included) before anything is written, and again
whenever a queued or retried operation actually executes, so a project edited in between is respected. App
deletion calls it (trigger ``delete``) with the PreDelete/PostDelete hooks it is about to create.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from sync.application import Application

__all__ = ["EventSink", "Gate", "GateRequest", "GateTrigger", "GateVerdict", "SyncEvent", "SyncTrigger", "Violation"]

#: what started a sync: the reconciler's automated sync, self-heal, a retry, a webhook refresh, or a person
SyncTrigger = Literal["auto", "self-heal", "retry", "webhook", "manual", "rollback"]
#: what the gate may be asked about: a sync, or the deletion hooks of an app being deleted (``delete``)
GateTrigger = SyncTrigger | Literal["delete"]


@dataclass(frozen=True, slots=True)
class Violation:
    code: str
    message: str
    field: str = ""
    rule: str = ""


@dataclass(frozen=True)
class GateVerdict:
    allowed: bool
    violations: tuple[Violation, ...] = ()
    rule: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class GateRequest:
    app: Application
    #: every object the operation may write, hooks included, as rendered (namespaces defaulted)
    objects: Sequence[Mapping[str, Any]]
    trigger: GateTrigger
    at: datetime
    #: when the operation started (for sync windows' overrun rule); None when it is about to start
    started_at: datetime | None = None
    #: who asked (a subject like ``alice`` or ``proj:web:ci``); None for the reconciler itself
    subject: str | None = None
    groups: tuple[str, ...] = ()
    #: a person's reason to override a sync window (needs the ``override`` permission)
    override_reason: str | None = None


class Gate(Protocol):
    def __call__(self, request: GateRequest) -> GateVerdict: ...


@dataclass(frozen=True)
class SyncEvent:
    """One thing that happened to an app: an operation phase change or one resource's result."""

    app: str
    project: str
    action: str  # e.g. "sync.started", "sync.resource", "sync.succeeded", "sync.failed", "sync.denied"
    result: str  # "allowed" | "denied" | "succeeded" | "failed" | ...
    at: datetime
    operation_id: str = ""
    subject: str | None = None
    target: str = ""
    message: str = ""
    violations: tuple[Violation, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


class EventSink(Protocol):
    """Receives every event; raising refuses the change (the audit log could not record it)."""

    def __call__(self, event: SyncEvent) -> None: ...
