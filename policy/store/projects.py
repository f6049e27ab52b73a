"""Projects as stored: the AppProject manifest exactly as given (JSON), its name, a version for optimistic
concurrency and a ``uid`` that is new for every creation.

Who calls: ``api`` (project routes), the CLI (``syncwarden proj create|get|list|update|delete``) and
:mod:`policy.store.tokens` (does the token's project, and role, still exist?).

Every write is validated with ``AppProject.from_dict`` before anything is stored, and commits in one
transaction with its audit record (:func:`policy.store.audit.append_in`): no change without a record, no
record of a change that did not happen. A rejected write (invalid, conflict, missing) is audited as
``rejected`` in a transaction of its own. Removing a role or the project deletes its token rows, and a
recreated project gets a new ``uid``, so old tokens never come back (deliberate difference 4).
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from policy import audit
from policy.errors import ConflictError, InvalidProject, PolicyError
from policy.project import AppProject
from policy.store import db, tables
from policy.store.audit import append_in
from policy.store.errors import NotFound

__all__ = ["ProjectStore", "StoredProject", "role_names"]

log = logging.getLogger(__name__)
_P = tables.projects


@dataclass(frozen=True, slots=True)
class StoredProject:
    name: str
    uid: str
    version: int
    manifest: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    updated_by: str

    def project(self) -> AppProject:
        return AppProject.from_dict(self.manifest, source=f"stored project {self.name!r}")


def role_names(project: AppProject) -> set[str]:
    return {role.name for role in project.roles}


def _from_row(row: Any) -> StoredProject:
    return StoredProject(
        name=row.name,
        uid=row.uid,
        version=int(row.version),
        manifest=json.loads(row.manifest),
        created_at=audit.from_micros(row.created_at),
        updated_at=audit.from_micros(row.updated_at),
        updated_by=row.updated_by,
    )


def _dump(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, ensure_ascii=False, separators=(",", ":"))


class ProjectStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writes = itertools.count(1)
        #: bumped after every write through this store (after its commit): caches keyed on it drop stale entries
        self.generation = 0

    # --- reads -------------------------------------------------------------------------------------------

    def find(self, name: str) -> StoredProject | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_P).where(_P.c.name == name)).first()
        return None if row is None else _from_row(row)

    def get(self, name: str) -> StoredProject:
        found = self.find(name)
        if found is None:
            raise NotFound(f"project {name!r} not found")
        return found

    def list(self) -> list[StoredProject]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_P).order_by(_P.c.name)).all()
        return [_from_row(row) for row in rows]

    # --- writes ------------------------------------------------------------------------------------------

    def create(
        self, manifest: Mapping[str, Any], *, ctx: audit.AuditContext, now: datetime, source: str = ""
    ) -> StoredProject:
        """Store a new project. ``InvalidProject`` (field named), ``ConflictError`` when the name is taken."""
        project = self._validate(manifest, ctx=ctx, now=now, action="project.create", source=source)
        stamp = audit.micros(now)
        row = {
            "name": project.name,
            "uid": secrets.token_hex(16),
            "version": 1,
            "manifest": _dump(manifest),
            "created_at": stamp,
            "updated_at": stamp,
            "updated_by": ctx.subject,
        }
        try:
            with db.write_connection(self._engine) as conn, conn.begin():
                if conn.execute(sa.select(_P.c.name).where(_P.c.name == project.name)).first() is not None:
                    raise ConflictError(f"project {project.name!r} already exists")
                conn.execute(_P.insert().values(**row))
                append_in(conn, self._event(ctx, now, "project.create", project.name, "ok", version=1))
        except ConflictError as exc:
            self._reject(ctx, now, "project.create", project.name, exc)
            raise
        except sa.exc.IntegrityError:
            exc2 = ConflictError(f"project {project.name!r} already exists")
            self._reject(ctx, now, "project.create", project.name, exc2)
            raise exc2 from None
        self.generation = next(self._writes)
        return self.get(project.name)

    def update(
        self,
        manifest: Mapping[str, Any],
        *,
        ctx: audit.AuditContext,
        now: datetime,
        expected_version: int | None = None,
        source: str = "",
    ) -> StoredProject:
        """Replace a project's manifest. With ``expected_version``, a concurrent change is a ``ConflictError``.

        Roles that the new manifest no longer has lose their tokens in the same transaction.
        """
        project = self._validate(manifest, ctx=ctx, now=now, action="project.update", source=source)
        name = project.name
        try:
            with db.write_connection(self._engine) as conn, conn.begin():
                current = self._locked(conn, name)
                if expected_version is not None and current.version != expected_version:
                    raise ConflictError(
                        f"project {name!r} is at version {current.version}, not {expected_version}: "
                        "it was changed concurrently; read it again and retry"
                    )
                removed = role_names(current.project()) - role_names(project)
                conn.execute(
                    _P.update()
                    .where(_P.c.name == name, _P.c.version == current.version)
                    .values(
                        manifest=_dump(manifest),
                        version=current.version + 1,
                        updated_at=audit.micros(now),
                        updated_by=ctx.subject,
                    )
                )
                if removed:
                    conn.execute(
                        sa.delete(tables.tokens).where(
                            tables.tokens.c.project == name, tables.tokens.c.role.in_(sorted(removed))
                        )
                    )
                event = self._event(
                    ctx, now, "project.update", name, "ok", version=current.version + 1, removed_roles=sorted(removed)
                )
                append_in(conn, event)
        except (ConflictError, NotFound) as exc:
            self._reject(ctx, now, "project.update", name, exc)
            raise
        self.generation = next(self._writes)
        return self.get(name)

    def delete(self, name: str, *, ctx: audit.AuditContext, now: datetime, expected_version: int | None = None) -> None:
        """Delete a project and every token of its roles."""
        try:
            with db.write_connection(self._engine) as conn, conn.begin():
                current = self._locked(conn, name)
                if expected_version is not None and current.version != expected_version:
                    raise ConflictError(f"project {name!r} is at version {current.version}, not {expected_version}")
                conn.execute(sa.delete(_P).where(_P.c.name == name))
                revoked = conn.execute(sa.delete(tables.tokens).where(tables.tokens.c.project == name)).rowcount
                append_in(conn, self._event(ctx, now, "project.delete", name, "ok", tokens_deleted=revoked))
        except (ConflictError, NotFound) as exc:
            self._reject(ctx, now, "project.delete", name, exc)
            raise
        self.generation = next(self._writes)

    # --- helpers -----------------------------------------------------------------------------------------

    def _locked(self, conn: sa.Connection, name: str) -> StoredProject:
        query = sa.select(_P).where(_P.c.name == name)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"project {name!r} not found")
        return _from_row(row)

    def _validate(
        self, manifest: Mapping[str, Any], *, ctx: audit.AuditContext, now: datetime, action: str, source: str
    ) -> AppProject:
        try:
            project = AppProject.from_dict(manifest, source=source)
            if not project.manifest:
                raise InvalidProject(
                    "apiVersion", "a stored project is a whole AppProject (apiVersion, kind, metadata)", source=source
                )
            return project
        except InvalidProject as exc:
            name = _manifest_name(manifest)
            self._reject(ctx, now, action, name, exc)
            raise

    @staticmethod
    def _event(
        ctx: audit.AuditContext, now: datetime, action: str, name: str, result: str, **details: Any
    ) -> audit.AuditEvent:
        return audit.AuditEvent.create(ctx=ctx, time=now, action=action, result=result, project=name, details=details)

    def _reject(self, ctx: audit.AuditContext, now: datetime, action: str, name: str, exc: PolicyError) -> None:
        """Audit a refused write. The refusal stands even if the audit store is down (logged)."""
        event = self._event(ctx, now, action, name, "rejected", error=str(exc))
        try:
            with db.write_connection(self._engine) as conn, conn.begin():
                append_in(conn, event)
        except (audit.AuditUnavailable, sa.exc.SQLAlchemyError) as audit_exc:
            log.error("could not audit a rejected %s of project %r: %s", action, name, type(audit_exc).__name__)


def _manifest_name(manifest: Mapping[str, Any]) -> str:
    meta = manifest.get("metadata") if isinstance(manifest, Mapping) else None
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) else ""
