"""Admission over HTTP: the pipeline check (``POST /api/v1/admission/check``) and a Kubernetes validating
admission webhook (``POST /api/v1/admission/review``, AdmissionReview v1).

* ``check`` takes the input of ``syncwarden check`` as JSON (apps, manifests, time, kind of sync) with the
  project given by name (from the store) or inline, runs :func:`api.check.run_check` — the same code — and
  answers its JSON report unchanged (``allowed: false`` is a 200: the report is the answer). Needs ``projects,
  get`` on every project involved (a project token may check its own project's apps).
* ``review`` lets a ``kubectl apply`` outside GitOps meet the same policy: for an object in a namespace that a
  project owns (a destination of the project names the namespace, by name or glob other than a bare ``*``), the
  project's kind and namespace gates and its sync windows for a *manual* sync decide; every owning project must
  allow. Objects outside every project's namespaces, and cluster-scoped objects, are allowed. The caller (the
  API server, with a token configured in its webhook kubeconfig) needs ``projects, get, *``; the cluster is
  named by the ``server`` query parameter (default: the in-cluster URL). A stored project that cannot be loaded
  fails closed: a change in a namespace it may own (judged from its raw destinations; unreadable ones count as
  owning) is denied with a reason naming the project, and a log line.

Each decision is written to the audit log and counted in ``/metrics``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api import check as service
from api.auth import Principal
from api.deps import AuditCtxDep, StateDep, authorize_deferred, caller, fresh_policy, require
from api.errors import ApiError, Forbidden
from api.schemas import ERRORS, AdmissionCheckRequest, CheckReportPublic
from api.state import AppState
from config import yamlsafe
from policy import audit, patterns
from policy.decision import Code, Decision, Violation
from policy.errors import InvalidProject
from policy.evaluate import IN_CLUSTER_SERVER, AppTarget, ObjectRef, evaluate
from policy.kinds import KindTable
from policy.project import AppProject
from sync.application import Application, InvalidApplication
from sync.manifests import ManifestError, manifests_from_documents, parse_text
from sync.models import Manifest

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/admission", tags=["admission"], responses=ERRORS)


def _invalid(message: str) -> ApiError:
    return ApiError(422, message, code="invalid")


# --- check ------------------------------------------------------------------------------------------------


def _app_projects(body: Mapping[str, Any]) -> set[str]:
    named = body.get("project")
    if isinstance(named, str) and named:
        return {named}
    names: set[str] = set()
    for app in body.get("apps") or ():
        spec = app.get("spec") if isinstance(app, Mapping) else None
        project = spec.get("project") if isinstance(spec, Mapping) else None
        names.add(project if isinstance(project, str) and project else "default")
    return names


def _check_permissions(
    state: AppState, principal: Principal, ctx: audit.AuditContext, body: object
) -> list[asyncio.Future[audit.AuditRecord]]:
    """``projects, get`` on every project the (not yet validated) body names: each decision's record is submitted
    (the caller waits for them before it answers, whatever the outcome); a denial raises :class:`_Denied`."""
    pending: list[asyncio.Future[audit.AuditRecord]] = []
    denied: Forbidden | None = None
    for name in sorted(_app_projects(body) if isinstance(body, Mapping) else ()):
        decision, future = authorize_deferred(state, principal, ctx, "projects", "get", name)
        pending.append(future)
        if not decision.allowed:
            denied = denied or Forbidden(decision)
            break
    if denied is not None:
        raise _Denied(denied, pending)
    return pending


class _Denied(Exception):
    def __init__(self, forbidden: Forbidden, pending: list[asyncio.Future[audit.AuditRecord]]) -> None:
        super().__init__(str(forbidden))
        self.forbidden = forbidden
        self.pending = pending


async def _committed(pending: list[asyncio.Future[audit.AuditRecord]]) -> None:
    """Wait for every submitted record; raise the first failure (each future's outcome is retrieved)."""
    failure: BaseException | None = None
    for future in pending:
        try:
            await future
        except audit.AuditUnavailable as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


class _NeedsThread(Exception):
    """An inline check met a step that would block (a store read): the worker thread runs the check instead."""


def _projects(
    state: AppState, body: AdmissionCheckRequest, apps: list[tuple[Application, str]], *, inline: bool
) -> dict[str, AppProject]:
    if body.projects is not None:
        loaded: dict[str, AppProject] = {}
        for i, manifest in enumerate(body.projects):
            project = AppProject.from_dict(manifest, source=f"request.projects[{i}]")
            if project.name in loaded:
                raise _invalid(f"request.projects[{i}]: project {project.name!r} is given twice")
            loaded[project.name] = project
        return loaded
    names = {body.project} if body.project else {app.project or "default" for app, _ in apps}
    found: dict[str, AppProject] = {}
    cached = state.policy.projects()  # parsed once per project version, refreshed with the Authorizer
    for name in sorted(names):
        if name in cached:
            found[name] = cached[name]
            continue
        if inline:
            raise _NeedsThread(name)
        stored = state.store.projects.find(name)
        if stored is None:
            raise ApiError(404, f"project {name!r} not found")
        found[name] = stored.project()
    return found


def _manifests(body: AdmissionCheckRequest) -> list[Manifest]:
    try:
        if body.manifests is not None:
            docs = [yamlsafe.Document(source="request.manifests", index=i, data=obj)
                    for i, obj in enumerate(body.manifests)]
            return manifests_from_documents(docs)
        if body.manifests_yaml is not None:
            return parse_text(body.manifests_yaml, source="request.manifestsYaml")
    except ManifestError as exc:
        raise _invalid(str(exc)) from None
    raise _invalid("request: give the objects to check in manifests (JSON) or manifestsYaml")


def _run_check(
    state: AppState, body: AdmissionCheckRequest, ctx: audit.AuditContext, *, inline: bool = False
) -> tuple[dict[str, Any], list[audit.AuditEvent]]:
    """The report and its audit events (one per app), which the caller records before it answers. ``inline``:
    called on the event loop, so :class:`_NeedsThread` instead of any store read."""
    if body.manifests is not None and body.manifests_yaml is not None:
        raise _invalid("request: give manifests or manifestsYaml, not both")
    apps: list[tuple[Application, str]] = []
    for i, manifest in enumerate(body.apps):
        where = f"request.apps[{i}]"
        try:
            apps.append((Application.from_dict(manifest, source=where), where))
        except InvalidApplication as exc:
            raise _invalid(str(exc)) from None
    if inline and not state.policy.is_fresh():
        raise _NeedsThread("policy refresh due")
    projects = _projects(state, body, apps, inline=inline)
    objects = _manifests(body)
    when = body.at.astimezone(UTC) if body.at is not None and body.at.tzinfo is not None else None
    if body.at is not None and when is None:
        raise _invalid("request.at: the time needs a zone offset (Z or +01:00)")
    try:
        report = service.run_check(projects=projects, apps=apps, manifests=objects, at=when or state.now(),
                                   sync=body.sync)
    except service.CheckInputError as exc:
        raise _invalid(str(exc)) from None
    events = []
    for result in report.results:
        state.metrics.count_decision("admission", "check", result.decision.allowed)
        events.append(audit.AuditEvent.from_decision(
            result.decision, ctx=ctx, time=state.now(), action="admission.check", project=result.project,
            app=result.app))
    return report.to_dict(), events


def _validated(raw: bytes) -> tuple[object, AdmissionCheckRequest | RequestValidationError]:
    """The body as parsed JSON (None when it is not JSON) and as the request model, or the validation error that
    FastAPI would have raised (same locations, so the one error shape reports it the same way)."""
    try:
        loose = json.loads(raw)
    except ValueError as exc:
        return None, RequestValidationError([{"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error",
                                              "input": {}, "ctx": {"error": type(exc).__name__}}])
    try:
        return loose, AdmissionCheckRequest.model_validate(loose)
    except ValidationError as exc:
        return loose, RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])


