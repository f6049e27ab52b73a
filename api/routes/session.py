"""``/api/v1/session``: log in with a local account (Argo CD's ``POST /api/v1/session`` returning ``{"token"}``),
log out, and who am I (``/api/v1/session/userinfo``). Login is the only route here without a token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api import auth
from api.deps import AuditCtxDep, PrincipalDep, StateDep, client_of
from api.errors import ApiError, request_id_of
from api.schemas import ERRORS, LoginRequest, SessionToken, UserInfo
from policy import audit

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/session", tags=["session"])


@router.post("", response_model=SessionToken, responses={**ERRORS, 429: {"model": ERRORS[401]["model"]}})
async def create_session(body: LoginRequest, request: Request, state: StateDep) -> SessionToken:
    """Exchange a local account's user name and password for a session token (a bearer token)."""
    ctx = audit.AuditContext(client=client_of(request), request_id=request_id_of(request))
    token = await run_in_threadpool(auth.login, state, username=body.username, password=body.password, ctx=ctx)
    return SessionToken(token=token)


@router.delete("", status_code=204, responses=ERRORS)
async def delete_session(request: Request, state: StateDep, principal: PrincipalDep, ctx: AuditCtxDep) -> None:
    """Log out: the session token of this request stops working."""
    if principal.kind != "account":
        raise ApiError(400, "only a session token can be logged out; revoke project tokens instead")
    token = auth.bearer_token(request) or ""
    await run_in_threadpool(auth.logout, state, token, ctx)


@router.get("/userinfo", response_model=UserInfo, responses=ERRORS)
def userinfo(principal: PrincipalDep) -> UserInfo:
    """Who the bearer token belongs to."""
    return UserInfo(logged_in=principal.kind != "anonymous", username=principal.subject, kind=principal.kind,
                    project=principal.project)
