"""The RBAC policy (``policy.csv`` plus default role and match mode), versioned: every change is a new row
with its author and time, and the newest row is the live policy.

Who calls: ``api`` (policy routes; :class:`LivePolicy` at startup and on change) and the CLI.

A new version is validated whole with ``Authorizer.from_csv`` before it is stored, and commits together
with its audit record. :class:`LivePolicy` holds the compiled ``Authorizer`` of the newest version and
swaps it in one reference assignment: readers see the old policy or the new one, never a mix, and a
version that fails to compile (e.g. stored by a newer release) is refused whole while the last good one
stays live, with an error log.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from policy import audit
from policy.errors import ConflictError, InvalidPolicy
from policy.rbac import Authorizer
from policy.store import db, tables
from policy.store.audit import append_in
from policy.store.errors import NotFound

__all__ = ["LivePolicy", "RbacPolicyStore", "StoredPolicy"]

log = logging.getLogger(__name__)
_T = tables.rbac_policies


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    version: int
    policy_csv: str
    default_role: str | None
    match_mode: str
    author: str
    created_at: datetime
    comment: str

    def compile(self) -> Authorizer:
        return Authorizer.from_csv(
            self.policy_csv, default_role=self.default_role, match_mode=self.match_mode, builtin=True
        )


def _from_row(row: Any) -> StoredPolicy:
    return StoredPolicy(
        version=int(row.version),
        policy_csv=row.policy_csv,
        default_role=row.default_role,
        match_mode=row.match_mode,
        author=row.author,
        created_at=audit.from_micros(row.created_at),
        comment=row.comment,
    )


class RbacPolicyStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def current(self) -> StoredPolicy | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_T).order_by(_T.c.version.desc()).limit(1)).first()
        return None if row is None else _from_row(row)

    def get(self, version: int) -> StoredPolicy:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_T).where(_T.c.version == version)).first()
        if row is None:
            raise NotFound(f"RBAC policy version {version} not found")
        return _from_row(row)

    def history(self) -> list[StoredPolicy]:
        """Every version, newest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_T).order_by(_T.c.version.desc())).all()
        return [_from_row(row) for row in rows]

    def set(
        self,
        policy_csv: str,
        *,
        ctx: audit.AuditContext,
        now: datetime,
        default_role: str | None = None,
        match_mode: str = "glob",
        expected_version: int | None = None,
        comment: str = "",
    ) -> StoredPolicy:
        """Store a new version (``expected_version`` 0 means "there is none yet").

        Raises ``InvalidPolicy`` (nothing stored) or ``ConflictError`` when another change came first.
        """
        try:
            Authorizer.from_csv(policy_csv, default_role=default_role, match_mode=match_mode, builtin=True)
        except InvalidPolicy as exc:
            self._reject(ctx, now, str(exc))
            raise
        try:
            version = self._insert(policy_csv, ctx, now, default_role, match_mode, expected_version, comment)
        except ConflictError as exc:
            self._reject(ctx, now, str(exc))
            raise
        return self.get(version)

    def _insert(
        self,
        policy_csv: str,
        ctx: audit.AuditContext,
        now: datetime,
        default_role: str | None,
        match_mode: str,
        expected_version: int | None,
        comment: str,
    ) -> int:
        with db.write_connection(self._engine) as conn, conn.begin():
            query = sa.select(sa.func.max(_T.c.version))
            if conn.dialect.name == "postgresql":  # serialise writers on the audit head they all lock anyway
                conn.execute(sa.select(tables.audit_head.c.seq).where(tables.audit_head.c.id == 1).with_for_update())
            latest = int(conn.execute(query).scalar() or 0)
            if expected_version is not None and latest != expected_version:
                raise ConflictError(
                    f"the RBAC policy is at version {latest}, not {expected_version}: it was changed concurrently"
                )
            version = latest + 1
            conn.execute(
                _T.insert().values(
                    version=version,
                    policy_csv=policy_csv,
                    default_role=default_role,
                    match_mode=match_mode,
                    author=ctx.subject,
                    created_at=audit.micros(now),
                    comment=comment,
                )
            )
            event = audit.AuditEvent.create(
                ctx=ctx,
                time=now,
                action="rbac.update",
                result="ok",
                object="policy.csv",
                details={"version": version, "lines": len(policy_csv.splitlines()), "comment": comment},
            )
            append_in(conn, event)
        return version

    def _reject(self, ctx: audit.AuditContext, now: datetime, error: str) -> None:
        event = audit.AuditEvent.create(
            ctx=ctx, time=now, action="rbac.update", result="rejected", object="policy.csv", details={"error": error}
        )
        try:
            with db.write_connection(self._engine) as conn, conn.begin():
                append_in(conn, event)
        except (audit.AuditUnavailable, sa.exc.SQLAlchemyError) as audit_exc:
            log.error("could not audit a rejected RBAC policy change: %s", type(audit_exc).__name__)


class LivePolicy:
    """The compiled newest policy, swapped atomically by :meth:`refresh`."""

    def __init__(self, store: RbacPolicyStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._version = 0
        self._authorizer = Authorizer.from_csv("", builtin=True)

    @property
    def version(self) -> int:
        return self._version

    def authorizer(self) -> Authorizer:
        return self._authorizer

    def refresh(self) -> bool:
        """Load the newest version if it changed. False when it could not be compiled (last good stays)."""
        with self._lock:
            stored = self._store.current()
            if stored is None or stored.version == self._version:
                return True
            try:
                compiled = stored.compile()
            except InvalidPolicy as exc:
                log.error(
                    "RBAC policy version %d refused, version %d stays live: %s", stored.version, self._version, exc
                )
                return False
            self._authorizer, self._version = compiled, stored.version
            return True