#: the request body in the OpenAPI document (the handler reads and validates it itself, after authorization)
_CHECK_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": AdmissionCheckRequest.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


@router.post("/check", response_model=CheckReportPublic, openapi_extra=_CHECK_BODY)
async def admission_check(request: Request) -> JSONResponse:
    """The pipeline check: same input and output as ``syncwarden check -o json``. Authorization: ``projects, get``
    on every project the body names (the apps' projects, or ``project``); every decision is audited. The report
    (or the denial, or the error) is sent only after its records and the permission decisions' are committed —
    one wait, which holds no thread: the result records go in the same or a later batch than the decisions'. If a
    record cannot be written the request fails with 503 (fail closed). The evaluation is pure computation over
    the cached policy and runs on the event loop (a hop to a worker thread would cost more than it); when it would
    read the store it runs in a worker thread instead. Authorization comes before validation (a caller without
    rights learns nothing of the body's faults), so the handler reads and validates the body itself; the caller is
    resolved in the handler too, not by three dependencies: this route's budget is a no-op route's."""
    state, principal, ctx = await caller(request)
    loose, body = _validated(await request.body())
    await fresh_policy(state)
    try:
        pending = _check_permissions(state, principal, ctx, loose)
    except _Denied as denied:
        await _committed(denied.pending)
        raise denied.forbidden from None
    try:
        if isinstance(body, RequestValidationError):
            raise body
        try:
            report, events = _run_check(state, body, ctx, inline=True)
        except _NeedsThread:
            report, events = await run_in_threadpool(_run_check, state, body, ctx)
        pending.extend(state.store.audit.submit(event) for event in events)
    except InvalidProject as exc:
        await _committed(pending)
        raise _invalid(str(exc)) from None
    except BaseException:
        await _committed(pending)
        raise
    await _committed(pending)
    return JSONResponse(report)


