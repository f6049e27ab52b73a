"""Apps and their status as stored: the Application manifest, a version for optimistic concurrency, the
deletion mark, and the result of the last comparison.

Who calls: :class:`sync.appservice.AppService` (create/get/list/update/delete for the CLI and the HTTP
API) and the reconciler (status after every comparison, the deletion mark, removal once finalised).
Every write validates the manifest with ``Application.from_dict`` first, so the store never holds an app
the reconciler cannot read; an invalid manifest raises ``InvalidApplication`` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync.application import Application
from sync.store import db, tables
from sync.store.records import AppExists, AppNotFound, AppStatus, StoredApp, VersionConflict

__all__ = ["AppStore", "dump"]

_A = tables.apps
_S = tables.status
_APP_TABLES = (tables.refresh_requests, tables.autosync, tables.history, tables.operations, tables.status)


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _opt_time(value: int | None) -> datetime | None:
    return None if value is None else db.from_micros(value)


def _app(row: Any) -> StoredApp:
    return StoredApp(
        namespace=row.namespace,
        name=row.name,
        project=row.project,
        manifest=json.loads(row.spec),
        version=int(row.version),
        created_at=db.from_micros(row.created_at),
        updated_at=db.from_micros(row.updated_at),
        deleting_at=_opt_time(row.deleting_at),
    )


def _where(table: sa.Table, namespace: str, name: str) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.namespace == namespace, table.c.name == name)


def _validated(manifest: Mapping[str, Any], source: str) -> Application:
    return Application.from_dict(manifest, source=source)


class AppStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- apps --------------------------------------------------------------------------------------------

    def find(self, namespace: str, name: str) -> StoredApp | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_A).where(_where(_A, namespace, name))).first()
        return None if row is None else _app(row)

    def get(self, namespace: str, name: str) -> StoredApp:
        found = self.find(namespace, name)
        if found is None:
            raise AppNotFound(f"application {namespace}/{name} not found")
        return found

    def list(self, *, project: str | None = None) -> list[StoredApp]:
        query = sa.select(_A).order_by(_A.c.namespace, _A.c.name)
        if project is not None:
            query = query.where(_A.c.project == project)
        with self._engine.connect() as conn:
            return [_app(row) for row in conn.execute(query)]

    def create(self, manifest: Mapping[str, Any], *, now: datetime, source: str = "") -> StoredApp:
        """Store a new app; ``InvalidApplication`` naming the field, ``AppExists`` when the name is taken."""
        app = _validated(manifest, source)
        stamp = db.micros(now)
        try:
            with db.write_connection(self._engine) as conn, conn.begin():
                if conn.execute(sa.select(_A.c.name).where(_where(_A, app.namespace, app.name))).first():
                    raise AppExists(f"application {app.namespace}/{app.name} already exists")
                conn.execute(_A.insert().values(
                    namespace=app.namespace, name=app.name, project=app.project, spec=dump(dict(manifest)),
                    version=1, created_at=stamp, updated_at=stamp, deleting_at=None,
                ))
        except sa.exc.IntegrityError:
            raise AppExists(f"application {app.namespace}/{app.name} already exists") from None
        return self.get(app.namespace, app.name)

    def update(self, manifest: Mapping[str, Any], *, now: datetime, expected_version: int | None = None,
               source: str = "") -> StoredApp:
        """Replace an app's manifest. With ``expected_version``, a concurrent change is a ``VersionConflict``."""
        app = _validated(manifest, source)
        with db.write_connection(self._engine) as conn, conn.begin():
            current = self._locked(conn, app.namespace, app.name)
            if current.deleting_at is not None:
                raise VersionConflict(f"application {app.namespace}/{app.name} is being deleted")
            self._check_version(current, expected_version)
            conn.execute(_A.update().where(_where(_A, app.namespace, app.name)).values(
                project=app.project, spec=dump(dict(manifest)), version=current.version + 1,
                updated_at=db.micros(now),
            ))
        return self.get(app.namespace, app.name)

    def mark_deleting(self, namespace: str, name: str, *, now: datetime, finalizers: tuple[str, ...] | None = None,
                      expected_version: int | None = None) -> StoredApp:
        """Set the deletion mark (idempotent); ``finalizers`` replaces ``metadata.finalizers`` when given."""
        with db.write_connection(self._engine) as conn, conn.begin():
            current = self._locked(conn, namespace, name)
            self._check_version(current, expected_version)
            manifest = dict(current.manifest)
            if finalizers is not None:
                meta = dict(manifest.get("metadata") or {})
                if finalizers:
                    meta["finalizers"] = list(finalizers)
                else:
                    meta.pop("finalizers", None)
                manifest["metadata"] = meta
            conn.execute(_A.update().where(_where(_A, namespace, name)).values(
                spec=dump(manifest), version=current.version + 1,
                deleting_at=db.micros(current.deleting_at or now),
                updated_at=db.micros(now),
            ))
        return self.get(namespace, name)

    def set_finalizers(self, namespace: str, name: str, finalizers: tuple[str, ...], *, now: datetime) -> StoredApp:
        """Rewrite ``metadata.finalizers`` (the reconciler drops a finalizer once its stage is done)."""
        with db.write_connection(self._engine) as conn, conn.begin():
            current = self._locked(conn, namespace, name)
            manifest = dict(current.manifest)
            meta = dict(manifest.get("metadata") or {})
            if finalizers:
                meta["finalizers"] = list(finalizers)
            else:
                meta.pop("finalizers", None)
            manifest["metadata"] = meta
            conn.execute(_A.update().where(_where(_A, namespace, name)).values(
                spec=dump(manifest), version=current.version + 1, updated_at=db.micros(now)))
        return self.get(namespace, name)

    def remove(self, namespace: str, name: str) -> None:
        """Delete the app and everything stored about it (after finalisation)."""
        with db.write_connection(self._engine) as conn, conn.begin():
            for table in (*_APP_TABLES, _A):
                conn.execute(sa.delete(table).where(_where(table, namespace, name)))

    # --- status ------------------------------------------------------------------------------------------

    def status(self, namespace: str, name: str) -> AppStatus:
        """The last comparison's result; an app never compared has ``Unknown`` sync and health."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_S).where(_where(_S, namespace, name))).first()
        if row is None:
            return AppStatus()
        return AppStatus(
            sync_status=row.sync_status,
            health_status=row.health_status,
            health_message=row.health_message,
            revisions=tuple(json.loads(row.revisions)),
            resources=json.loads(row.resources),
            conditions=json.loads(row.conditions),
            compared_to=row.compared_to,
            reconciled_at=_opt_time(row.reconciled_at),
            next_poll_at=_opt_time(row.next_poll_at),
        )

    def put_status(self, namespace: str, name: str, status: AppStatus) -> None:
        values = {
            "sync_status": status.sync_status,
            "health_status": status.health_status,
            "health_message": status.health_message,
            "revisions": dump(list(status.revisions)),
            "resources": dump(status.resources),
            "conditions": dump(status.conditions),
            "compared_to": status.compared_to,
            "reconciled_at": None if status.reconciled_at is None else db.micros(status.reconciled_at),
            "next_poll_at": None if status.next_poll_at is None else db.micros(status.next_poll_at),
        }
        with db.write_connection(self._engine) as conn, conn.begin():
            updated = conn.execute(_S.update().where(_where(_S, namespace, name)).values(**values)).rowcount
            if not updated:
                conn.execute(_S.insert().values(namespace=namespace, name=name, **values))

    # --- helpers -----------------------------------------------------------------------------------------

    @staticmethod
    def _check_version(current: StoredApp, expected: int | None) -> None:
        if expected is not None and current.version != expected:
            raise VersionConflict(
                f"application {current.namespace}/{current.name} is at version {current.version}, not {expected}: "
                "it was changed concurrently; read it again and retry"
            )

    @staticmethod
    def _locked(conn: sa.Connection, namespace: str, name: str) -> StoredApp:
        query = sa.select(_A).where(_where(_A, namespace, name))
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise AppNotFound(f"application {namespace}/{name} not found")
        return _app(row)
