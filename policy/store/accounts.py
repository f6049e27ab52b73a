"""Local accounts, their login sessions and the per-user-name login throttle, in the policy database.

Who calls: ``api.auth`` (``POST /api/v1/session``, bearer session tokens, the admin bootstrap at startup).
The pure rules (hashing, throttle arithmetic) are in :mod:`policy.accounts`.

* Session tokens are opaque random strings (``sws_`` + 256 random bits); only their SHA-256 is stored, so the
  database never holds a usable token. A session dies when it expires, is revoked (logout), its account is
  disabled or its password changes after the session was issued (security-cases AUTH-05).
* The throttle row is keyed by the SHA-256 of the attempted user name (a user who types a password into the
  name field does not leave it in the database). Updates are atomic per row (``BEGIN IMMEDIATE`` on SQLite,
  ``SELECT ... FOR UPDATE`` on PostgreSQL), so concurrent failures are all counted (AUTH-03).
* Creating an account, changing a password and the admin bootstrap commit with their audit record.

The tables are created by migration ``0002_accounts``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from policy import accounts, audit
from policy.store import db, tables
from policy.store.audit import append_in
from policy.store.errors import NotFound

__all__ = ["ADMIN", "SESSION_PREFIX", "Account", "AccountStore", "Session", "account_tables"]

ADMIN = "admin"
SESSION_PREFIX = "sws_"
_MAX_NAME = 253

accounts_table = sa.Table(
    "policy_accounts",
    tables.metadata,
    sa.Column("username", sa.String(_MAX_NAME), primary_key=True),
    sa.Column("password_hash", sa.String(512), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("password_changed_at", sa.BigInteger, nullable=False),
)
sessions_table = sa.Table(
    "policy_sessions",
    tables.metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(_MAX_NAME), nullable=False),
    sa.Column("issued_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Index("ix_policy_sessions_username", "username"),
)
throttle_table = sa.Table(
    "policy_login_throttle",
    tables.metadata,
    sa.Column("name_hash", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", sa.BigInteger, nullable=False),
    sa.Column("locked_until", sa.BigInteger, nullable=True),
)
account_tables = (accounts_table, sessions_table, throttle_table)

_A, _S, _T = accounts_table, sessions_table, throttle_table


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    password_hash: str
    enabled: bool
    created_at: datetime
    password_changed_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    issued_at: datetime
    expires_at: datetime
    #: the token's SHA-256 (hex): safe to log and audit
    id_hash: str


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", errors="surrogatepass")).hexdigest()


def session_id_hash(token: str) -> str:
    return _hash(token)


def _account(row: Any) -> Account:
    return Account(
        username=row.username,
        password_hash=row.password_hash,
        enabled=bool(row.enabled),
        created_at=audit.from_micros(row.created_at),
        password_changed_at=audit.from_micros(row.password_changed_at),
    )


def _insert_ignore(conn: sa.Connection, table: sa.Table, values: dict[str, Any], key: str) -> int:
    """INSERT ... ON CONFLICT DO NOTHING; returns the number of rows inserted (0 or 1)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=[key])
    return 0 if conn.execute(stmt.returning(table.c[key])).first() is None else 1


class AccountStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- accounts ----------------------------------------------------------------------------------------

    def find(self, username: str) -> Account | None:
        if len(username) > _MAX_NAME:
            return None
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_A).where(_A.c.username == username)).first()
        return None if row is None else _account(row)

    def create(
        self, username: str, password_hash: str, *, ctx: audit.AuditContext, now: datetime, enabled: bool = True
    ) -> bool:
        """Create an account; False (nothing changed) when the name is taken. Audited with the change."""
        if not username or len(username) > _MAX_NAME or username != username.strip() or ":" in username:
            raise accounts.AccountError("an account name must be 1-253 characters without ':' or surrounding spaces")
        stamp = audit.micros(now)
        values = {
            "username": username,
            "password_hash": password_hash,
            "enabled": enabled,
            "created_at": stamp,
            "password_changed_at": stamp,
        }
        with db.write_connection(self._engine) as conn, conn.begin():
            created = _insert_ignore(conn, _A, values, "username")
            if created:
                append_in(conn, audit.AuditEvent.create(
                    ctx=ctx, time=now, action="account.create", result="ok", object=f"account/{username}"))
        return bool(created)

    def set_password(self, username: str, password_hash: str, *, ctx: audit.AuditContext, now: datetime) -> None:
        """Replace the password; every session issued before ``now`` stops working."""
        with db.write_connection(self._engine) as conn, conn.begin():
            changed = conn.execute(
                _A.update().where(_A.c.username == username)
                .values(password_hash=password_hash, password_changed_at=audit.micros(now))
            ).rowcount
            if not changed:
                raise NotFound(f"account {username!r} not found")
            append_in(conn, audit.AuditEvent.create(
                ctx=ctx, time=now, action="account.password", result="ok", object=f"account/{username}"))

    def set_enabled(self, username: str, enabled: bool, *, ctx: audit.AuditContext, now: datetime) -> None:
        with db.write_connection(self._engine) as conn, conn.begin():
            changed = conn.execute(_A.update().where(_A.c.username == username).values(enabled=enabled)).rowcount
            if not changed:
                raise NotFound(f"account {username!r} not found")
            append_in(conn, audit.AuditEvent.create(
                ctx=ctx, time=now, action="account.enable" if enabled else "account.disable", result="ok",
                object=f"account/{username}"))

    # --- sessions ----------------------------------------------------------------------------------------

    def create_session(self, username: str, *, now: datetime, ttl: timedelta) -> tuple[str, Session]:
        """A new session token (returned once, never stored) and its record."""
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        id_hash = session_id_hash(token)
        issued, expires = audit.micros(now), audit.micros(now + ttl)
        with db.write_connection(self._engine) as conn, conn.begin():
            conn.execute(_S.insert().values(id_hash=id_hash, username=username, issued_at=issued, expires_at=expires))
        return token, Session(username, audit.from_micros(issued), audit.from_micros(expires), id_hash)

    def verify_session(self, token: str, *, now: datetime) -> Session | None:
        """The live session of ``token``, or None (unknown, expired, revoked, account gone/disabled, or the
        password changed since it was issued)."""
        if not token.startswith(SESSION_PREFIX) or len(token) > 128:
            return None
        id_hash = session_id_hash(token)
        query = (
            sa.select(_S, _A.c.enabled, _A.c.password_changed_at)
            .select_from(_S.join(_A, _A.c.username == _S.c.username))
            .where(_S.c.id_hash == id_hash)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        stamp = audit.micros(now)
        if row is None or row.revoked_at is not None or row.expires_at <= stamp or not row.enabled:
            return None
        if row.issued_at < row.password_changed_at:
            return None
        return Session(row.username, audit.from_micros(row.issued_at), audit.from_micros(row.expires_at), id_hash)

    def revoke_session(self, token: str, *, now: datetime) -> bool:
        with db.write_connection(self._engine) as conn, conn.begin():
            changed = conn.execute(
                _S.update().where(_S.c.id_hash == session_id_hash(token), _S.c.revoked_at.is_(None))
                .values(revoked_at=audit.micros(now))
            ).rowcount
        return bool(changed)

    # --- login throttle ----------------------------------------------------------------------------------

    def throttle(self, username: str) -> accounts.ThrottleState:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_T).where(_T.c.name_hash == _hash(username))).first()
        if row is None:
            return accounts.ThrottleState()
        locked = audit.from_micros(row.locked_until) if row.locked_until is not None else None
        return accounts.ThrottleState(int(row.failures), locked)

    def record_failure(self, username: str, *, rules: accounts.ThrottleRules, now: datetime) -> accounts.ThrottleState:
        """Count one failed login atomically and return the new state."""
        key = _hash(username)
        stamp = audit.micros(now)
        with db.write_connection(self._engine) as conn, conn.begin():
            _insert_ignore(conn, _T, {"name_hash": key, "failures": 0, "last_failure_at": stamp, "locked_until": None},
                           "name_hash")
            query = sa.select(_T).where(_T.c.name_hash == key)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).one()
            before = accounts.ThrottleState(
                int(row.failures), audit.from_micros(row.locked_until) if row.locked_until is not None else None
            )
            last = audit.from_micros(row.last_failure_at) if row.failures else None
            after = rules.after_failure(before, now=now, last_failure=last)
            conn.execute(
                _T.update().where(_T.c.name_hash == key).values(
                    failures=after.failures,
                    last_failure_at=stamp,
                    locked_until=audit.micros(after.locked_until) if after.locked_until is not None else None,
                )
            )
        return after

    def record_success(self, username: str) -> None:
        with db.write_connection(self._engine) as conn, conn.begin():
            conn.execute(sa.delete(_T).where(_T.c.name_hash == _hash(username)))

    def purge_throttle(self, *, older_than: datetime) -> int:
        """Forget unlocked throttle rows whose last failure is older than ``older_than`` (housekeeping)."""
        stamp = audit.micros(older_than)
        with db.write_connection(self._engine) as conn, conn.begin():
            return int(conn.execute(
                sa.delete(_T).where(_T.c.last_failure_at < stamp,
                                    sa.or_(_T.c.locked_until.is_(None), _T.c.locked_until < stamp))
            ).rowcount)
