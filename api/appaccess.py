"""Finding an application for a request and deciding whether the caller may act on it.

Who calls it: :mod:`api.routes.applications` (every route's ``require`` dependency and the listing). The RBAC
object is Argo CD's app name (reference §2.6): ``<project>/<app>`` in the control-plane namespace, otherwise
``<project>/<namespace>/<app>``.

Enumeration (security-cases PROJ-20): an app the caller may not see and an app that does not exist get the same
403 — same status, same body. A missing app is checked against ``*/<app>`` (``*/<ns>/<app>``), so only a caller
allowed to see an app of that name in every project learns that it is missing (404). Every decision is audited
by :func:`api.deps.authorize` as on every other route.

The listing filter skips, with one question per project, the projects where the caller can see nothing, then asks
the Authorizer once per distinct (project, namespace, name) among the remaining stored apps, with
the statuses and the operations in progress read in one query each, so showing one user's apps among thousands
stays well under the issue's 100 ms target (``tests/api/test_api_applications.py`` prints the figure).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.auth import Principal
from api.deps import AuditCtxDep, PrincipalDep, StateDep, authorize
from api.errors import ApiError, Forbidden
from api.state import AppState
from api.wiring import Services as System
from policy.rbac_csv import project_token_project
from sync.store import StoredApp

__all__ = [
    "DeleteApp", "GetApp", "SyncApp", "UpdateApp", "app_access", "check_app", "namespace_of", "rbac_name", "system_of",
    "visible_apps",
]

AppNamespaceQuery = Query(default=None, alias="appNamespace", description="the app's namespace (default: the "
                          "control-plane namespace)")


def system_of(state: AppState) -> System:
    """The running system (reconciler, apps); 503 when this API instance was built without one."""
    system = state.services.system
    if system is None:
        raise ApiError(503, "applications are not served by this instance (no sync system is wired)")
    return system


def rbac_name(project: str, namespace: str, name: str, *, control_plane: str) -> str:
    """Argo CD's ``RBACName`` (§2.6): an empty project counts as ``default``."""
    project = project or "default"
    if not namespace or namespace == control_plane:
        return f"{project}/{name}"
    return f"{project}/{namespace}/{name}"


def _denied(action: str, name: str) -> ApiError:
    """The one answer for "forbidden" and "missing" (PROJ-20): nothing in it depends on the app."""
    message = f"permission denied: applications, {action}, {name}"
    violation = {"code": "rbac.denied", "message": message, "field": "", "rule": "applications"}
    return ApiError(403, message, violations=[violation])


def check_app(state: AppState, principal: Principal, ctx: Any, action: str, namespace: str,
              name: str) -> StoredApp:
    """The stored app when the caller may do ``action`` on it; the uniform 403 otherwise, 404 when missing
    and the caller could see it wherever it were."""
    system = system_of(state)
    cp = system.settings.sync.control_plane_namespace
    stored = system.apps.store.apps.find(namespace, name)
    project = stored.project if stored is not None else "*"
    try:
        authorize(state, principal, ctx, "applications", action, rbac_name(project, namespace, name, control_plane=cp))
    except Forbidden:
        raise _denied(action, name) from None
    if stored is None:
        raise ApiError(404, f"application {name!r} not found in namespace {namespace!r}")
    return stored


def namespace_of(state: AppState, requested: str | None) -> str:
    return requested or system_of(state).settings.sync.control_plane_namespace


def app_access(action: str) -> Any:
    """``require`` for app routes: resolves ``{name}`` (and ``?appNamespace=``) and authorizes ``action`` on it;
    the handler receives the :class:`StoredApp` (``stored: StoredApp = app_access("get")``)."""

    async def dependency(request: Request, state: StateDep, principal: PrincipalDep, ctx: AuditCtxDep,
                         app_namespace: str | None = AppNamespaceQuery) -> StoredApp:
        name = request.path_params["name"]
        namespace = namespace_of(state, app_namespace)
        return await run_in_threadpool(check_app, state, principal, ctx, action, namespace, name)

    dependency.__name__ = f"require_applications_{action}"
    return Depends(dependency)



def visible_apps(state: AppState, principal: Principal, *, project: str | None = None) -> list[StoredApp]:
    """The stored apps the caller may ``get``: decided on the keys alone, then only the visible apps' specs are
    read. A project where no RBAC row of the caller's identity could match any app is skipped with one question
    (:meth:`policy.rbac.Authorizer.may_allow_in_project`); in the others the Authorizer decides per app, so the
    answer is the per-app answer exactly."""
    system = system_of(state)
    cp = system.settings.sync.control_plane_namespace
    authorizer = state.policy.authorizer()
    subject, groups = principal.subject, principal.groups
    own = project_token_project(subject)
    if own is not None and own != "default":  # a project role sees at most its own project (difference 4)
        if project is not None and project != own:
            return []
        project = own
    keys = system.apps.store.apps.names(project=project)
    open_projects: dict[str, bool] = {}

    def may_see(proj: str) -> bool:
        name = proj or "default"
        found = open_projects.get(name)
        if found is None:
            found = open_projects[name] = authorizer.may_allow_in_project(subject, "applications", "get", name,
                                                                          groups=groups)
        return found

    visible = [(ns, name) for ns, name, proj in keys
               if may_see(proj) and authorizer.enforce(subject, "applications", "get",
                                                       rbac_name(proj, ns, name, control_plane=cp), groups=groups)]
    if len(visible) * 2 > len(keys):
        wanted = set(visible)
        return [a for a in system.apps.store.apps.list(project=project) if (a.namespace, a.name) in wanted]
    return system.apps.store.apps.many(visible)

#: the app of ``{name}`` when the caller may get / update / delete / sync it (rollback and terminate check
#: ``sync``, as Argo CD does by default)
GetApp = Annotated[StoredApp, app_access("get")]
UpdateApp = Annotated[StoredApp, app_access("update")]
DeleteApp = Annotated[StoredApp, app_access("delete")]
SyncApp = Annotated[StoredApp, app_access("sync")]
