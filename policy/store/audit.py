"""Appending to the audit chain: the group-commit writer, in-transaction appends, checkpoints, retention.

Who calls: ``api`` (every decision and change, through :meth:`AuditLog.append`), the other policy stores
(:func:`append_in` inside their own write transaction, so a change and its record commit together or not
at all), the CLI and ``bench/audit.py``. Reading (query, export, verify) is in ``audit_read.py``.

Group commit: one writer thread per process. Concurrent :meth:`AuditLog.append` callers serialise their
event in their own thread, join the batch that is filling, and block until the transaction holding that
batch commits; while one batch commits the next one fills, so throughput grows with concurrency without
giving up durability (an event is acknowledged only after its commit). Several processes or replicas
extend one chain: every batch locks the ``audit_head`` row (``SELECT ... FOR UPDATE`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite) and reads the last seq and hash from it. When a batch cannot be written,
every caller in it gets :class:`policy.audit.AuditUnavailable` and must refuse its change.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from policy import audit, audit_verify
from policy.store import db, tables

__all__ = ["AuditLog", "append_in", "append_prepared", "insert_records", "read_anchor"]

log = logging.getLogger(__name__)

_COLUMNS = [c.name for c in tables.audit_records.columns]
# Built from the table definition only (no user input), hence the string formatting.
_COPY_SQL = f"COPY audit_records ({', '.join(_COLUMNS)}) FROM STDIN"
_ROW_MARKS = "(" + ", ".join("?" for _ in _COLUMNS) + ")"
#: rows per INSERT statement on SQLite: 15 columns x 64 rows stays below the 999 host parameters that
#: SQLite builds before 3.32 allow
_ROWS_PER_INSERT = 64


@functools.lru_cache(maxsize=64)
def _multi_insert_sql(rows: int) -> str:
    return f"INSERT INTO audit_records ({', '.join(_COLUMNS)}) VALUES " + ", ".join([_ROW_MARKS] * rows)  # noqa: S608


#: how long an append waits for its batch's commit before reporting the log unavailable, in seconds
DEFAULT_APPEND_TIMEOUT = 60.0


def read_head(conn: sa.Connection, *, lock: bool = True) -> tuple[int, str, int]:
    """(seq, hash, time_us) of the newest record; with ``lock``, held until the transaction ends."""
    query = sa.select(tables.audit_head.c.seq, tables.audit_head.c.hash, tables.audit_head.c.time_us).where(
        tables.audit_head.c.id == 1
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).one()
    return int(row.seq), str(row.hash), int(row.time_us)


def insert_records(conn: sa.Connection, records: Sequence[audit.AuditRecord]) -> None:
    """Bulk insert already-sealed records (COPY on PostgreSQL, executemany on SQLite). No head update."""
    if not records:
        return
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.driver_connection
        try:
            with raw.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
                for record in records:
                    copy.write_row(record)
        except psycopg.Error as exc:  # raw COPY bypasses SQLAlchemy's exception wrapping
            raise audit.AuditUnavailable(f"the audit log cannot be written: {type(exc).__name__}") from None
        return
    # One multi-row INSERT per chunk instead of executemany: the driver then releases and re-takes the GIL
    # once per chunk rather than once per row, which is what lets the writer keep up under many threads.
    for start in range(0, len(records), _ROWS_PER_INSERT):
        chunk = records[start : start + _ROWS_PER_INSERT]
        params = [value for record in chunk for value in record]
        conn.exec_driver_sql(_multi_insert_sql(len(chunk)), tuple(params))


def set_head(conn: sa.Connection, record: audit.AuditRecord) -> None:
    conn.execute(
        tables.audit_head.update()
        .where(tables.audit_head.c.id == 1)
        .values(seq=record.seq, hash=record.hash, time_us=record.time_us)
    )


def append_prepared(conn: sa.Connection, events: Sequence[audit.PreparedEvent]) -> list[audit.AuditRecord]:
    """Seal ``events`` after the current head and insert them, inside the caller's write transaction."""
    seq, prev_hash, last_time = read_head(conn)
    records: list[audit.AuditRecord] = []
    for event in events:
        seq += 1
        record = event.seal(seq=seq, prev_hash=prev_hash, min_time_us=last_time)
        records.append(record)
        prev_hash, last_time = record.hash, record.time_us
    insert_records(conn, records)
    if records:
        set_head(conn, records[-1])
    return records


def append_in(conn: sa.Connection, event: audit.AuditEvent) -> audit.AuditRecord:
    """Append one event inside the caller's write transaction (commits or rolls back with it).

    Raises :class:`policy.audit.AuditUnavailable` when the record cannot be written; the caller's
    transaction then rolls back, so the change it describes does not happen.
    """
    prepared = audit.prepare(event)
    try:
        return append_prepared(conn, [prepared])[0]
    except audit.AuditUnavailable:
        raise
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise audit.AuditUnavailable(f"the audit log cannot be written: {_describe(exc)}") from None


class _Batch:
    __slots__ = ("done", "error", "events", "records")

    def __init__(self) -> None:
        self.events: list[audit.PreparedEvent] = []
        self.records: list[audit.AuditRecord] = []
        self.error: BaseException | None = None
        self.done = threading.Event()


