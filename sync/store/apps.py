"""Apps and their status as stored: the Application manifest, a version for optimistic concurrency, the
deletion mark, and the result of the last comparison.

Who calls: :class:`sync.appservice.AppService` (create/get/list/update/delete for the CLI and the HTTP
API) and the reconciler (status after every comparison, the deletion mark, removal once finalised).
Every write validates the manifest with ``Application.from_dict`` first, so the store never holds an app
the reconciler cannot read; an invalid manifest raises ``InvalidApplication`` naming the field.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync.application import Application
from sync.store import db, tables
from sync.store.records import AppExists, AppNotFound, AppStatus, StoredApp, VersionConflict

__all__ = ["AppStore", "StatusIndex", "dump"]

_A = tables.apps
_S = tables.status
#: keys per IN (...) list: well below every backend's limit on bound parameters
_CHUNK = 500
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


def _status(row: Any) -> AppStatus:
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
        orphaned_resources=None if row.orphans is None else json.loads(row.orphans),
    )


def _status_values(status: AppStatus) -> dict[str, Any]:
    return {
        "sync_status": status.sync_status,
        "health_status": status.health_status,
        "health_message": status.health_message,
        "revisions": dump(list(status.revisions)),
        "resources": dump(status.resources),
        "conditions": dump(status.conditions),
        "compared_to": status.compared_to,
        "reconciled_at": None if status.reconciled_at is None else db.micros(status.reconciled_at),
        "next_poll_at": None if status.next_poll_at is None else db.micros(status.next_poll_at),
        "orphans": None if status.orphaned_resources is None else dump(status.orphaned_resources),
    }


class StatusIndex(Mapping[tuple[str, str], AppStatus]):
    """Statuses read in one query, parsed only when asked for: a pass looks at every app's poll schedule but
    reads the full status (resources, conditions) only of the apps it compares."""

    def __init__(self, rows: dict[tuple[str, str], Any]) -> None:
        self._rows = rows
        self._parsed: dict[tuple[str, str], AppStatus] = {}

    def __getitem__(self, key: tuple[str, str]) -> AppStatus:
        found = self._parsed.get(key)
        if found is None:
            found = self._parsed[key] = _status(self._rows[key])
        return found

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def schedule(self, key: tuple[str, str]) -> tuple[str, datetime | None]:
        """(compared_to, next_poll_at) of the app, without parsing the rest; ("", None) if never compared."""
        row = self._rows.get(key)
        return ("", None) if row is None else (row.compared_to, _opt_time(row.next_poll_at))


def _finalizers(manifest: Mapping[str, Any]) -> list[str]:
    meta = manifest.get("metadata")
    value = meta.get("finalizers") if isinstance(meta, Mapping) else None
    return [str(f) for f in value] if isinstance(value, list) else []


def _edited(manifest: Mapping[str, Any], *, add: Sequence[str] = (), remove: Sequence[str] = ()) -> dict[str, Any]:
    """A copy of ``manifest`` whose finalizers lack ``remove`` and end with those of ``add`` it lacked."""
    finalizers = [f for f in _finalizers(manifest) if f not in remove]
    finalizers += [f for f in dict.fromkeys(add) if f not in finalizers]
    out = dict(manifest)
    meta = dict(out.get("metadata") or {})
    if finalizers:
        meta["finalizers"] = finalizers
    else:
        meta.pop("finalizers", None)
    out["metadata"] = meta
    return out


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

    def names(self, *, project: str | None = None) -> builtins.list[tuple[str, str, str]]:
        """(namespace, name, project) of every app, sorted, without reading the specs (the API's listing filter
        and the replicas' lease round)."""
        query = sa.select(_A.c.namespace, _A.c.name, _A.c.project).order_by(_A.c.namespace, _A.c.name)
        if project is not None:
            query = query.where(_A.c.project == project)
        with self._engine.connect() as conn:
            return [(row.namespace, row.name, row.project) for row in conn.execute(query)]

    def many(self, keys: Sequence[tuple[str, str]]) -> builtins.list[StoredApp]:
        """The apps of ``keys`` that exist, in the order given (one query per 500 keys)."""
        found: dict[tuple[str, str], StoredApp] = {}
        with self._engine.connect() as conn:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                where = sa.or_(*(_where(_A, ns, name) for ns, name in chunk))
                for row in conn.execute(sa.select(_A).where(where)):
                    app = _app(row)
                    found[(app.namespace, app.name)] = app
        return [found[k] for k in keys if k in found]

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
               source: str = "", keep_finalizers: Sequence[str] = ()) -> StoredApp:
        """Replace an app's manifest. With ``expected_version``, a concurrent change is a ``VersionConflict``.
        Those of ``keep_finalizers`` the stored app carries stay, whatever the new manifest says (the ones the
        reconciler manages: an edit must not make a deletion skip its hooks)."""
        app = _validated(manifest, source)
        with db.write_connection(self._engine) as conn, conn.begin():
            current = self._locked(conn, app.namespace, app.name)
            if current.deleting_at is not None:
                raise VersionConflict(f"application {app.namespace}/{app.name} is being deleted")
            self._check_version(current, expected_version)
            kept = [f for f in _finalizers(current.manifest) if f in keep_finalizers]
            conn.execute(_A.update().where(_where(_A, app.namespace, app.name)).values(
                project=app.project, spec=dump(_edited(manifest, add=kept)), version=current.version + 1,
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

    def edit_finalizers(self, namespace: str, name: str, *, now: datetime, add: Sequence[str] = (),
                        remove: Sequence[str] = (), unless_deleting: bool = False) -> StoredApp:
        """Add and remove ``metadata.finalizers`` on the list as stored, in one transaction (the reconciler: a
        finished deletion stage drops its finalizer; a comparison adds or drops the PreDelete/PostDelete ones,
        which with ``unless_deleting`` never change once the app carries the deletion mark). Writes (and bumps
        the version) only when the list changes."""
        with db.write_connection(self._engine) as conn, conn.begin():
            current = self._locked(conn, namespace, name)
            if unless_deleting and current.deleting_at is not None:
                return current
            edited = _edited(current.manifest, add=add, remove=remove)
            if _finalizers(edited) == _finalizers(current.manifest):
                return current
            conn.execute(_A.update().where(_where(_A, namespace, name)).values(
                spec=dump(edited), version=current.version + 1, updated_at=db.micros(now)))
        return self.get(namespace, name)

    def annotate(self, namespace: str, name: str, annotations: Mapping[str, str], *, now: datetime) -> StoredApp:
        """Set ``metadata.annotations`` entries (``deletion-approved``); allowed while the app is being deleted,
        since ``Delete=confirm`` waits for it then."""
        with db.write_connection(self._engine) as conn, conn.begin():
            current = self._locked(conn, namespace, name)
            manifest = dict(current.manifest)
            meta = dict(manifest.get("metadata") or {})
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
            manifest["metadata"] = meta
            _validated(manifest, f"stored app {namespace}/{name}")
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
        return AppStatus() if row is None else _status(row)

    def statuses(self, keys: Collection[tuple[str, str]] | None = None) -> StatusIndex:
        """Every stored status in one query, by (namespace, name) (the reconciler reads them once per pass);
        an app missing here was never compared. With ``keys``, only those apps' (a query per 500 names)."""
        with self._engine.connect() as conn:
            if keys is None:
                return StatusIndex({(row.namespace, row.name): row for row in conn.execute(sa.select(_S))})
            wanted = set(keys)
            names = sorted({name for _, name in wanted})
            rows: dict[tuple[str, str], Any] = {}
            for i in range(0, len(names), _CHUNK):
                for row in conn.execute(sa.select(_S).where(_S.c.name.in_(names[i:i + _CHUNK]))):
                    if (row.namespace, row.name) in wanted:
                        rows[(row.namespace, row.name)] = row
            return StatusIndex(rows)

    def put_status(self, namespace: str, name: str, status: AppStatus) -> None:
        self.put_statuses([(namespace, name, status)])

    def put_statuses(self, items: Sequence[tuple[str, str, AppStatus]]) -> None:
        """Write several apps' statuses in one transaction (the reconciler's pass: one commit, not one per
        app), as one batched UPDATE of the rows that exist and one batched INSERT of the others. All or none
        are written; an app listed twice keeps its last status."""
        rows = {(namespace, name): _status_values(status) for namespace, name, status in items}
        if not rows:
            return
        with db.write_connection(self._engine) as conn, conn.begin():
            existing: set[tuple[str, str]] = set()
            names = sorted({name for _, name in rows})
            for i in range(0, len(names), _CHUNK):
                query = sa.select(_S.c.namespace, _S.c.name).where(_S.c.name.in_(names[i:i + _CHUNK]))
                existing.update((r.namespace, r.name) for r in conn.execute(query))
            updates = [{"k_ns": ns, "k_name": name, **values} for (ns, name), values in rows.items()
                       if (ns, name) in existing]
            inserts = [{"namespace": ns, "name": name, **values} for (ns, name), values in rows.items()
                       if (ns, name) not in existing]
            if updates:
                conn.execute(_S.update().where(_S.c.namespace == sa.bindparam("k_ns"),
                                               _S.c.name == sa.bindparam("k_name")), updates)
            if inserts:
                conn.execute(_S.insert(), inserts)

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
