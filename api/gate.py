"""Binds the policy engine to the sync core's gate seam (``sync.gate.Gate``) — the composition root's job.

``sync`` never imports ``policy``; it calls whatever :class:`sync.gate.Gate` it was given. This module is that
gate: it turns a :class:`~sync.gate.GateRequest` (an app, the objects an operation may write, the trigger, the
time, the caller) into one call of :func:`policy.evaluate.evaluate` and the answer back into a
:class:`~sync.gate.GateVerdict`. It also builds the ``may_prune`` predicate the engine uses so that nothing
outside the project's kinds and destinations is ever deleted.

Automatic triggers (``auto``, ``self-heal``, ``retry``, ``webhook``) are checked as automatic syncs against the
sync windows; ``manual`` and ``rollback`` as manual ones, with RBAC for the caller when there is one. ``delete``
(the PreDelete/PostDelete hooks of an app being deleted) is checked against the project's sources, destinations
and kinds but not the sync windows: as in Argo CD, a window never holds up an app's deletion.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from policy import evaluate as policy_gate
from policy.decision import Code, Decision, Violation
from policy.kinds import KindTable, group_of
from policy.project import AppProject
from policy.rbac import Authorizer
from sync import gate as sync_gate
from sync.application import Application

__all__ = ["PolicyGate", "Scope", "app_target", "object_ref", "prune_permit"]

log = logging.getLogger(__name__)

#: (group, kind) → namespaced? None when the cluster does not know the kind (cluster discovery)
Scope = Callable[[str, str], bool | None]

_MANUAL_TRIGGERS = frozenset({"manual", "rollback"})


def app_target(app: Application, *, cluster_server: str = "", cluster_name: str = "") -> policy_gate.AppTarget:
    return policy_gate.AppTarget(
        name=app.name,
        project=app.project,
        repo_urls=tuple(s.repo_url for s in app.sources),
        destination_namespace=app.destination.namespace,
        destination_server=app.destination.server,
        destination_name=app.destination.name,
        namespace=app.namespace,
        cluster_server=cluster_server,
        cluster_name=cluster_name,
    )


def object_ref(obj: Mapping[str, Any], *, where: str = "") -> policy_gate.ObjectRef:
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind", ""))
    group = group_of(str(obj.get("apiVersion", "")))
    name = str(meta.get("name") or meta.get("generateName") or "")
    child_project: str | None = None
    if group == "argoproj.io" and kind == "Application":
        spec = obj.get("spec")
        project = spec.get("project") if isinstance(spec, Mapping) else None
        child_project = project if isinstance(project, str) else ""
    namespace = str(meta.get("namespace") or "")
    return policy_gate.ObjectRef(group, kind, name, namespace, where or f"{kind}/{name}", child_project)


class _Kinds:
    """Scope from CRDs among the objects first, then the cluster's discovery."""

    def __init__(self, scope: Scope | None, objects: Sequence[Mapping[str, Any]]) -> None:
        self._scope = scope
        self._crds = KindTable({}, {}).with_crds((o, f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}")
                                                 for o in objects)
        self._builtin = KindTable.builtin()

    def namespaced(self, group: str, kind: str) -> bool | None:
        known = self._crds.namespaced(group, kind)
        if known is not None:
            return known
        if self._scope is not None:
            return self._scope(group, kind)
        return self._builtin.namespaced(group, kind)


def _verdict(decision: Decision) -> sync_gate.GateVerdict:
    return sync_gate.GateVerdict(
        allowed=decision.allowed,
        violations=tuple(sync_gate.Violation(v.code, v.message, v.field, v.rule) for v in decision.violations),
        rule=decision.rule,
        details=dict(decision.details),
    )


class PolicyGate:
    """The gate the reconciler and the API hand to the sync engine."""

    def __init__(
        self,
        *,
        projects: Callable[[str], AppProject | None],
        authorizer: Authorizer | None = None,
        scope: Scope | None = None,
        control_plane_namespace: str = "syncwarden",
    ) -> None:
        self._projects = projects
        self._authorizer = authorizer
        self._scope = scope
        self._control_plane_namespace = control_plane_namespace

    def __call__(self, request: sync_gate.GateRequest) -> sync_gate.GateVerdict:
        app = request.app
        try:
            project = self._projects(app.project)
        except Exception:  # the store failed: fail closed, with a log line
            log.exception("could not load project %r for app %r; denying", app.project, app.name)
            project = None
            missing = "could not be loaded"
        else:
            missing = "does not exist"
        if project is None:
            return _verdict(
                Decision.deny(
                    Violation(
                        Code.PROJECT_UNKNOWN,
                        f"project {app.project!r} of app {app.name!r} {missing}; denied",
                        "spec.project",
                        "project",
                    )
                )
            )
        manual = request.trigger in _MANUAL_TRIGGERS
        sync: Literal["auto", "manual"] | None = None if request.trigger == "delete" else "manual" if manual else "auto"
        decision = policy_gate.evaluate(
            project=project,
            app=app_target(app),
            objects=[object_ref(o) for o in request.objects],
            kinds=_Kinds(self._scope, request.objects),
            sync=sync,
            at=request.at,
            started_at=request.started_at,
            authorizer=self._authorizer if request.subject is not None else None,
            subject=request.subject,
            groups=request.groups,
            action="sync",
            override_reason=request.override_reason if manual else None,
            control_plane_namespace=self._control_plane_namespace,
        )
        return _verdict(decision)


def prune_permit(project: AppProject, app: Application, scope: Scope | None) -> Callable[[Mapping[str, Any]], bool]:
    """``may_prune`` for the engine: only objects whose kind the project permits and, when namespaced, whose
    namespace is a permitted destination of the app's cluster. Unknown scope: refuse (fail closed)."""
    kinds = _Kinds(scope, ())
    target = app_target(app)

    def may_prune(live: Mapping[str, Any]) -> bool:
        ref = object_ref(live)
        namespaced = kinds.namespaced(ref.group, ref.kind)
        if namespaced is None:
            return False
        if not project.check_resource(group=ref.group, kind=ref.kind, namespaced=namespaced, name=ref.name):
            return False
        if namespaced:
            return bool(
                project.check_destination(
                    server=target.destination_server,
                    name=target.destination_name,
                    namespace=ref.namespace or target.destination_namespace,
                )
            )
        return True

    return may_prune
