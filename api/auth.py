"""Authentication: who is calling. Authorization (may they?) is :func:`api.deps.require`, a separate step.

Who calls: :mod:`api.deps` (the principal of every protected route), :mod:`api.routes.session` (login,
logout) and the lifespan of :func:`api.app.create_app` (admin bootstrap).

* The bearer token comes from the ``Authorization: Bearer ...`` header only — never a query parameter or a
  cookie (security-cases JWT-11), so no token lands in access logs or browser history, and there is no CSRF
  surface. The header's size is capped before parsing by :mod:`api.middleware` (JWT-10).
* Two kinds of token: a local-account session (``sws_...``, opaque, stored hashed, :mod:`policy.store.accounts`)
  and a project token (a JWT verified by :mod:`policy.tokens` and the registry by ``jti``). Every failure
  answers the same 401 without a reason; the reason goes to the log, never the token.
* Anonymous callers pass through with the empty subject only when ``settings.api.anonymous`` is on (Argo CD
  ``users.anonymous.enabled``; off by default).
* Login (:func:`login`): the per-user-name throttle is checked first (429 with Retry-After while locked), an
  unknown user is checked against a dummy hash so that the answer and its timing do not reveal whether the
  user exists (AUTH-04), failures are counted in the database (AUTH-01), every attempt is audited (the user name
  only when the account exists: a password typed into the name field must not land in the log).
* The ``admin`` account is created on first start with a random password printed once as
  ``initial admin password: ...`` (AUTH-06); only its hash is stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from api.errors import ApiError
from api.state import AppState
from policy import accounts, audit
from policy import tokens as token_crypto
from policy.store.accounts import ADMIN, SESSION_PREFIX

__all__ = ["Principal", "authenticate", "bearer_token", "bootstrap_admin", "login", "logout"]

log = logging.getLogger(__name__)

_UNAUTHENTICATED = "missing, invalid or expired bearer token"
_BAD_LOGIN = "invalid username or password"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    kind: Literal["account", "project-token", "anonymous"]
    groups: tuple[str, ...] = ()
    #: the project token's ``jti``, or the session token's SHA-256; never the token itself
    token_id: str = ""
    project: str = ""


def _unauthenticated(message: str = _UNAUTHENTICATED) -> ApiError:
    return ApiError(401, message, code="unauthenticated", headers={"WWW-Authenticate": "Bearer"})


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None without the header; 401 when it is malformed."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise _unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token


def authenticate_cached(request: Request, state: AppState) -> Principal | None:
    """The caller of ``request`` when it presents a project token verified moments ago
    (:meth:`policy.store.tokens.TokenRegistry.verify_cached`); None otherwise, and then :func:`authenticate`
    decides. Never blocks, so the event loop may call it."""
    token = bearer_token(request)
    if token is None or token.startswith(SESSION_PREFIX):
        return None
    found = state.store.tokens.verify_cached(token, now=state.now())
    if found is None:
        return None
    return Principal(subject=found.subject, kind="project-token", token_id=found.token_id, project=found.project)


def authenticate(request: Request, state: AppState) -> Principal:
    """The caller of ``request``; raises 401 (never says why; the log does)."""
    token = bearer_token(request)
    now = state.now()
    if token is None:
        if state.settings.api.anonymous:
            return Principal(subject="", kind="anonymous")
        raise _unauthenticated()
    if token.startswith(SESSION_PREFIX):
        session = state.accounts.verify_session(token, now=now)
        if session is None:
            log.info("request %s: session token rejected", request.scope.get("state", {}).get("request_id", ""))
            raise _unauthenticated()
        return Principal(subject=session.username, kind="account", token_id=session.id_hash[:16])
    try:
        found = state.store.tokens.verify(token, now=now)
    except token_crypto.InvalidToken as exc:
        log.info("request %s: project token rejected: %s", request.scope.get("state", {}).get("request_id", ""), exc)
        raise _unauthenticated() from None
    return Principal(subject=found.subject, kind="project-token", token_id=found.token_id, project=found.project)


def login(state: AppState, *, username: str, password: str, ctx: audit.AuditContext) -> str:
    """A new session token for valid credentials. 429 while the name is locked, 401 otherwise."""
    now = state.now()
    store = state.accounts
    throttle = store.throttle(username)
    if throttle.locked(now=now):
        _audit_login(state, ctx, username="", result="throttled", known=False)
        raise ApiError(
            429,
            "too many failed logins; try again later",
            headers={"Retry-After": str(throttle.retry_after(now=now))},
        )
    account = store.find(username)
    usable = account is not None and account.enabled
    stored_hash = account.password_hash if account is not None and usable else state.dummy_hash
    matched = state.services.hasher.verify(password, stored_hash)
    if not (usable and matched):
        store.record_failure(username, rules=state.services.throttle, now=now)
        _audit_login(state, ctx, username=username if account is not None else "", result="denied",
                     known=account is not None)
        raise _unauthenticated(_BAD_LOGIN)
    store.record_success(username)
    token, session = store.create_session(username, now=now, ttl=state.services.session_ttl)
    ok_ctx = audit.AuditContext(subject=username, token_id=session.id_hash[:16], client=ctx.client,
                                request_id=ctx.request_id)
    _audit_login(state, ok_ctx, username=username, result="ok", known=True)
    return token


def logout(state: AppState, token: str, ctx: audit.AuditContext) -> None:
    state.accounts.revoke_session(token, now=state.now())
    state.store.audit.append(audit.AuditEvent.create(ctx=ctx, time=state.now(), action="session.delete", result="ok"))


def _audit_login(state: AppState, ctx: audit.AuditContext, *, username: str, result: str, known: bool) -> None:
    details = {"user": username if known else "(unknown user)"}
    state.store.audit.append(audit.AuditEvent.create(
        ctx=ctx, time=state.now(), action="session.create", result=result, object="session", details=details))


def bootstrap_admin(state: AppState) -> None:
    """Create ``admin`` with a random password on first start and announce the password once."""
    if state.accounts.find(ADMIN) is not None:
        return
    password = accounts.generate_password()
    ctx = audit.AuditContext(subject="syncwarden", client="server")
    created = state.accounts.create(ADMIN, state.services.hasher.hash(password), ctx=ctx, now=state.now())
    if created:  # another replica may have won the race: then it announced its own password
        state.services.announce(f"initial admin password: {password}")
