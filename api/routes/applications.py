"""``/api/v1/applications``: Argo CD's application API over :class:`sync.appservice.AppService`.

Who calls it: HTTP clients (the CLI's server mode, the UI, pipelines); :func:`api.app.create_app` includes the
router and :func:`install` maps the sync core's errors onto the one error shape. The routes need the running
system (``Services.system``, built by :func:`api.wiring.build_services`); without it they answer 503.

Every route is behind a ``require_applications_<action>`` dependency (:func:`api.appaccess.app_access`, or
:func:`api.deps.require` with the object from the body for create) whose object is ``<project>/<app>``
(reference §2.6); a forbidden and a missing app get the same 403 (PROJ-20). Rollback checks ``sync`` (Argo CD's
default). The listing shows only the apps the caller may ``get``.

A sync is checked by the policy gate before it is queued — render, compare, then the same gate the engine calls
(audited as ``app.sync.gate``) — so a denied sync answers 403 with the decision's violations and queues nothing;
the engine checks again when the operation runs. A sync-window ``override`` needs ``applications, override`` and
a non-empty ``reason``; the reason is recorded with the gate's decision in the audit log. Secret values are
masked in ``/manifests`` and ``/diff``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse

from api.app_schemas import (
    CREATE_OUTCOMES,
    OUTCOME_HEADER,
    AppCreate,
    AppList,
    AppManifests,
    AppUpdate,
    DiffPublic,
    HistoryList,
    OperationStarted,
    RefreshBody,
    ResourceTree,
    RollbackBody,
    SyncBody,
)
from api.appaccess import DeleteApp, GetApp, SyncApp, UpdateApp, rbac_name, system_of, visible_apps
from api.deps import AuditCtxDep, PrincipalDep, StateDep, authenticated, authorize, require
from api.errors import ApiError, error_body, request_id_of
from api.schemas import ERRORS
from api.state import AppState
from policy import audit
from policy.decision import Decision
from policy.kinds import group_of
from sync.application import Application
from sync.appservice import AppView, InvalidAppRequest
from sync.diff import mask_secret
from sync.engine_request import SelectedResource
from sync.gate import GateRequest
from sync.models import InvalidApplication
from sync.render import RenderError
from sync.store import AppExists, AppNotFound, AppStatus, OperationInProgress, StoredApp, StoreError, VersionConflict

__all__ = ["install", "router"]

router = APIRouter(prefix="/api/v1/applications", tags=["applications"], responses={**ERRORS, 409: {
    "model": ERRORS[403]["model"], "description": "conflict (an operation is running, a version changed)"}})

_CASCADE = Query(default=True, description="delete the app's resources first (Argo CD's default)")


def _view(state: AppState, stored: StoredApp) -> dict[str, Any]:
    system = system_of(state)
    view = system.apps.get(stored.namespace, stored.name).to_dict()
    view["status"]["history"] = [e.to_dict() for e in system.apps.history(stored.namespace, stored.name)]
    view["metadata"] = {**view.get("metadata", {}), "resourceVersion": str(stored.version)}
    return view


async def _body_object(request: Request) -> str:
    """``<project>/<app>`` of the Application in a create request's body (empty when it has none)."""
    try:
        data = await request.json()
    except ValueError:
        return ""
    manifest = data.get("application") if isinstance(data, dict) else None
    if not isinstance(manifest, dict):
        return ""
    meta, spec = manifest.get("metadata"), manifest.get("spec")
    name = meta.get("name") if isinstance(meta, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    project = spec.get("project") if isinstance(spec, dict) else None
    state: AppState = request.app.state.syncwarden
    cp = system_of(state).settings.sync.control_plane_namespace
    return rbac_name(project if isinstance(project, str) else "", namespace if isinstance(namespace, str) else "",
                     name if isinstance(name, str) else "", control_plane=cp)


def _admit(state: AppState, ctx: audit.AuditContext, action: str, app: Application) -> None:
    """Argo CD's create/update validation: the project exists and permits the sources and the destination.
    A denial is audited (``action``, result ``denied``, with the violations) before the 403."""
    project = system_of(state).project(app.project)
    if project is None:
        raise ApiError(422, f"spec.project: project {app.project!r} does not exist", violations=[
            {"code": "project.unknown", "message": f"project {app.project!r} does not exist",
             "field": "spec.project", "rule": ""}])
    checks = [project.check_source(src.repo_url, field=f"spec.sources[{i}].repoURL")
              for i, src in enumerate(app.sources)]
    checks.append(project.check_destination(server=app.destination.server, name=app.destination.name,
                                            namespace=app.destination.namespace))
    control_plane = system_of(state).settings.sync.control_plane_namespace
    if app.namespace and app.namespace != control_plane:  # apps in any namespace: sourceNamespaces (PROJ-14)
        checks.append(project.check_source_namespace(app.namespace, control_plane_namespace=control_plane))
    decision = Decision.combine(checks)
    if not decision:
        violations = [v.to_dict() for v in decision.violations]
        system_of(state).record(ctx, action=action, result="denied", app=app, at=state.now(), violations=violations)
        raise ApiError(403, decision.reason, violations=violations)


def _record(state: AppState, ctx: audit.AuditContext, action: str, app: Application, **details: Any) -> None:
    system_of(state).record(ctx, action=action, result="ok", app=app, at=state.now(), details=details)


@router.get("", response_model=AppList, dependencies=[authenticated()])
def list_applications(state: StateDep, principal: PrincipalDep, ctx: AuditCtxDep,
                      project: str | None = Query(default=None, description="only this project's apps")) -> AppList:
    """The applications the caller may get, with their status."""
    system = system_of(state)
    visible = visible_apps(state, principal, project=project)
    # every status in one read pays off only for many apps; a user who sees a few of thousands reads just theirs
    keys = [(stored.namespace, stored.name) for stored in visible]
    statuses = system.apps.store.apps.statuses(None if len(visible) > 64 else keys)
    running = set(system.apps.store.operations.in_progress())
    items = []
    for stored, key in zip(visible, keys, strict=True):
        view = AppView(stored, statuses.get(key) or AppStatus(), None).to_dict()
        view["status"]["operationInProgress"] = key in running
        items.append(view)
    state.store.audit.append(audit.AuditEvent.create(
        ctx=ctx, time=state.now(), action="applications.list", result="allowed",
        details={"visible": len(visible), "project": project or ""}))
    return AppList(items=items)


_CREATED: dict[int | str, dict[str, Any]] = {200: {"description": "the app as stored", "headers": {OUTCOME_HEADER: {
    "description": "what the request did: created, updated (upsert of a different spec) or unchanged (this "
                   "spec was stored already)", "schema": {"type": "string", "enum": list(CREATE_OUTCOMES)}}}}}


@router.post("", response_model=dict[str, Any], dependencies=[require("applications", "create", _body_object)],
             responses=_CREATED)
def create_application(body: AppCreate, state: StateDep, ctx: AuditCtxDep, response: Response) -> dict[str, Any]:
    """Create an application (an Argo CD Application manifest); its project must permit it. The same spec
    again is not an error (Argo CD's create is idempotent); a different one needs ``upsert``."""
    system = system_of(state)
    app = Application.from_dict(body.application, source="request body application")
    existing = system.apps.store.apps.find(app.namespace, app.name)
    _admit(state, ctx, "app.create" if existing is None else "app.update", app)
    if existing is not None and existing.manifest == body.application:
        response.headers[OUTCOME_HEADER] = "unchanged"
        return _view(state, existing)
    if existing is not None and not body.upsert:
        raise ApiError(409, f"application {app.name!r} already exists with a different spec; set upsert to replace it")
    if existing is not None:
        stored = system.apps.update(body.application, now=state.now(), source="request body application")
    else:
        stored = system.apps.create(body.application, now=state.now(), source="request body application")
    _record(state, ctx, "app.create" if existing is None else "app.update", app)
    response.headers[OUTCOME_HEADER] = "created" if existing is None else "updated"
    return _view(state, stored)


@router.get("/{name}", response_model=dict[str, Any])
def get_application(state: StateDep, stored: GetApp,
                    refresh: Literal["normal", "hard"] | None = Query(
                        default=None, description="ask for a comparison now (Argo CD's ?refresh=)")) -> dict[str, Any]:
    """One application with its status, operation state and history."""
    if refresh is not None:
        system_of(state).apps.refresh(stored.namespace, stored.name, now=state.now(), level=refresh,
                                      requested_by="api")
    return _view(state, stored)


@router.put("/{name}", response_model=dict[str, Any])
def update_application(name: str, body: AppUpdate, state: StateDep, principal: PrincipalDep, ctx: AuditCtxDep,
                       stored: UpdateApp) -> dict[str, Any]:
    """Replace an application's manifest; moving it to another project also needs ``update`` there."""
    app = Application.from_dict(body.application, source="request body application")
    if app.name != name or app.namespace != stored.namespace:
        raise ApiError(422, f"metadata: {app.namespace}/{app.name} differs from {stored.namespace}/{name} in the path")
    if app.project != stored.project:
        # moving an app needs update in the old project (the route's dependency) and create and update in the
        # new one, as in Argo CD (PROJ-10)
        cp = system_of(state).settings.sync.control_plane_namespace
        new_name = rbac_name(app.project, app.namespace, app.name, control_plane=cp)
        authorize(state, principal, ctx, "applications", "create", new_name)
        authorize(state, principal, ctx, "applications", "update", new_name)
    _admit(state, ctx, "app.update", app)
    updated = system_of(state).apps.update(body.application, now=state.now(), expected_version=body.expected_version,
                                           source="request body application")
    _record(state, ctx, "app.update", app)
    return _view(state, updated)


@router.delete("/{name}", response_model=dict[str, Any])
def delete_application(state: StateDep, ctx: AuditCtxDep, stored: DeleteApp,
                       cascade: bool = _CASCADE) -> dict[str, Any]:
    """Delete an application; with ``cascade`` its resources are deleted first (by the reconciler)."""
    marked = system_of(state).apps.delete(stored.namespace, stored.name, now=state.now(), cascade=cascade)
    _record(state, ctx, "app.delete", marked.application(), cascade=cascade)
    return {"name": marked.name, "namespace": marked.namespace, "cascade": cascade, "deleting": True}


@router.get("/{name}/resource-tree", response_model=ResourceTree)
def resource_tree(state: StateDep, stored: GetApp) -> ResourceTree:
    """The app's resources as last compared (kind, name, namespace, sync and health status), and the orphaned
    resources of its destination namespace when its project monitors them."""
    status = system_of(state).apps.store.apps.status(stored.namespace, stored.name)
    return ResourceTree(nodes=[dict(r) for r in status.resources],
                        orphaned_nodes=[dict(r) for r in status.orphaned_resources or ()])


def _render(state: AppState, stored: StoredApp, revision: str | None) -> tuple[Application, Any]:
    """The desired state from Git now: the shared branch listing is re-read first (as a refresh does)."""
    app = stored.application()
    renderer = system_of(state).env.renderer
    for src in app.sources:
        renderer.repos.expire_listing(src.repo_url)
    return app, renderer.render(app, revision=revision or None)


@router.get("/{name}/manifests", response_model=AppManifests)
def manifests(state: StateDep, stored: GetApp,
              revision: str = Query(default="", description="render at this revision")) -> AppManifests:
    """The rendered desired state from Git (Secret values masked)."""
    _, rendered = _render(state, stored, revision)
    objects = [obj for obj in mask_secret(*(m.obj for m in rendered.manifests)) if obj is not None]
    return AppManifests(manifests=objects, revision=",".join(rendered.revisions))


@router.get("/{name}/diff", response_model=DiffPublic)
def diff(state: StateDep, stored: GetApp,
         revision: str = Query(default="", description="compare with this revision")) -> DiffPublic:
    """Compare Git with the cluster now (Secret values masked)."""
    app, rendered = _render(state, stored, revision)
    env = system_of(state).env
    data = env.compare(app, rendered.manifests, env.live(app, fresh=True)).to_dict()
    return DiffPublic(instance=data["instance"], sync=data["sync"], health=data["health"],
                      resources=data["resources"], conditions=data["conditions"], revisions=list(rendered.revisions))


def _selected(body: SyncBody) -> list[SelectedResource]:
    return [SelectedResource(group=r.group, kind=r.kind, name=r.name, namespace=r.namespace) for r in body.resources]


def _gate_check(state: AppState, stored: StoredApp, body: SyncBody, subject: str, groups: tuple[str, ...],
                reason: str | None) -> None:
    """The gate's answer for this sync now (render, compare, gate); 403 with the violations on a denial."""
    app, rendered = _render(state, stored, body.revision)
    env = system_of(state).env
    comparison = env.compare(app, rendered.manifests, env.live(app))
    objects = list(comparison.targets)
    if body.resources:
        wanted = {(r.group, r.kind, r.name) for r in body.resources}
        objects = [o for o in objects if (group_of(str(o.get("apiVersion", ""))), o.get("kind"),
                                          (o.get("metadata") or {}).get("name")) in wanted]
    verdict = env.gate(GateRequest(app=app, objects=objects, trigger="manual", at=state.now(), subject=subject,
                                   groups=groups, override_reason=reason))
    if not verdict.allowed:
        violations = [{"code": v.code, "message": v.message, "field": v.field, "rule": v.rule}
                      for v in verdict.violations]
        reasons = "; ".join(v["message"] for v in violations) or "denied"
        raise ApiError(403, f"sync denied: {reasons}", violations=violations)


@router.post("/{name}/sync", response_model=OperationStarted)
def sync(body: SyncBody, state: StateDep, principal: PrincipalDep, ctx: AuditCtxDep,
         stored: SyncApp) -> OperationStarted:
    """Sync to the target (or a given) revision; prune, dry-run, selected resources, or a window override."""
    reason: str | None = None
    if body.override:
        if not (body.reason or "").strip():
            raise ApiError(422, "reason: an override needs a reason", violations=[
                {"code": "request.invalid", "message": "an override needs a reason", "field": "body.reason",
                 "rule": ""}])
        cp = system_of(state).settings.sync.control_plane_namespace
        authorize(state, principal, ctx, "applications", "override",
                  rbac_name(stored.project, stored.namespace, stored.name, control_plane=cp))
        reason = (body.reason or "").strip()
    _gate_check(state, stored, body, principal.subject, principal.groups, reason)
    op_id = system_of(state).apps.sync(
        stored.namespace, stored.name, now=state.now(), subject=principal.subject, groups=principal.groups,
        revision=body.revision, prune=body.prune, dry_run=body.dry_run, resources=_selected(body),
        override_reason=reason)
    return OperationStarted(operation_id=op_id, application=_view(state, stored))


@router.post("/{name}/rollback", response_model=OperationStarted)
def rollback(body: RollbackBody, state: StateDep, principal: PrincipalDep,
             stored: SyncApp) -> OperationStarted:
    """Sync to a history entry's source and revision (auto-sync must be off)."""
    op_id = system_of(state).apps.rollback(stored.namespace, stored.name, body.id, now=state.now(),
                                           subject=principal.subject, groups=principal.groups, prune=body.prune,
                                           dry_run=body.dry_run)
    return OperationStarted(operation_id=op_id, application=_view(state, stored))


@router.get("/{name}/history", response_model=HistoryList)
def history(state: StateDep, stored: GetApp) -> HistoryList:
    """Deployment history (Argo CD's ``status.history``), oldest first."""
    return HistoryList(items=[e.to_dict() for e in system_of(state).apps.history(stored.namespace, stored.name)])


@router.post("/{name}/refresh", response_model=dict[str, Any])
def refresh(body: RefreshBody, state: StateDep, stored: GetApp) -> dict[str, Any]:
    """Compare now (``hard`` also re-renders, bypassing the manifest cache)."""
    system_of(state).apps.refresh(stored.namespace, stored.name, now=state.now(), level=body.refresh,
                                  requested_by="api")
    return _view(state, stored)


@router.delete("/{name}/operation", response_model=dict[str, Any])
def terminate(state: StateDep, principal: PrincipalDep, stored: SyncApp) -> dict[str, Any]:
    """Terminate the running operation (at its next step; a pending retry is cancelled)."""
    op_id = system_of(state).apps.terminate(stored.namespace, stored.name, now=state.now(), subject=principal.subject)
    return {"operationId": op_id, "terminating": True}


def _handler(status: int, *, code: str | None = None) -> Any:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        message = str(exc)
        violations = None
        if isinstance(exc, InvalidApplication):
            violations = [{"code": "application.invalid", "message": exc.detail, "field": exc.field, "rule": ""}]
        actual = status
        if isinstance(exc, RenderError) and exc.retryable:
            actual = 503
        body = error_body(code or ("unavailable" if actual == 503 else _CODES[actual]), message,
                          request_id=request_id_of(request), violations=violations)
        return JSONResponse(body, status_code=actual)

    return handle


_CODES = {400: "bad-request", 404: "not-found", 409: "conflict", 422: "invalid"}


def install(app: FastAPI) -> None:
    """Map the sync core's errors onto the error shape (registered by ``create_app``)."""
    app.add_exception_handler(AppNotFound, _handler(404))
    app.add_exception_handler(AppExists, _handler(409))
    app.add_exception_handler(VersionConflict, _handler(409))
    app.add_exception_handler(OperationInProgress, _handler(409))
    app.add_exception_handler(StoreError, _handler(400))
    app.add_exception_handler(InvalidAppRequest, _handler(400))
    app.add_exception_handler(InvalidApplication, _handler(422))
    app.add_exception_handler(RenderError, _handler(422))

