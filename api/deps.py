"""Route dependencies: the app state, the caller, its audit context, and route-level authorization.

Every protected route declares ``dependencies=[require(resource, action, obj)]``; no handler contains
authorization logic. :func:`require` resolves the principal (:mod:`api.auth`), asks the Authorizer with Argo
CD's vocabulary (plus ``audit``), counts the decision for ``/metrics``, writes it to the audit log — allowed
or denied — and on a denial raises 403 with the decision's violations. If the audit record cannot be written
the request is refused with 503 (fail closed).

``obj`` is a literal object (``"*"``), a template over the path parameters (``"{name}"``), or a callable of the
request (sync or async) for objects found in the body.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from api.auth import Principal, authenticate, authenticate_cached
from api.errors import Forbidden, request_id_of
from api.state import AppState
from policy import audit
from policy.audit import AuditRecord
from policy.decision import Decision

__all__ = [
    "AuditCtxDep",
    "PrincipalDep",
    "StateDep",
    "authorize",
    "authorize_deferred",
    "caller",
    "fresh_policy",
    "get_state",
    "require",
]

ObjSpec = str | Callable[[Request], str | Awaitable[str]]
When = Callable[[Request], bool | Awaitable[bool]]

#: resources whose object starts with ``<project>/`` (the audit record's project column)
_PROJECT_PREFIXED = frozenset({"applications", "applicationsets", "repositories", "clusters", "logs", "exec"})


# The dependencies are coroutines: a plain ``def`` dependency costs a hop to the thread pool per request.


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.syncwarden
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def current_principal(request: Request, state: StateDep) -> Principal:
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    principal = authenticate_cached(request, state)
    if principal is None:
        principal = await run_in_threadpool(authenticate, request, state)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def caller(request: Request) -> tuple[AppState, Principal, audit.AuditContext]:
    """The state, principal and audit context of ``request`` in one call — what ``StateDep``, ``PrincipalDep`` and
    ``AuditCtxDep`` give, for a hot route that saves the dependency resolution (the admission check)."""
    state = await get_state(request)
    principal = await current_principal(request, state)
    return state, principal, await audit_context(request, principal)


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else ""


async def audit_context(request: Request, principal: PrincipalDep) -> audit.AuditContext:
    return audit.AuditContext(
        subject=principal.subject, token_id=principal.token_id, client=client_of(request),
        request_id=request_id_of(request),
    )


AuditCtxDep = Annotated[audit.AuditContext, Depends(audit_context)]


def _project_of(resource: str, obj: str) -> str:
    if resource in _PROJECT_PREFIXED:
        head, sep, _ = obj.partition("/")
        return head if sep else ""
    if resource in ("projects", "audit") and obj != "*":
        return obj
    return ""


async def fresh_policy(state: AppState) -> None:
    """Make sure the live policy will not read the store for a while (re-read it in a worker thread if due), so
    the coroutine that follows may decide on the event loop."""
    if not state.policy.is_fresh():
        await run_in_threadpool(state.policy.authorizer)


def authorize(
    state: AppState, principal: Principal, ctx: audit.AuditContext, resource: str, action: str, obj: str
) -> Decision:
    """Decide, count, audit; raise 403 on a denial. Blocking (the audit append waits for its commit)."""
    decision, event = _decide(state, principal, ctx, resource, action, obj)
    state.store.audit.append(event)
    if not decision.allowed:
        raise Forbidden(decision)
    return decision


def _decide(
    state: AppState, principal: Principal, ctx: audit.AuditContext, resource: str, action: str, obj: str
) -> tuple[Decision, audit.AuditEvent]:
    decision = state.policy.authorizer().enforce(principal.subject, resource, action, obj, groups=principal.groups)
    state.metrics.count_decision(resource, action, decision.allowed)
    event = audit.AuditEvent.from_decision(
        decision, ctx=ctx, time=state.now(), action=f"{resource}.{action}", project=_project_of(resource, obj),
        object=obj,
    )
    return decision, event


def authorize_deferred(
    state: AppState, principal: Principal, ctx: audit.AuditContext, resource: str, action: str, obj: str
) -> tuple[Decision, asyncio.Future[AuditRecord]]:
    """:func:`authorize` for a coroutine that waits for the commit later: decides, counts, submits the record
    (no wait) and returns the decision with the record's future. Never raises 403 itself: the caller must await
    the future before it answers — a denial included — so the one-commit rule holds (used by the admission
    check, which then waits once for its result records, committed in the same or a later batch)."""
    decision, event = _decide(state, principal, ctx, resource, action, obj)
    return decision, state.store.audit.submit(event)


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def require(resource: str, action: str, obj: ObjSpec = "*", *, when: When | None = None) -> Any:
    """A dependency (``Depends``) that lets the request through only when the caller may do ``action`` on
    ``resource`` object ``obj``. With ``when``, the check applies only to requests for which it is true."""

    async def dependency(request: Request, state: StateDep, principal: PrincipalDep, ctx: AuditCtxDep) -> Decision:
        if when is not None and not await _resolve(when(request)):
            return Decision.allow("not required for this request")
        if callable(obj):
            target = str(await _resolve(obj(request)))
        else:
            target = obj.format(**request.path_params) if "{" in obj else obj
        return await run_in_threadpool(authorize, state, principal, ctx, resource, action, target)

    dependency.__name__ = f"require_{resource}_{action}".replace("-", "_")
    return Depends(dependency)


def authenticated() -> Any:
    """For routes that filter by permission themselves (lists): only a known caller gets in."""

    def dependency(principal: PrincipalDep) -> Principal:
        return principal

    return Depends(dependency)
