"""How policy and the audit log bind to the sync core's seams: the live policy view, the audit event sink and
the gate. Built by :func:`api.wiring.build_services` (the one composition root), which re-exports them.

* :data:`LivePolicyView` (= :class:`api.state.PolicyCache`, the one live-policy implementation): the Authorizer
  (the newest stored RBAC policy plus every stored project's runtime policy) and the parsed projects, re-read at
  most every ``interval`` seconds; a project that cannot be loaded is absent (its apps are denied) and listed by
  ``broken()``;
* :class:`AuditSink`: ``sync.gate.EventSink`` appending every :class:`sync.gate.SyncEvent` to the audit log as
  ``app.<event>``; it raises when the record cannot be written, so the engine refuses the change;
* :class:`RoutingGate`: ``sync.gate.Gate``, a :class:`api.gate.PolicyGate` per request with the app's own
  cluster as the kind scope; every decision is audited (``app.sync.gate``) and one that cannot be is a denial;
* :func:`orphan_monitor`: a project's ``orphanedResources`` as the :class:`sync.orphans.OrphanMonitor` the
  reconciler's environment asks for (``Environment.orphan_monitor``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api.gate import PolicyGate, Scope
from api.state import PolicyCache
from policy import audit
from policy.project import AppProject
from sync.application import Application
from sync.gate import GateRequest, GateVerdict, SyncEvent
from sync.gate import Violation as GateViolation
from sync.orphans import OrphanMonitor

__all__ = ["AuditSink", "LivePolicyView", "RoutingGate", "audit_event", "orphan_monitor"]

log = logging.getLogger(__name__)


#: the live policy of a running system is :class:`api.state.PolicyCache` — one implementation, shared by the sync
#: gate, prune permits and the HTTP API's routes (``api.serve`` hands ``Services.policy`` to ``create_app``)
LivePolicyView = PolicyCache


def audit_event(event: SyncEvent, *, client: str) -> audit.AuditEvent:
    """The audit record of one sync event: the reconciler acts as ``syncwarden`` when nobody asked."""
    ctx = audit.AuditContext(subject=event.subject or "syncwarden", client=client, request_id=event.operation_id)
    action = event.action if event.action.startswith("app.") else f"app.{event.action}"
    details: dict[str, Any] = {"operation": event.operation_id, **dict(event.details)}
    if event.message:
        details["message"] = event.message
    return audit.AuditEvent.create(
        ctx=ctx,
        time=event.at,
        action=action,
        result=event.result,
        project=event.project,
        app=event.app,
        object=event.target,
        violations=[{"code": v.code, "message": v.message, "field": v.field, "rule": v.rule}
                    for v in event.violations],
        details=details,
    )


@dataclass
class AuditSink:
    """``sync.gate.EventSink`` over the audit log; raises ``AuditUnavailable`` when a record cannot be written.
    ``observers`` see each event after it was recorded (the CLI's live progress)."""

    log: Any  # policy.store.AuditLog (anything with ``append(AuditEvent)``)
    client: str = "reconciler"
    observers: list[Callable[[SyncEvent], None]] = field(default_factory=list)

    def __call__(self, event: SyncEvent) -> None:
        self.log.append(audit_event(event, client=self.client))
        for observer in self.observers:
            observer(event)


class RoutingGate:
    """``sync.gate.Gate``: a :class:`PolicyGate` per request, with the app's own cluster as the kind scope.

    Every decision is audited (``app.sync.gate``: the trigger, the rule, the violations, and an override's
    reason); a decision that cannot be recorded is a denial (fail closed)."""

    def __init__(self, policy: LivePolicyView, scope_for: Callable[[Application], Scope | None], *,
                 control_plane_namespace: str, audit_log: Any, client: str) -> None:
        self._policy = policy
        self._scope_for = scope_for
        self._cp = control_plane_namespace
        self._audit = audit_log
        self._client = client

    def __call__(self, request: GateRequest) -> GateVerdict:
        try:
            scope = self._scope_for(request.app)
            authorizer = self._policy.authorizer()
        except Exception:  # an unreachable cluster or store: the gate must still answer, and it denies
            log.exception("gate for app %r could not be prepared; denying", request.app.name)
            verdict = PolicyGate(projects=lambda name: None)(request)
        else:
            gate = PolicyGate(projects=self._policy.project, authorizer=authorizer, scope=scope,
                              control_plane_namespace=self._cp)
            verdict = gate(request)
        return self._recorded(request, verdict)

    def _recorded(self, request: GateRequest, verdict: GateVerdict) -> GateVerdict:
        details: dict[str, Any] = {"trigger": request.trigger, "rule": verdict.rule, "objects": len(request.objects),
                                   **dict(verdict.details)}
        if request.override_reason is not None:
            details["overrideReason"] = request.override_reason
        ctx = audit.AuditContext(subject=request.subject or "syncwarden", client=self._client)
        event = audit.AuditEvent.create(
            ctx=ctx, time=request.at, action="app.sync.gate", result="allowed" if verdict.allowed else "denied",
            project=request.app.project, app=request.app.name,
            violations=[{"code": v.code, "message": v.message, "field": v.field, "rule": v.rule}
                        for v in verdict.violations],
            details=details,
        )
        try:
            self._audit.append(event)
        except audit.AuditUnavailable as exc:
            log.error("app %s: the gate's decision could not be audited; denying: %s", request.app.name, exc)
            denial = GateViolation("audit.unavailable", f"the decision could not be audited: {exc}")
            return GateVerdict(False, (denial,))
        return verdict


def orphan_monitor(project: AppProject | None) -> OrphanMonitor | None:
    """The monitor of ``project``'s ``orphanedResources``; None when the project does not monitor them (or is
    unknown: nothing is reported for an app whose project cannot be read)."""
    settings = project.orphaned_resources if project is not None else None
    if settings is None:
        return None
    return OrphanMonitor(
        warn=settings.warns,
        ignored=lambda group, kind, name: settings.ignores(group=group, kind=kind, name=name),
    )
