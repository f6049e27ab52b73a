"""``/api/v1/projects/{name}/roles/{role}/token``: mint, list and revoke project tokens (reference §3).

Minting and revoking need ``projects, update, <project>`` — or membership in one of the role's ``groups``
(Argo CD ``CreateToken``/``DeleteToken``); listing needs ``projects, get``. The token is returned once and never
stored (the registry keeps its ``jti``); as in Argo CD, revoking an unknown token succeeds with
``revoked: false``. A revoked token fails on its next request on every replica (the registry is read per
request).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRouter

from api.deps import AuditCtxDep, PrincipalDep, StateDep, authorize, require
from api.errors import ApiError, Forbidden
from api.schemas import ERRORS, TokenCreate, TokenCreated, TokenList, TokenPublic, TokenRevoked
from api.state import AppState
from policy import audit
from policy.decision import Decision
from policy.store import TokenInfo

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/projects/{name}/roles/{role}/token", tags=["project tokens"], responses=ERRORS)


def _public(info: TokenInfo, state: AppState) -> TokenPublic:
    return TokenPublic.model_validate({
        "id": info.id, "project": info.project, "role": info.role, "issued_at": info.issued_at,
        "expires_at": info.expires_at, "issued_by": info.issued_by, "description": info.description,
        "revoked_at": info.revoked_at, "last_used_at": info.last_used_at, "state": info.state(now=state.now()),
    })


async def _token_admin(request: Request, state: StateDep, principal: PrincipalDep, ctx: AuditCtxDep) -> Decision:
    """``projects, update`` on the project, or membership in one of the role's groups."""
    name, role = request.path_params["name"], request.path_params["role"]
    try:
        return await run_in_threadpool(authorize, state, principal, ctx, "projects", "update", name)
    except Forbidden:
        if not principal.groups:
            raise
        stored = await run_in_threadpool(state.store.projects.find, name)
        found = stored.project().role(role) if stored is not None else None
        shared = sorted(set(principal.groups) & set(found.groups)) if found is not None else []
        if not shared:
            raise
        decision = Decision.allow(f"member of group {shared[0]!r} of role {role!r}")
        event = audit.AuditEvent.from_decision(decision, ctx=ctx, time=state.now(), action="projects.update",
                                               project=name, object=f"role/{role}")
        await run_in_threadpool(state.store.audit.append, event)
        return decision


@router.post("", response_model=TokenCreated, dependencies=[Depends(_token_admin)])
def create_token(name: str, role: str, body: TokenCreate, state: StateDep, ctx: AuditCtxDep) -> TokenCreated:
    """Mint a token for ``proj:<name>:<role>``; ``expiresIn`` in seconds, absent or 0 for no expiry."""
    if body.expires_in is not None and body.expires_in < 0:
        raise ApiError(422, "expiresIn must not be negative (0 or absent: the token does not expire)",
                       code="invalid-request")
    lifetime = timedelta(seconds=body.expires_in) if body.expires_in else None
    issued = state.store.tokens.create(name, role, ctx=ctx, now=state.now(), expires_in=lifetime,
                                       description=body.description)
    return TokenCreated(token=issued.token, info=_public(issued.info, state))


@router.get("", response_model=TokenList, dependencies=[require("projects", "get", "{name}")])
def list_tokens(name: str, role: str, state: StateDep) -> TokenList:
    """The role's tokens (ids, times, state); never the tokens themselves."""
    state.store.projects.get(name)
    return TokenList(items=[_public(t, state) for t in state.store.tokens.list(name, role)])


@router.delete("/{token_id}", response_model=TokenRevoked, dependencies=[Depends(_token_admin)])
def revoke_token(name: str, role: str, token_id: str, state: StateDep, ctx: AuditCtxDep) -> TokenRevoked:
    """Revoke one token; it stops working at once."""
    revoked = state.store.tokens.revoke(name, role, token_id, ctx=ctx, now=state.now())
    return TokenRevoked(id=token_id, revoked=revoked is not None)