# --- review -----------------------------------------------------------------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class GroupVersionKind(_Loose):
    group: str = ""
    version: str = ""
    kind: str


class UserInfo(_Loose):
    username: str = ""
    groups: list[str] = []


class AdmissionRequest(_Loose):
    uid: str = Field(min_length=1, max_length=128)
    kind: GroupVersionKind
    namespace: str = ""
    name: str = ""
    operation: str = ""
    user_info: UserInfo = Field(default_factory=UserInfo, alias="userInfo")
    object: dict[str, Any] | None = None
    old_object: dict[str, Any] | None = Field(default=None, alias="oldObject")


class AdmissionReview(_Loose):
    api_version: str = Field(alias="apiVersion", pattern=r"^admission\.k8s\.io/v1$")
    kind: str = Field(pattern=r"^AdmissionReview$")
    request: AdmissionRequest


def _owns(project: AppProject, namespace: str, server: str) -> bool:
    for dest in project.destinations or ():
        pattern = dest.namespace or ""
        if not pattern or pattern.startswith("!") or pattern == "*" or not patterns.glob_match(pattern, namespace):
            continue
        if dest.server is not None and not dest.server.startswith("!") and patterns.glob_match(dest.server, server):
            return True
        if dest.name is not None and server == IN_CLUSTER_SERVER and patterns.glob_match(dest.name, "in-cluster"):
            return True
    return False


def _object_name(req: AdmissionRequest) -> str:
    if req.name:
        return req.name
    obj = req.object or req.old_object or {}
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return ""
    for key in ("name", "generateName"):
        value = meta.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _may_own(manifest: Mapping[str, Any] | None, namespace: str, server: str) -> bool:
    """Whether a stored project that cannot be loaded may own ``namespace``: judged from its raw destinations;
    anything unreadable counts as owning (fail closed)."""
    spec = manifest.get("spec") if isinstance(manifest, Mapping) else None
    destinations = spec.get("destinations", []) if isinstance(spec, Mapping) else None
    if not isinstance(destinations, list):
        return True
    for dest in destinations:
        if not isinstance(dest, Mapping):
            return True
        pattern, dest_server, dest_name = dest.get("namespace"), dest.get("server"), dest.get("name")
        if not isinstance(pattern, str) or not isinstance(dest_server, str | None) or not isinstance(
                dest_name, str | None):
            return True
        if not pattern or pattern.startswith("!") or pattern == "*" or not patterns.glob_match(pattern, namespace):
            continue
        if dest_server is None and dest_name is None:
            return True
        if dest_server is not None and patterns.glob_match(dest_server.lstrip("!"), server):
            return True
        if dest_name is not None and server == IN_CLUSTER_SERVER:
            return True
    return False


