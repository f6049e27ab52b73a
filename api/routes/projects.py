"""``/api/v1/projects``: AppProject CRUD and role listing, with Argo CD's project API rules (reference §1.12).

* Create needs ``projects, create, <name>``; an existing project with the identical manifest is returned as it
  is, a different one is a 409 unless ``upsert`` (which also needs ``projects, update``).
* Update needs ``projects, update, <name>``, plus ``clusters, update, <server>`` for every destination server
  added or removed, ``repositories, update, <url>`` for every source repository added or removed, and — when
  any of the four resource lists changed — ``clusters, update`` on every destination server of the new spec.
  It is refused (409) when it would make an app of the project invalid that was valid before.
* Delete needs ``projects, delete``; ``default`` is reserved; a project still referenced by apps stays.
* List shows only the projects the caller may ``get``.

Routes are thin: the checks are dependencies, the work is ``policy.store.ProjectStore``'s (each write commits
with its audit record).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import AuditCtxDep, PrincipalDep, StateDep, authenticated, authorize, require
from api.errors import ApiError
from api.schemas import ERRORS, ProjectCreate, ProjectList, ProjectPublic, ProjectUpdate, RoleList, RolePublic
from api.state import AppState
from policy import audit
from policy.errors import InvalidProject
from policy.evaluate import evaluate
from policy.project import AppProject
from policy.store import StoredProject

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects", tags=["projects"], responses=ERRORS)


def public(stored: StoredProject) -> ProjectPublic:
    return ProjectPublic(name=stored.name, version=stored.version, uid=stored.uid, created_at=stored.created_at,
                         updated_at=stored.updated_at, updated_by=stored.updated_by, project=stored.manifest)


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def _body_name(request: Request) -> str:
    project = (await _body(request)).get("project")
    meta = project.get("metadata") if isinstance(project, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


async def _is_upsert(request: Request) -> bool:
    return (await _body(request)).get("upsert") is True


def _parse(manifest: Any, source: str) -> AppProject | None:
    try:
        return AppProject.from_dict(manifest, source=source) if isinstance(manifest, dict) else None
    except InvalidProject:
        return None  # the store reports it (422, naming the field) after the permission checks


def _servers(project: AppProject) -> set[str]:
    return {d.server for d in project.destinations or () if d.server}


def _extra_permissions(old: AppProject, new: AppProject) -> list[tuple[str, str]]:
    """(resource, object) pairs that need ``update`` besides the project itself (reference §1.12)."""
    needed: list[tuple[str, str]] = [("clusters", s) for s in sorted(_servers(old) ^ _servers(new))]
    repos = set(old.source_repos or ()) ^ set(new.source_repos or ())
    needed += [("repositories", r) for r in sorted(repos)]
    lists = ("cluster_resource_whitelist", "cluster_resource_blacklist", "namespace_resource_whitelist",
             "namespace_resource_blacklist")
    if any(getattr(old, name) != getattr(new, name) for name in lists):
        needed += [("clusters", s) for s in sorted(_servers(new)) if ("clusters", s) not in needed]
    return needed


async def _update_permissions(request: Request, state: StateDep, principal: PrincipalDep, ctx: AuditCtxDep) -> None:
    name = request.path_params["name"]
    new = _parse((await _body(request)).get("project"), "request body project")
    stored = await run_in_threadpool(state.store.projects.find, name)
    if new is None or stored is None:
        return
    old = _parse(stored.manifest, f"stored project {name!r}")
    if old is None:
        return
    for resource, obj in _extra_permissions(old, new):
        await run_in_threadpool(authorize, state, principal, ctx, resource, "update", obj)


def _broken_apps(state: AppState, name: str, old: AppProject | None, new: AppProject) -> list[dict[str, str]]:
    """Apps valid under ``old`` that ``new`` would make invalid (source or destination)."""
    if state.services.project_apps is None:
        return []
    broken: list[dict[str, str]] = []
    for app in state.services.project_apps(name):
        if old is not None and not evaluate(project=old, app=app):
            continue
        decision = evaluate(project=new, app=app)
        if not decision:
            broken.append({"code": "project.app-invalidated", "message": f"app {app.name!r}: {decision.reason}",
                           "field": "project.spec", "rule": "an update may not invalidate an existing app"})
    return broken


@router.get("", response_model=ProjectList, dependencies=[authenticated()])
def list_projects(state: StateDep, principal: PrincipalDep, ctx: AuditCtxDep) -> ProjectList:
    """The projects the caller may get."""
    authorizer = state.policy.authorizer()
    stored = state.store.projects.list()
    visible = [p for p in stored if authorizer.enforce(principal.subject, "projects", "get", p.name,
                                                        groups=principal.groups)]
    state.store.audit.append(audit.AuditEvent.create(
        ctx=ctx, time=state.now(), action="projects.list", result="allowed",
        details={"visible": len(visible), "total": len(stored)}))
    return ProjectList(items=[public(p) for p in visible])


@router.post("", response_model=ProjectPublic, dependencies=[
    require("projects", "create", _body_name),
    require("projects", "update", _body_name, when=_is_upsert),
])
def create_project(body: ProjectCreate, state: StateDep, ctx: AuditCtxDep) -> ProjectPublic:
    """Create a project (an Argo CD AppProject manifest)."""
    name = body.project.get("metadata", {}).get("name") if isinstance(body.project.get("metadata"), dict) else None
    existing = state.store.projects.find(name) if isinstance(name, str) else None
    if existing is not None:
        if existing.manifest == body.project:
            return public(existing)
        if not body.upsert:
            raise ApiError(409, f"project {name!r} already exists with a different spec; set upsert to replace it")
        new = AppProject.from_dict(body.project, source="request body project")
        _refuse_broken(state, existing, new)
        stored = state.store.projects.update(body.project, ctx=ctx, now=state.now(), source="request body project")
    else:
        stored = state.store.projects.create(body.project, ctx=ctx, now=state.now(), source="request body project")
    state.policy.invalidate()
    return public(stored)


def _refuse_broken(state: AppState, existing: StoredProject, new: AppProject) -> None:
    old = _parse(existing.manifest, f"stored project {existing.name!r}")
    broken = _broken_apps(state, existing.name, old, new)
    if broken:
        raise ApiError(409, f"the update would make {len(broken)} app(s) of project {existing.name!r} invalid",
                       violations=broken)


@router.get("/{name}", response_model=ProjectPublic, dependencies=[require("projects", "get", "{name}")])
def get_project(name: str, state: StateDep) -> ProjectPublic:
    """One project with its version (pass it back as ``expectedVersion`` when updating)."""
    return public(state.store.projects.get(name))


@router.put("/{name}", response_model=ProjectPublic, dependencies=[require("projects", "update", "{name}")])
async def update_project(name: str, body: ProjectUpdate, request: Request, state: StateDep,
                         principal: PrincipalDep, ctx: AuditCtxDep) -> ProjectPublic:
    """Replace a project's manifest (Argo CD's rules on clusters, repositories and existing apps apply)."""
    await _update_permissions(request, state, principal, ctx)
    return await run_in_threadpool(_update, state, name, body, ctx)


def _update(state: AppState, name: str, body: ProjectUpdate, ctx: audit.AuditContext) -> ProjectPublic:
    new = AppProject.from_dict(body.project, source="request body project")
    if new.name != name:
        raise InvalidProject("metadata.name", f"{new.name!r} differs from the project {name!r} in the path",
                             source="request body project")
    existing = state.store.projects.get(name)
    _refuse_broken(state, existing, new)
    stored = state.store.projects.update(body.project, ctx=ctx, now=state.now(), expected_version=body.expected_version,
                                         source="request body project")
    state.policy.invalidate()
    return public(stored)


@router.delete("/{name}", status_code=204, dependencies=[require("projects", "delete", "{name}")])
def delete_project(name: str, state: StateDep, ctx: AuditCtxDep) -> None:
    """Delete a project and every token of its roles. ``default`` and projects with apps stay."""
    if name == "default":
        raise ApiError(400, "name 'default' is reserved and cannot be deleted")
    state.store.projects.get(name)
    apps: Sequence[object] = state.services.project_apps(name) if state.services.project_apps else ()
    if apps:
        raise ApiError(409, f"project is referenced by {len(apps)} applications")
    state.store.projects.delete(name, ctx=ctx, now=state.now())
    state.policy.invalidate()


@router.get("/{name}/roles", response_model=RoleList, dependencies=[require("projects", "get", "{name}")])
def list_roles(name: str, state: StateDep) -> RoleList:
    """The project's roles with their policies, groups and number of active tokens."""
    project = state.store.projects.get(name).project()
    now = state.now()
    items = []
    for role in project.roles:
        active = sum(1 for t in state.store.tokens.list(name, role.name) if t.state(now=now) == "active")
        items.append(RolePublic(name=role.name, description=role.description or "", policies=list(role.policies),
                                groups=list(role.groups), active_tokens=active))
    return RoleList(items=items)