class AuditLog:
    """The process's audit writer. Thread-safe; the writer thread starts on the first append."""

    def __init__(
        self, engine: Engine, *, append_timeout: float = DEFAULT_APPEND_TIMEOUT, max_batch: int = 20_000
    ) -> None:
        self._engine = engine
        self._append_timeout = append_timeout
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending = _Batch()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: committed transactions and the events in them (events / batches is the group-commit factor)
        self.batches_written = 0
        self.events_written = 0

    def append(self, event: audit.AuditEvent) -> audit.AuditRecord:
        """Record ``event`` and return it sealed, after its transaction has committed.

        Raises :class:`policy.audit.AuditUnavailable` when the record could not be written (the caller
        must then refuse the change), ``ValueError``/``TypeError`` for a malformed event.
        """
        prepared = audit.prepare(event)
        with self._lock:
            if self._closed:
                raise audit.AuditUnavailable("the audit log is closed")
            batch = self._pending
            index = len(batch.events)
            batch.events.append(prepared)
            if index == 0:
                self._wake.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()
        if not batch.done.wait(self._append_timeout):
            raise audit.AuditUnavailable(f"the audit record was not committed within {self._append_timeout}s")
        if isinstance(batch.error, audit.AuditUnavailable):
            raise audit.AuditUnavailable(str(batch.error)) from None
        if batch.error is not None:
            raise audit.AuditUnavailable(f"the audit log cannot be written: {_describe(batch.error)}") from None
        return batch.records[index]

    def close(self) -> None:
        """Write what is pending, then stop the writer thread."""
        with self._lock:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending.events and not self._closed:
                    self._wake.wait()
                if not self._pending.events:
                    return
                batch, self._pending = self._pending, _Batch()
            try:
                batch.records = self._write(batch.events)
                self.batches_written += 1
                self.events_written += len(batch.records)
            except (sa.exc.SQLAlchemyError, OSError, audit.AuditUnavailable) as exc:
                log.error("audit batch of %d events not written: %s", len(batch.events), _describe(exc))
                batch.error = exc
            except Exception as exc:
                log.exception("audit writer failed on a batch of %d events", len(batch.events))
                batch.error = exc
            finally:
                batch.done.set()

    def _write(self, events: list[audit.PreparedEvent]) -> list[audit.AuditRecord]:
        with db.write_connection(self._engine) as conn, conn.begin():
            records: list[audit.AuditRecord] = []
            for start in range(0, len(events), self._max_batch):
                records.extend(append_prepared(conn, events[start : start + self._max_batch]))
            return records

    # --- checkpoints and retention -------------------------------------------------------------------

    def checkpoint(self, *, key: bytes) -> audit_verify.Checkpoint:
        """A signed (seq, hash) of the newest record, to be kept outside the database."""
        with self._engine.connect() as conn:
            seq, digest, _ = read_head(conn, lock=False)
        if seq == 0:
            raise audit.AuditUnavailable("the audit log is empty: nothing to checkpoint")
        return audit_verify.sign_checkpoint(audit_verify.Checkpoint(seq=seq, hash=digest), key=key)

    def retain(self, *, before: datetime, key: bytes, ctx: audit.AuditContext, now: datetime) -> int:
        """Delete records older than ``before``; store a signed anchor so the rest still verifies.

        Returns the number of records deleted. The newest record is never deleted by this. The retention
        itself is recorded (action ``audit.retain``) in the same transaction.
        """
        cut_us = audit.micros(before)
        recs = tables.audit_records
        with db.write_connection(self._engine) as conn, conn.begin():
            head_seq, _, _ = read_head(conn)
            first_kept = conn.execute(
                sa.select(recs.c.seq, recs.c.prev_hash)
                .where(recs.c.time_us >= cut_us)
                .order_by(recs.c.time_us, recs.c.seq)
                .limit(1)
            ).first()
            if first_kept is None:  # everything is older: keep the newest record
                first_kept = conn.execute(sa.select(recs.c.seq, recs.c.prev_hash).where(recs.c.seq == head_seq)).first()
            if first_kept is None:
                return 0
            deleted = conn.execute(sa.delete(recs).where(recs.c.seq < first_kept.seq)).rowcount
            if deleted:
                anchor = audit_verify.sign_checkpoint(
                    audit_verify.Checkpoint(seq=int(first_kept.seq), hash=str(first_kept.prev_hash), kind="anchor"),
                    key=key,
                )
                conn.execute(sa.delete(tables.audit_anchor))
                conn.execute(
                    tables.audit_anchor.insert().values(
                        id=1, seq=anchor.seq, prev_hash=anchor.hash, signature=anchor.signature
                    )
                )
            details = {"before": before.isoformat(), "deleted": int(deleted), "first_kept_seq": int(first_kept.seq)}
            event = audit.AuditEvent.create(ctx=ctx, time=now, action="audit.retain", result="ok", details=details)
            append_in(conn, event)
            return int(deleted)


def read_anchor(conn: sa.Connection) -> audit_verify.Checkpoint | None:
    row = conn.execute(sa.select(tables.audit_anchor)).first()
    if row is None:
        return None
    return audit_verify.Checkpoint(
        seq=int(row.seq), hash=str(row.prev_hash), kind="anchor", signature=str(row.signature)
    )


def _describe(exc: BaseException) -> str:
    """A short reason without SQL text or parameters (which could hold record content)."""
    if isinstance(exc, audit.AuditUnavailable):
        return str(exc)
    orig = getattr(exc, "orig", None)
    if orig is None:
        return type(exc).__name__
    first_line = (str(orig).splitlines() or [""])[0][:200]
    return f"{type(orig).__name__}: {first_line}"


def records_from_rows(rows: Iterable[Any]) -> list[audit.AuditRecord]:
    return [audit.AuditRecord._make(row) for row in rows]
