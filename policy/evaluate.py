"""The one gate: may this request put these objects, from this source, into this destination, now?

Every path to a cluster calls :func:`evaluate`: ``syncwarden check`` (offline, for pipelines), the HTTP
admission endpoints, and the reconciler (through the gate that ``api`` injects into ``sync``). It combines

1. RBAC: may ``subject`` perform ``action`` on the app (when an authorizer and a subject are given);
2. the app itself: its project, the namespace the Application lives in (``sourceNamespaces``), every source
   repository (``sourceRepos``) and its destination (``destinations``);
3. every object: its kind must be permitted (cluster-scoped kinds only when whitelisted), its scope must be
   known, and a namespaced object's namespace (its own ``metadata.namespace``, or else the app's destination
   namespace) must be a permitted destination on the app's cluster; a child ``Application`` must stay in the
   parent's project (app-of-apps cannot escalate, security-cases PROJ-15);
4. the sync windows for the kind of sync (``auto`` or ``manual``); a manual sync blocked by a window passes
   only with ``override`` permission *and* a reason, which the decision records.

It returns every violation, not just the first. It never raises: a failure to evaluate is a denial with
code ``policy.error`` and a log line (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from policy.decision import Code, Decision, Violation
from policy.kinds import KindLookup, KindTable

if TYPE_CHECKING:
    from policy.project import AppProject
    from policy.rbac import Authorizer

__all__ = ["AppTarget", "ObjectRef", "evaluate", "rbac_name"]

log = logging.getLogger(__name__)

SyncKind = Literal["auto", "manual"]

#: Argo CD's alias for the cluster the service runs in.
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
IN_CLUSTER_NAME = "in-cluster"


@dataclass(frozen=True, slots=True)
class AppTarget:
    """What the gate needs to know about an Application (built by ``api`` from ``sync``'s model)."""

    name: str
    project: str
    repo_urls: tuple[str, ...]
    destination_namespace: str
    destination_server: str = ""
    destination_name: str = ""
    #: the namespace the Application object itself lives in; "" means the control-plane namespace
    namespace: str = ""
    #: the resolved cluster (server URL and registered name) when the caller knows it; else derived
    cluster_server: str = ""
    cluster_name: str = ""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One object about to be applied. ``where`` says where it came from, e.g. ``deploy.yaml[0]``."""

    group: str
    kind: str
    name: str
    namespace: str = ""
    where: str = ""
    #: for ``argoproj.io/Application`` children: the project the child names ("" when absent)
    child_project: str | None = None


def rbac_name(app: AppTarget, *, control_plane_namespace: str) -> str:
    """Argo CD's RBAC object for an app: ``project/app``, or ``project/namespace/app`` outside the
    control-plane namespace (reference §2.6)."""
    project = app.project or "default"
    if app.namespace and app.namespace != control_plane_namespace:
        return f"{project}/{app.namespace}/{app.name}"
    return f"{project}/{app.name}"


def _cluster_of(app: AppTarget) -> tuple[str, str]:
    server, name = app.cluster_server or app.destination_server, app.cluster_name or app.destination_name
    if server == IN_CLUSTER_SERVER and not name:
        name = IN_CLUSTER_NAME
    elif name == IN_CLUSTER_NAME and not server:
        server = IN_CLUSTER_SERVER
    return server, name


def evaluate(
    *,
    project: AppProject,
    app: AppTarget,
    objects: Sequence[ObjectRef] = (),
    kinds: KindLookup | None = None,
    sync: SyncKind | None = None,
    at: datetime | None = None,
    started_at: datetime | None = None,
    authorizer: Authorizer | None = None,
    subject: str | None = None,
    groups: Sequence[str] = (),
    action: str = "sync",
    override_reason: str | None = None,
    control_plane_namespace: str = "syncwarden",
) -> Decision:
    """Evaluate the whole gate; see the module docstring. ``at`` is required when ``sync`` is given."""
    try:
        return _evaluate(
            project=project,
            app=app,
            objects=objects,
            kinds=kinds or KindTable.builtin(),
            sync=sync,
            at=at,
            started_at=started_at,
            authorizer=authorizer,
            subject=subject,
            groups=groups,
            action=action,
            override_reason=override_reason,
            control_plane_namespace=control_plane_namespace,
        )
    except Exception as exc:  # fail closed: whatever went wrong, the answer is no
        log.exception("policy evaluation failed for app %r in project %r; denying", app.name, app.project)
        return Decision.deny(
            Violation(
                Code.POLICY_ERROR,
                f"the policy could not be evaluated ({type(exc).__name__}); denied",
                field="",
                rule="fail closed",
            )
        )


def _evaluate(
    *,
    project: AppProject,
    app: AppTarget,
    objects: Sequence[ObjectRef],
    kinds: KindLookup,
    sync: SyncKind | None,
    at: datetime | None,
    started_at: datetime | None,
    authorizer: Authorizer | None,
    subject: str | None,
    groups: Sequence[str],
    action: str,
    override_reason: str | None,
    control_plane_namespace: str,
) -> Decision:
    parts: list[Decision] = []
    obj_name = rbac_name(app, control_plane_namespace=control_plane_namespace)

    if authorizer is not None and subject is not None:
        parts.append(_rbac(authorizer, subject, groups, action, obj_name))

    if (app.project or "default") != project.name:
        parts.append(
            Decision.deny(
                Violation(
                    Code.PROJECT_MISMATCH,
                    f"app {app.name!r} belongs to project {app.project or 'default'!r}, "
                    f"not {project.name!r}",
                    field="spec.project",
                    rule=f"project {project.name}",
                )
            )
        )
    if app.namespace and app.namespace != control_plane_namespace:
        parts.append(
            project.check_source_namespace(app.namespace, control_plane_namespace=control_plane_namespace)
        )
    for i, url in enumerate(app.repo_urls):
        field = f"spec.sources[{i}].repoURL" if len(app.repo_urls) > 1 else "spec.source.repoURL"
        parts.append(_refield(project.check_source(url), field))

    server, cluster_name = _cluster_of(app)
    parts.append(
        _refield(
            project.check_destination(server=server, name=cluster_name, namespace=app.destination_namespace),
            "spec.destination",
        )
    )
    parts.extend(_check_objects(project, app, objects, kinds, server, cluster_name))

    if sync is not None:
        if at is None:
            raise ValueError("evaluate(sync=...) needs the time `at`")
        parts.append(
            _windows(
                project,
                app,
                sync=sync,
                at=at,
                started_at=started_at,
                authorizer=authorizer,
                subject=subject,
                groups=groups,
                obj_name=obj_name,
                override_reason=override_reason,
            )
        )
    return Decision.combine(parts)


def _refield(decision: Decision, field: str) -> Decision:
    """Name the input field on violations that the gate reported without one."""
    if decision.allowed or all(v.field for v in decision.violations):
        return decision
    return Decision(
        False,
        tuple(v if v.field else Violation(v.code, v.message, field, v.rule) for v in decision.violations),
        decision.rule,
        decision.details,
    )


def _under(decision: Decision, where: str) -> Decision:
    """Prefix the fields of an object's violations with where the object came from (``file[index]``)."""
    if decision.allowed:
        return decision
    return Decision(
        False,
        tuple(
            Violation(v.code, v.message, f"{where}.{v.field}" if v.field else where, v.rule)
            for v in decision.violations
        ),
        decision.rule,
        decision.details,
    )


def _rbac(authorizer: Authorizer, subject: str, groups: Sequence[str], action: str, obj: str) -> Decision:
    decision = authorizer.enforce(subject, "applications", action, obj, groups=groups)
    if decision.allowed:
        return decision
    return Decision(
        False,
        tuple(
            Violation(Code.RBAC_DENIED, v.message, v.field or "subject", v.rule) if v.code != Code.POLICY_ERROR else v
            for v in decision.violations
        ),
        decision.rule,
        decision.details,
    )


def _check_objects(
    project: AppProject,
    app: AppTarget,
    objects: Sequence[ObjectRef],
    kinds: KindLookup,
    server: str,
    cluster_name: str,
) -> list[Decision]:
    out: list[Decision] = []
    checked_namespaces: dict[str, Decision] = {}
    for obj in objects:
        label = f"{obj.group or 'core'}/{obj.kind} {obj.name!r}"
        where = obj.where or label
        namespaced = kinds.namespaced(obj.group, obj.kind)
        if namespaced is None:
            out.append(
                Decision.deny(
                    Violation(
                        Code.RESOURCE_UNKNOWN_KIND,
                        f"{label}: kind {obj.kind!r} of group {obj.group or 'core'!r} is unknown, so its "
                        "permissions cannot be verified (pass --api-resources or include its CRD)",
                        field=where,
                        rule="kinds",
                    )
                )
            )
            continue
        resource = project.check_resource(group=obj.group, kind=obj.kind, namespaced=namespaced, name=obj.name)
        out.append(_under(resource, where))
        if namespaced:
            namespace = obj.namespace or app.destination_namespace
            if namespace not in checked_namespaces:
                checked_namespaces[namespace] = project.check_destination(
                    server=server, name=cluster_name, namespace=namespace
                )
            decision = checked_namespaces[namespace]
            if not decision.allowed:
                field = f"{where}.metadata.namespace" if obj.namespace else where
                out.append(
                    Decision.deny(
                        *(
                            Violation(
                                Code.NAMESPACE_NOT_PERMITTED
                                if v.code == Code.DESTINATION_NOT_PERMITTED
                                else v.code,
                                f"{label}: {v.message}",
                                field,
                                v.rule,
                            )
                            for v in decision.violations
                        )
                    )
                )
        if obj.group == "argoproj.io" and obj.kind == "Application" and obj.child_project is not None:
            child = obj.child_project or "default"
            if child != project.name:
                out.append(
                    Decision.deny(
                        Violation(
                            Code.PROJECT_MISMATCH,
                            f"{label}: a child Application must stay in its parent's project {project.name!r}, "
                            f"but names {child!r}",
                            f"{where}.spec.project",
                            "app-of-apps: children stay in the parent's project",
                        )
                    )
                )
    return out


def _windows(
    project: AppProject,
    app: AppTarget,
    *,
    sync: SyncKind,
    at: datetime,
    started_at: datetime | None,
    authorizer: Authorizer | None,
    subject: str | None,
    groups: Sequence[str],
    obj_name: str,
    override_reason: str | None,
) -> Decision:
    from policy import windows  # local: keeps evaluate importable while windows loads croniter lazily

    decision = windows.check_sync(
        project.sync_windows or (),
        manual=sync == "manual",
        app=app.name,
        namespace=app.destination_namespace,
        server=app.destination_server,
        cluster_name=app.destination_name,
        at=at,
        started_at=started_at,
    )
    if decision.allowed or sync != "manual" or override_reason is None:
        return decision
    reason = override_reason.strip()
    if not reason:
        return Decision.combine(
            [
                decision,
                Decision.deny(
                    Violation(Code.WINDOW_BLOCKED, "an override needs a non-empty reason", "reason", "override")
                ),
            ]
        )
    if authorizer is None or subject is None:
        return Decision.combine(
            [
                decision,
                Decision.deny(
                    Violation(
                        Code.RBAC_DENIED,
                        "overriding a sync window needs the 'override' permission, and no caller identity was given",
                        "subject",
                        "override",
                    )
                ),
            ]
        )
    permitted = authorizer.enforce(subject, "applications", "override", obj_name, groups=groups)
    if not permitted.allowed:
        return Decision.combine([decision, _rbac(authorizer, subject, groups, "override", obj_name)])
    details: dict[str, Any] = {
        "override": {
            "reason": reason,
            "subject": subject,
            "overridden": [v.to_dict() for v in decision.violations],
        }
    }
    return Decision.allow(f"window override by {subject}: {permitted.rule}", **details)
