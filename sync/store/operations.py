"""Operations, history, auto-sync bookkeeping and refresh requests as stored.

Who calls: the reconciler (every tick of an operation is persisted here before the next one runs, so a
restart resumes the operation instead of running it twice), :class:`sync.appservice.AppService` (manual
sync, rollback, refresh, history, waiting for an operation) and ``api``.

One operation per app at a time (Argo CD's "another operation is already in progress"): an app has one
row in ``sync_operations``; starting an operation is a conditional write that only succeeds while the row's
``request`` is empty, so two concurrent requests (two replicas, a person and the reconciler) cannot both
win, on SQLite or PostgreSQL. A tick's state is saved only if the row still belongs to that operation.

The managedNamespaceMetadata an operation applied (its state's ``managedNamespaceMetadata``) is also kept in
its own column, which starting the next operation leaves alone: the comparison needs "what the last sync
applied" (§2.1) even after an operation that applied nothing.

History follows §2.5/§7: ids are last + 1 starting at 0, and the newest ``revisionHistoryLimit`` entries
are kept (with a limit of 0 nothing is kept, so ids restart at 0).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync.operation import NAMESPACE_METADATA
from sync.store import db, tables
from sync.store.apps import dump
from sync.store.records import (
    AppNotFound,
    AutoSyncRecord,
    HistoryEntry,
    OperationInProgress,
    OperationRecord,
    RefreshLevel,
    RefreshRequest,
    StaleOperation,
)

__all__ = ["NewHistory", "OperationStore"]

_O = tables.operations
_H = tables.history
_AS = tables.autosync
_R = tables.refresh_requests
_LEVELS: dict[str, int] = {"normal": 1, "hard": 2}


def _where(table: sa.Table, namespace: str, name: str) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.namespace == namespace, table.c.name == name)


@dataclass(frozen=True)
class NewHistory:
    """A history entry to append (:meth:`OperationStore.append_history`), keeping the newest ``limit``."""

    revisions: tuple[str, ...]
    sources: list[dict[str, Any]]
    deploy_started_at: datetime
    deployed_at: datetime
    initiated_by: Mapping[str, Any]
    limit: int


def _save_state(conn: sa.Connection, namespace: str, name: str, *, op_id: str, state: Mapping[str, Any],
                phase: str, completed: bool, now: datetime, expected_version: int | None) -> None:
    values: dict[str, Any] = {"state": dump(dict(state)), "phase": phase, "updated_at": db.micros(now),
                              "version": _O.c.version + 1}
    # the managedNamespaceMetadata this operation applied goes to its own column too, which the next
    # operation's start leaves alone: "what the last sync applied" outlives the operation state (§2.1)
    if state.get(NAMESPACE_METADATA) is not None:
        values["namespace_metadata"] = dump(state[NAMESPACE_METADATA])
    if completed:
        values.update(request=None, lease_owner=None, lease_until=None)
    conditions = [_where(_O, namespace, name), _O.c.op_id == op_id, _O.c.request.is_not(None)]
    if expected_version is not None:
        conditions.append(_O.c.version == expected_version)
    if not conn.execute(_O.update().where(*conditions).values(**values)).rowcount:
        raise StaleOperation(f"application {namespace}/{name}: operation {op_id} is no longer current")


def _append_history(conn: sa.Connection, namespace: str, name: str, entry: NewHistory) -> int:
    last = conn.execute(sa.select(sa.func.max(_H.c.id)).where(_where(_H, namespace, name))).scalar()
    entry_id = 0 if last is None else int(last) + 1
    conn.execute(_H.insert().values(
        namespace=namespace, name=name, id=entry_id, revisions=dump(list(entry.revisions)),
        sources=dump(entry.sources), deploy_started_at=db.micros(entry.deploy_started_at),
        deployed_at=db.micros(entry.deployed_at), initiated_by=dump(dict(entry.initiated_by)),
    ))
    conn.execute(sa.delete(_H).where(_where(_H, namespace, name), _H.c.id <= entry_id - max(entry.limit, 0)))
    return entry_id


def _put_autosync(conn: sa.Connection, namespace: str, name: str, record: AutoSyncRecord) -> None:
    conn.execute(sa.delete(_AS).where(_where(_AS, namespace, name)))
    conn.execute(_AS.insert().values(
        namespace=namespace, name=name, revisions=dump(list(record.revisions)),
        spec_hash=record.spec_hash, attempted_at=db.micros(record.attempted_at),
        phase=record.phase, message=record.message, self_heal_attempts=record.self_heal_attempts,
        last_finished_at=None if record.last_finished_at is None else db.micros(record.last_finished_at),
    ))


def _opt(value: int | None) -> datetime | None:
    return None if value is None else db.from_micros(value)


def _op(row: Any) -> OperationRecord:
    return OperationRecord(
        op_id=row.op_id,
        request=None if row.request is None else json.loads(row.request),
        state=None if row.state is None else json.loads(row.state),
        phase=row.phase,
        version=int(row.version),
        updated_at=db.from_micros(row.updated_at),
        namespace_metadata=None if row.namespace_metadata is None else json.loads(row.namespace_metadata),
    )


def _history(row: Any) -> HistoryEntry:
    return HistoryEntry(
        id=int(row.id),
        revisions=tuple(json.loads(row.revisions)),
        sources=json.loads(row.sources),
        deploy_started_at=db.from_micros(row.deploy_started_at),
        deployed_at=db.from_micros(row.deployed_at),
        initiated_by=json.loads(row.initiated_by),
    )


class OperationStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # --- operations --------------------------------------------------------------------------------------

    def operation(self, namespace: str, name: str) -> OperationRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_O).where(_where(_O, namespace, name))).first()
        return None if row is None else _op(row)

    def in_progress(self) -> list[tuple[str, str]]:
        """(namespace, name) of every app with a pending or running operation."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_O.c.namespace, _O.c.name).where(_O.c.request.is_not(None))).all()
        return [(r.namespace, r.name) for r in rows]

    def start(self, namespace: str, name: str, *, op_id: str, request: Mapping[str, Any], now: datetime) -> None:
        """Make ``request`` the app's operation; ``OperationInProgress`` if one is pending or running.

        Setting an operation clears the previous operation's state, as in Argo CD (§1.15).
        """
        values = {"op_id": op_id, "request": dump(dict(request)), "state": None, "phase": "Pending",
                  "updated_at": db.micros(now), "lease_owner": None, "lease_until": None}
        with db.write_connection(self._engine) as conn, conn.begin():
            exists = conn.execute(sa.select(_O.c.version).where(_where(_O, namespace, name))).first()
            if exists is None:
                try:
                    with conn.begin_nested():
                        conn.execute(_O.insert().values(namespace=namespace, name=name, version=1, **values))
                    return
                except sa.exc.IntegrityError:
                    pass  # a concurrent start inserted first: fall through to the conditional update
            claimed = conn.execute(
                _O.update()
                .where(_where(_O, namespace, name), _O.c.request.is_(None))
                .values(version=_O.c.version + 1, **values)
            ).rowcount
        if not claimed:
            raise OperationInProgress(
                f"application {namespace}/{name}: another operation is already in progress"
            )

    def claim(self, namespace: str, name: str, *, owner: str, now: datetime, seconds: float) -> bool:
        """Take (or renew) the right to tick the app's operation for ``seconds``; False if another owner
        holds an unexpired lease (or there is no operation in progress)."""
        until = db.micros(now + timedelta(seconds=seconds))
        with db.write_connection(self._engine) as conn, conn.begin():
            claimed = conn.execute(
                _O.update()
                .where(
                    _where(_O, namespace, name),
                    _O.c.request.is_not(None),
                    sa.or_(_O.c.lease_owner.is_(None), _O.c.lease_owner == owner,
                           _O.c.lease_until < db.micros(now)),
                )
                .values(lease_owner=owner, lease_until=until)
            ).rowcount
        return bool(claimed)

    def save_state(self, namespace: str, name: str, *, op_id: str, state: Mapping[str, Any], phase: str,
                   completed: bool, now: datetime, expected_version: int | None = None) -> None:
        """Persist a tick's result; on completion the request is cleared (the state stays as the last one).

        ``StaleOperation`` when the app's current operation is not ``op_id`` (or already completed), or was
        saved by someone else since ``expected_version`` was read.
        """
        with db.write_connection(self._engine) as conn, conn.begin():
            _save_state(conn, namespace, name, op_id=op_id, state=state, phase=phase, completed=completed, now=now,
                        expected_version=expected_version)

    def complete(self, namespace: str, name: str, *, op_id: str, state: Mapping[str, Any], phase: str,
                 now: datetime, expected_version: int | None = None, history: NewHistory | None = None,
                 autosync: AutoSyncRecord | None = None) -> None:
        """Persist an operation's last tick together with what its completion records, in one transaction:
        the final state (as :meth:`save_state` with ``completed``), a history entry (``history``, as
        :meth:`append_history`) and the auto-sync bookkeeping (``autosync``, as :meth:`put_autosync`; None
        leaves it). All or nothing; ``StaleOperation`` writes nothing."""
        with db.write_connection(self._engine) as conn, conn.begin():
            _save_state(conn, namespace, name, op_id=op_id, state=state, phase=phase, completed=True, now=now,
                        expected_version=expected_version)
            if history is not None:
                _append_history(conn, namespace, name, history)
            if autosync is not None:
                _put_autosync(conn, namespace, name, autosync)

    def update_request(self, namespace: str, name: str, *, op_id: str, request: Mapping[str, Any],
                       now: datetime) -> None:
        """Rewrite a running operation's request (e.g. a terminate flag); ``StaleOperation`` if not current."""
        with db.write_connection(self._engine) as conn, conn.begin():
            saved = conn.execute(
                _O.update()
                .where(_where(_O, namespace, name), _O.c.op_id == op_id, _O.c.request.is_not(None))
                .values(request=dump(dict(request)), version=_O.c.version + 1, updated_at=db.micros(now))
            ).rowcount
        if not saved:
            raise StaleOperation(f"application {namespace}/{name}: operation {op_id} is no longer current")

    # --- history -----------------------------------------------------------------------------------------

    def history(self, namespace: str, name: str) -> list[HistoryEntry]:
        """Oldest first, as Argo CD lists ``status.history``."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_H).where(_where(_H, namespace, name)).order_by(_H.c.id)).all()
        return [_history(r) for r in rows]

    def history_entry(self, namespace: str, name: str, entry_id: int) -> HistoryEntry:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_H).where(_where(_H, namespace, name), _H.c.id == entry_id)).first()
        if row is None:
            raise AppNotFound(f"application {namespace}/{name} has no history entry with id {entry_id}")
        return _history(row)

    def append_history(self, namespace: str, name: str, *, revisions: tuple[str, ...],
                       sources: list[dict[str, Any]], deploy_started_at: datetime, deployed_at: datetime,
                       initiated_by: Mapping[str, Any], limit: int) -> HistoryEntry | None:
        """Append an entry (id = last + 1, first 0) and keep the newest ``limit``; None when ``limit`` is 0."""
        entry = NewHistory(revisions=revisions, sources=sources, deploy_started_at=deploy_started_at,
                           deployed_at=deployed_at, initiated_by=initiated_by, limit=limit)
        with db.write_connection(self._engine) as conn, conn.begin():
            entry_id = _append_history(conn, namespace, name, entry)
        if limit <= 0:
            return None
        return self.history_entry(namespace, name, entry_id)

    # --- auto-sync bookkeeping ---------------------------------------------------------------------------

    def autosync(self, namespace: str, name: str) -> AutoSyncRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_AS).where(_where(_AS, namespace, name))).first()
        if row is None:
            return None
        return AutoSyncRecord(
            revisions=tuple(json.loads(row.revisions)),
            spec_hash=row.spec_hash,
            attempted_at=db.from_micros(row.attempted_at),
            phase=row.phase,
            message=row.message,
            self_heal_attempts=int(row.self_heal_attempts),
            last_finished_at=_opt(row.last_finished_at),
        )

    def put_autosync(self, namespace: str, name: str, record: AutoSyncRecord | None) -> None:
        """Replace the bookkeeping (None forgets it, so the next comparison may try again)."""
        with db.write_connection(self._engine) as conn, conn.begin():
            if record is None:
                conn.execute(sa.delete(_AS).where(_where(_AS, namespace, name)))
            else:
                _put_autosync(conn, namespace, name, record)

    # --- refresh requests --------------------------------------------------------------------------------

    def request_refresh(self, namespace: str, name: str, *, level: RefreshLevel, now: datetime,
                        requested_by: str = "") -> None:
        """Ask for a refresh (from a webhook, the CLI, the API). Requests merge: hard wins over normal."""
        if level not in _LEVELS:
            raise ValueError(f"refresh level must be 'normal' or 'hard', not {level!r}")
        with db.write_connection(self._engine) as conn, conn.begin():
            row = conn.execute(sa.select(_R.c.level).where(_where(_R, namespace, name))).first()
            merged = level if row is None or _LEVELS[level] >= _LEVELS.get(row.level, 0) else row.level
            values = {"level": merged, "requested_at": db.micros(now), "requested_by": requested_by[:512]}
            if row is None:
                conn.execute(_R.insert().values(namespace=namespace, name=name, **values))
            else:
                conn.execute(_R.update().where(_where(_R, namespace, name)).values(**values))

    def refresh_requests(self) -> dict[tuple[str, str], RefreshRequest]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_R)).all()
        return {
            (r.namespace, r.name): RefreshRequest(level=r.level, requested_at=db.from_micros(r.requested_at),
                                                  requested_by=r.requested_by)
            for r in rows
        }

    def clear_refresh(self, namespace: str, name: str, *, requested_at: datetime) -> bool:
        """Drop a handled request, unless a newer one arrived meanwhile (then it stays, as in Argo CD)."""
        with db.write_connection(self._engine) as conn, conn.begin():
            removed = conn.execute(
                sa.delete(_R).where(_where(_R, namespace, name), _R.c.requested_at == db.micros(requested_at))
            ).rowcount
        return bool(removed)