def _broken_denials(state: AppState, namespace: str, server: str) -> list[tuple[str, Decision]]:
    """A denial per stored project that cannot be loaded and may own ``namespace`` (fail closed, logged)."""
    denials: list[tuple[str, Decision]] = []
    for name, why in sorted(state.policy.broken().items()):
        stored = state.store.projects.find(name)
        if stored is None or not _may_own(stored.manifest, namespace, server):
            continue
        log.error("admission review in namespace %r denied: stored project %r cannot be loaded: %s",
                  namespace, name, why)
        denials.append((name, Decision.deny(Violation(
            Code.POLICY_ERROR, f"project {name!r} cannot be loaded, so changes in namespace {namespace!r} it may own "
            "are denied", "spec", "project"))))
    return denials


def _review(state: AppState, review: AdmissionReview, server: str, ctx: audit.AuditContext) -> dict[str, Any]:
    req = review.request
    owners = [p for p in state.policy.projects().values() if req.namespace and _owns(p, req.namespace, server)]
    decisions: list[tuple[str, Decision]] = []
    if req.namespace and req.operation != "CONNECT":
        decisions.extend(_broken_denials(state, req.namespace, server))
    if owners and req.operation != "CONNECT":
        kinds = KindTable.builtin()
        if kinds.namespaced(req.kind.group, req.kind.kind) is None:
            kinds = kinds.with_entries([(req.kind.group, req.kind.kind, True, "admission request")])
        name = _object_name(req)
        ref = ObjectRef(req.kind.group, req.kind.kind, name, req.namespace, where=f"{req.kind.kind}/{name}")
        user = req.user_info.username
        for project in owners:
            target = AppTarget(name=f"kubectl:{user}", project=project.name, repo_urls=(),
                               destination_namespace=req.namespace, destination_server=server)
            decisions.append((project.name, evaluate(project=project, app=target, objects=[ref], kinds=kinds,
                                                     sync="manual", at=state.now())))
    allowed = all(d.allowed for _, d in decisions)
    review_ctx = audit.AuditContext(subject=f"k8s:{req.user_info.username}", token_id=ctx.token_id,
                                    client=ctx.client, request_id=ctx.request_id)
    for project_name, decision in decisions:
        state.metrics.count_decision("admission", "review", decision.allowed)
        state.store.audit.append(audit.AuditEvent.from_decision(
            decision, ctx=review_ctx, time=state.now(), action="admission.review", project=project_name,
            object=f"{req.kind.kind}/{req.namespace}/{_object_name(req)}"))
    response: dict[str, Any] = {"uid": req.uid, "allowed": allowed}
    if not allowed:
        reasons = [f"project {p!r}: {v.message}" for p, d in decisions for v in d.violations]
        response["status"] = {"code": 403, "reason": "Forbidden",
                              "message": "syncwarden denied the change: " + "; ".join(reasons)}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


@router.post("/review", dependencies=[require("projects", "get", "*")],
             responses={200: {"description": "an AdmissionReview v1 with the response filled in"}})
def admission_review(
    review: AdmissionReview, state: StateDep, ctx: AuditCtxDep,
    server: str = Query(default=IN_CLUSTER_SERVER, description="the cluster this webhook guards"),
) -> dict[str, Any]:
    """Kubernetes ValidatingAdmissionWebhook (AdmissionReview v1)."""
    return _review(state, review, server, ctx)
