"""The registry of project tokens: one row per minted token, looked up by ``jti`` on every request.

Who calls: ``api`` (token routes; :meth:`TokenRegistry.verify` in the authentication dependency) and the
CLI (``syncwarden proj role create-token|list-tokens|revoke-token``).

A token passes only if :func:`policy.tokens.verify` accepts it (signature, header, claims, time) *and*
its row exists under that ``jti`` with the same project and role, is neither revoked nor expired, its
project is the same incarnation (``uid``) and the role still exists in the project's manifest. Matching
is by ``jti`` only (deliberate difference 4). The token string itself is never stored or logged; rows
hold the ``jti``. Last-used times are kept in memory and written at most every ``last_used_interval``
seconds, in one statement, instead of one write per request.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from policy import audit, tokens
from policy.errors import InvalidProject
from policy.store import db, tables
from policy.store.audit import append_in
from policy.store.errors import NotFound
from policy.store.projects import ProjectStore, role_names
from policy.store.token_cache import VerifiedCache, VerifiedEntry

__all__ = ["IssuedToken", "Principal", "TokenInfo", "TokenRegistry"]

_T = tables.tokens
_P = tables.projects


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    project: str
    role: str
    issued_at: datetime
    expires_at: datetime | None
    issued_by: str
    description: str
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, *, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_dict(self, *, now: datetime) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "project": self.project,
            "role": self.role,
            "issued_at": iso(self.issued_at),
            "expires_at": iso(self.expires_at),
            "issued_by": self.issued_by,
            "description": self.description,
            "revoked_at": iso(self.revoked_at),
            "last_used_at": iso(self.last_used_at),
            "state": self.state(now=now),
        }


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """The minted token (shown once) and its registry row."""

    token: str = field(repr=False)
    info: TokenInfo


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    project: str
    role: str
    token_id: str


def _opt(micros: int | None) -> datetime | None:
    return None if micros is None else audit.from_micros(micros)


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        project=row.project,
        role=row.role,
        issued_at=audit.from_micros(row.issued_at),
        expires_at=_opt(row.expires_at),
        issued_by=row.issued_by,
        description=row.description,
        revoked_at=_opt(row.revoked_at),
        last_used_at=_opt(row.last_used_at),
    )


class TokenRegistry:
    def __init__(
        self,
        engine: Engine,
        *,
        keyring: tokens.KeyRing,
        issuer: str,
        audience: str,
        projects: ProjectStore,
        last_used_interval: float = 60.0,
        verify_cache_seconds: float = 0.0,
    ) -> None:
        """``verify_cache_seconds``: how long a verified token is answered from memory (0: never; see
        :mod:`policy.store.token_cache` — changes through this replica still take effect at once)."""
        self._engine = engine
        self._keyring = keyring
        self._issuer = issuer
        self._audience = audience
        self._projects = projects
        self._interval_us = int(last_used_interval * 1_000_000)
        self._used: dict[str, int] = {}
        self._used_lock = threading.Lock()
        self._last_flush_us: int | None = None
        self._roles_cache: dict[tuple[str, int], frozenset[str]] = {}
        self._verified: VerifiedCache[Principal] = VerifiedCache(verify_cache_seconds)
        self._writes = itertools.count(1)
        self._generation = 0

    # --- minting and listing -----------------------------------------------------------------------------

    def create(
        self,
        project: str,
        role: str,
        *,
        ctx: audit.AuditContext,
        now: datetime,
        expires_in: timedelta | None = None,
        description: str = "",
    ) -> IssuedToken:
        """Mint a token for ``proj:<project>:<role>``. ``NotFound`` for an unknown project or role,
        ``ValueError`` for a non-positive ``expires_in``."""
        if expires_in is not None and expires_in <= timedelta(0):
            raise ValueError("expires-in must be positive (omit it for a token that does not expire)")
        stored = self._projects.get(project)
        if role not in role_names(stored.project()):
            raise NotFound(f"role {role!r} not found in project {project!r}")
        jti = tokens.new_token_id()
        expires_at = now + expires_in if expires_in is not None else None
        token = tokens.mint(
            keyring=self._keyring,
            project=project,
            role=role,
            jti=jti,
            issued_at=now,
            expires_at=expires_at,
            issuer=self._issuer,
            audience=self._audience,
        )
        # Times as the token states them (whole seconds), so the row and the claims agree.
        issued_us = audit.micros(now.replace(microsecond=0))
        expires_us = audit.micros(expires_at.replace(microsecond=0)) if expires_at else None
        with db.write_connection(self._engine) as conn, conn.begin():
            row = conn.execute(sa.select(_P.c.uid).where(_P.c.name == project)).first()
            if row is None or row.uid != stored.uid:
                raise NotFound(f"project {project!r} not found")
            conn.execute(
                _T.insert().values(
                    id=jti,
                    project=project,
                    project_uid=stored.uid,
                    role=role,
                    kid=self._keyring.current.kid,
                    issued_at=issued_us,
                    expires_at=expires_us,
                    issued_by=ctx.subject,
                    description=description,
                )
            )
            event = audit.AuditEvent.create(
                ctx=ctx,
                time=now,
                action="token.create",
                result="ok",
                project=project,
                object=f"role/{role}/token/{jti}",
                details={"expires_at": expires_at.isoformat() if expires_at else None, "description": description},
            )
            append_in(conn, event)
        return IssuedToken(token, self.get(jti))

    def get(self, token_id: str) -> TokenInfo:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_T).where(_T.c.id == token_id)).first()
        if row is None:
            raise NotFound("token not found")
        return _info(row)

    def list(self, project: str, role: str | None = None) -> list[TokenInfo]:
        query = sa.select(_T).where(_T.c.project == project)
        if role is not None:
            query = query.where(_T.c.role == role)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(_T.c.issued_at.desc(), _T.c.id)).all()
        return [_info(row) for row in rows]

    # --- revocation --------------------------------------------------------------------------------------

    def revoke(
        self, project: str, role: str, token_id: str, *, ctx: audit.AuditContext, now: datetime
    ) -> TokenInfo | None:
        """Revoke one token of ``project``/``role``. Like Argo CD, an unknown token is not an error: the
        result is None and nothing changes (still audited)."""
        with db.write_connection(self._engine) as conn, conn.begin():
            changed = conn.execute(
                _T.update()
                .where(_T.c.id == token_id, _T.c.project == project, _T.c.role == role, _T.c.revoked_at.is_(None))
                .values(revoked_at=audit.micros(now))
            ).rowcount
            event = audit.AuditEvent.create(
                ctx=ctx,
                time=now,
                action="token.revoke",
                result="ok" if changed else "not-found",
                project=project,
                object=f"role/{role}/token/{token_id}",
            )
            append_in(conn, event)
        self._generation = next(self._writes)
        if not changed:
            return None
        return self.get(token_id)

    def revoke_expired(self, *, ctx: audit.AuditContext, now: datetime, project: str | None = None) -> int:
        """Mark every expired, unrevoked token revoked (optionally of one project). Returns how many."""
        stamp = audit.micros(now)
        conds = [_T.c.revoked_at.is_(None), _T.c.expires_at.is_not(None), _T.c.expires_at <= stamp]
        if project is not None:
            conds.append(_T.c.project == project)
        with db.write_connection(self._engine) as conn, conn.begin():
            count = int(conn.execute(_T.update().where(*conds).values(revoked_at=stamp)).rowcount)
            event = audit.AuditEvent.create(
                ctx=ctx,
                time=now,
                action="token.revoke-expired",
                result="ok",
                project=project or "",
                details={"count": count},
            )
            append_in(conn, event)
        self._generation = next(self._writes)
        return count

    # --- verification ------------------------------------------------------------------------------------

    def verify(self, token: str, *, now: datetime) -> Principal:
        """The principal of a presented token, or :class:`policy.tokens.InvalidToken`."""
        generation = (self._generation, self._projects.generation)  # before the read: a later write invalidates
        cached = self._cached(token, now=now)
        if cached is not None:
            self._touch(cached.token_id, audit.micros(now))
            return cached
        claims = tokens.verify(token, keyring=self._keyring, issuer=self._issuer, audience=self._audience, now=now)
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(_T, _P.c.uid.label("current_uid"), _P.c.version.label("project_version"))
                .select_from(_T.outerjoin(_P, _P.c.name == _T.c.project))
                .where(_T.c.id == claims.jti)
            ).first()
        if row is None:
            raise tokens.InvalidToken("unknown token id")
        if row.project != claims.project or row.role != claims.role:
            raise tokens.InvalidToken("token id does not belong to this subject")
        if row.revoked_at is not None:
            raise tokens.InvalidToken("token revoked")
        stamp = audit.micros(now)
        leeway = timedelta(seconds=tokens.LEEWAY_SECONDS)
        if row.expires_at is not None and row.expires_at <= stamp - tokens.LEEWAY_SECONDS * 1_000_000:
            raise tokens.InvalidToken("token expired")
        if row.current_uid is None or row.current_uid != row.project_uid:
            raise tokens.InvalidToken("the token's project no longer exists")
        if claims.role not in self._roles(claims.project, int(row.project_version)):
            raise tokens.InvalidToken("the token's role no longer exists")
        self._touch(claims.jti, stamp)
        principal = Principal(
            subject=tokens.subject_for(claims.project, claims.role),
            project=claims.project,
            role=claims.role,
            token_id=claims.jti,
        )
        ends = [t + leeway for t in (claims.expires_at, _opt(row.expires_at)) if t is not None]
        self._verified.put(token, VerifiedEntry(principal, claims.kid, now, generation, min(ends, default=None)))
        return principal

    def verify_cached(self, token: str, *, now: datetime) -> Principal | None:
        """The principal from the verification cache, or None (then :meth:`verify` decides). Never blocks: when
        the last-used times are due to be written, None, so the caller's blocking path writes them."""
        principal = self._cached(token, now=now)
        stamp = audit.micros(now)
        if principal is None or self._flush_due(stamp):
            return None
        self._touch(principal.token_id, stamp)
        return principal

    def _cached(self, token: str, *, now: datetime) -> Principal | None:
        hit = self._verified.get(token, now=now, generation=(self._generation, self._projects.generation))
        if hit is None or self._keyring.key_for(hit.kid, now=now) is None:
            return None
        return hit.value

    def _roles(self, project: str, version: int) -> frozenset[str]:
        key = (project, version)
        cached = self._roles_cache.get(key)
        if cached is None:
            try:
                cached = frozenset(role_names(self._projects.get(project).project()))
            except (NotFound, InvalidProject):
                cached = frozenset()
            if len(self._roles_cache) > 4096:
                self._roles_cache.clear()
            self._roles_cache[key] = cached
        return cached

    # --- last used, coalesced ----------------------------------------------------------------------------

    def _touch(self, jti: str, stamp: int) -> None:
        with self._used_lock:
            self._used[jti] = max(stamp, self._used.get(jti, 0))
            if self._last_flush_us is None:
                self._last_flush_us = stamp
            due = stamp - self._last_flush_us >= self._interval_us
        if due:
            self.flush_last_used(now_us=stamp)

    def _flush_due(self, stamp: int) -> bool:
        with self._used_lock:
            return self._last_flush_us is not None and stamp - self._last_flush_us >= self._interval_us

    def flush_last_used(self, *, now_us: int | None = None) -> int:
        """Write the remembered last-used times (one statement). Returns how many rows were touched."""
        with self._used_lock:
            pending, self._used = self._used, {}
            if now_us is not None:
                self._last_flush_us = now_us
        if not pending:
            return 0
        stmt = (
            _T.update()
            .where(_T.c.id == sa.bindparam("b_id"))
            .where(sa.or_(_T.c.last_used_at.is_(None), _T.c.last_used_at < sa.bindparam("b_at")))
            .values(last_used_at=sa.bindparam("b_at"))
        )
        with db.write_connection(self._engine) as conn, conn.begin():
            conn.execute(stmt, [{"b_id": k, "b_at": v} for k, v in pending.items()])
        return len(pending)
