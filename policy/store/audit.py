"""Appending to the audit chain: the group-commit writer, in-transaction appends, checkpoints, retention.

Who calls: ``api`` (every decision and change, through :meth:`AuditLog.append`, or
:meth:`AuditLog.append_async` from a coroutine), the other policy stores
(:func:`append_in` inside their own write transaction, so a change and its record commit together or not
at all), the CLI and ``bench/audit.py``. Reading (query, export, verify) is in ``audit_read.py``.

Group commit: one writer thread per process. Concurrent :meth:`AuditLog.append` callers serialise their
event in their own thread, join the batch that is filling, and block until the transaction holding that
batch commits; while one batch commits the next one fills, so throughput grows with concurrency without
giving up durability (an event is acknowledged only after its commit). A thread waits on a lock of its own
that the writer releases; a coroutine awaits a future that the writer settles with one call per event
loop and batch. A batch holds at most ``max_batch`` events; the writer's transaction itself (sealing,
the fewest database calls on a connection it owns) is in ``audit_writer.py``. Several processes or replicas
extend one chain: every batch locks the ``audit_head`` row (``SELECT ... FOR UPDATE`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite) and reads the last seq and hash from it. When a batch cannot be written,
every caller in it gets :class:`policy.audit.AuditUnavailable` and must refuse its change.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sqlite3
import threading
from _thread import allocate_lock as _allocate_lock
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from policy import audit, audit_verify
from policy.store import db, tables
from policy.store.audit_writer import BatchWriter, describe, insert_rows

__all__ = ["AuditLog", "append_in", "append_prepared", "insert_records", "read_anchor"]

log = logging.getLogger(__name__)

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
    """Bulk insert already-sealed records (COPY on PostgreSQL, multi-row INSERTs on SQLite) through the
    driver connection under ``conn``'s transaction. No head update."""
    if not records:
        return
    raw: Any = conn.connection.driver_connection
    try:
        insert_rows(raw, records, postgres=conn.dialect.name == "postgresql")
    except (psycopg.Error, sqlite3.Error) as exc:  # raw driver calls bypass SQLAlchemy's exception wrapping
        raise audit.AuditUnavailable(f"the audit log cannot be written: {describe(exc)}") from None


def set_head(conn: sa.Connection, record: audit.AuditRecord) -> None:
    conn.execute(
        tables.audit_head.update()
        .where(tables.audit_head.c.id == 1)
        .values(seq=record.seq, hash=record.hash, time_us=record.time_us)
    )


def append_prepared(conn: sa.Connection, events: Sequence[audit.PreparedEvent]) -> list[audit.AuditRecord]:
    """Seal ``events`` after the current head and insert them, inside the caller's write transaction."""
    seq, prev_hash, last_time = read_head(conn)
    records = audit.seal_all(events, seq=seq, prev_hash=prev_hash, min_time_us=last_time)
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
        raise audit.AuditUnavailable(f"the audit log cannot be written: {describe(exc)}") from None


class _Batch:
    """The events of one transaction and, for each, the lock its caller blocks on until the commit."""

    __slots__ = ("error", "events", "records", "timers", "waiters")

    def __init__(self) -> None:
        self.events: list[audit.PreparedEvent] = []
        #: per event, how its caller learns of the commit (or the failure): a held lock that the writer
        #: releases (a thread), or an ``_AsyncWaiter`` settled on its event loop (a coroutine). A lock per
        #: caller rather than one shared Event: 256 woken callers do not then queue on the Event's lock.
        self.waiters: list[Any] = []
        self.records: list[audit.AuditRecord] = []
        self.error: BaseException | None = None
        #: per event loop with coroutines in this batch, the one timer that fails them if the commit is late
        #: (one timer per batch and loop, not per event: created and cancelled on that loop's thread only)
        self.timers: dict[asyncio.AbstractEventLoop, asyncio.TimerHandle] = {}


class _AsyncWaiter(NamedTuple):
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[audit.AuditRecord]


def _settle(batch: _Batch, loop: asyncio.AbstractEventLoop, waiters: list[tuple[int, _AsyncWaiter]]) -> None:
    """On the waiters' event loop: resolve their futures with their records or the batch's error."""
    timer = batch.timers.pop(loop, None)
    if timer is not None:
        timer.cancel()
    for index, waiter in waiters:
        if waiter.future.done():  # timed out or cancelled meanwhile
            continue
        if batch.error is None:
            waiter.future.set_result(batch.records[index])
        else:
            waiter.future.set_exception(_unavailable(batch.error))


def _expire(batch: _Batch, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
    """On ``loop``: fail its coroutines of ``batch`` that still wait (the commit is late; it may still happen,
    and the records then stay in the chain, but these callers have already been told to refuse)."""
    batch.timers.pop(loop, None)
    for waiter in list(batch.waiters):
        if isinstance(waiter, _AsyncWaiter) and waiter.loop is loop and not waiter.future.done():
            waiter.future.set_exception(audit.AuditUnavailable(f"the audit record was not committed within {timeout}s"))


def _unavailable(error: BaseException) -> audit.AuditUnavailable:
    if isinstance(error, audit.AuditUnavailable):
        return audit.AuditUnavailable(str(error))
    return audit.AuditUnavailable(f"the audit log cannot be written: {describe(error)}")


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
        #: batches that reached ``max_batch`` and wait for the writer, oldest first
        self._full: collections.deque[_Batch] = collections.deque()
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
        waiter = _allocate_lock()
        waiter.acquire()
        batch, index = self._enqueue(prepared, waiter)
        if not waiter.acquire(timeout=self._append_timeout):
            raise audit.AuditUnavailable(f"the audit record was not committed within {self._append_timeout}s")
        if batch.error is not None:
            raise _unavailable(batch.error) from None
        return batch.records[index]

    async def append_async(self, event: audit.AuditEvent) -> audit.AuditRecord:
        """:meth:`append` for a coroutine: awaits the commit without holding a thread.

        The same guarantee (the record is returned only after its transaction committed) and the same
        errors. The writer settles all of one event loop's callers in a batch with one wake-up of that loop.
        """
        return await self.submit(event)

    def submit(self, event: audit.AuditEvent) -> asyncio.Future[audit.AuditRecord]:
        """Join the filling batch now; the returned future settles once that batch commits (or fails).

        For a coroutine that records several events in one request: submitting the earlier ones and awaiting
        the last (a later or the same batch: batches commit in order) costs one commit wait, not one per event.
        The caller must still await every future before it answers (an event is acknowledged only after its
        commit); each raises :class:`policy.audit.AuditUnavailable` like :meth:`append_async`.
        """
        prepared = audit.prepare(event)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[audit.AuditRecord] = loop.create_future()
        batch, _ = self._enqueue(prepared, _AsyncWaiter(loop, future))
        # The batch's result reaches this loop through a callback that runs on this thread after we return,
        # so the timer set here is always there for ``_settle`` to cancel.
        if loop not in batch.timers:
            batch.timers[loop] = loop.call_later(self._append_timeout, _expire, batch, loop, self._append_timeout)
        return future

    def _enqueue(self, prepared: audit.PreparedEvent, waiter: Any) -> tuple[_Batch, int]:
        with self._lock:
            if self._closed:
                raise audit.AuditUnavailable("the audit log is closed")
            batch = self._pending
            index = len(batch.events)
            batch.events.append(prepared)
            batch.waiters.append(waiter)
            if index + 1 >= self._max_batch:  # full: later callers go into the next transaction
                self._full.append(batch)
                self._pending = _Batch()
            if index == 0:
                self._wake.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()
        return batch, index

    def close(self) -> None:
        """Write what is pending, then stop the writer thread."""
        with self._lock:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        writer = BatchWriter(self._engine)
        try:
            while True:
                with self._lock:
                    while not self._pending.events and not self._full and not self._closed:
                        self._wake.wait()
                    if not self._pending.events and not self._full:
                        return
                    batch = self._take()
                try:
                    batch.records = writer.write(batch.events)
                    self.batches_written += 1
                    self.events_written += len(batch.records)
                except audit.AuditUnavailable as exc:
                    log.error("audit batch of %d events not written: %s", len(batch.events), exc)
                    batch.error = exc
                except Exception as exc:
                    log.exception("audit writer failed on a batch of %d events", len(batch.events))
                    batch.error = exc
                finally:
                    _wake_callers(batch)
        finally:
            writer.close()

    def _take(self) -> _Batch:
        """The oldest full batch, else the filling one. Lock held."""
        if self._full:
            return self._full.popleft()
        batch, self._pending = self._pending, _Batch()
        return batch

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

    def resign_anchor(self, *, keys: Iterable[bytes], key: bytes) -> str:
        """After a signing-key rotation: sign the retention anchor with ``key`` when one of ``keys`` (the keys
        of before) signed it, so it still verifies once the old key is gone. Returns ``none`` (no anchor),
        ``resigned``, or ``unverified``: no known key signed it, and it is left alone (never bless a forgery)."""
        known = list(keys)
        with db.write_connection(self._engine) as conn, conn.begin():
            anchor = read_anchor(conn)
            if anchor is None:
                return "none"
            if not anchor.signed_by_any(known):
                return "unverified"
            signed = audit_verify.sign_checkpoint(anchor, key=key)
            conn.execute(tables.audit_anchor.update().where(tables.audit_anchor.c.seq == anchor.seq)
                         .values(signature=signed.signature))
            return "resigned"


def _wake_callers(batch: _Batch) -> None:
    """Release the threads of ``batch`` and hand each event loop its coroutines' results in one call."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[int, _AsyncWaiter]]] = {}
    for index, waiter in enumerate(batch.waiters):
        if isinstance(waiter, _AsyncWaiter):
            by_loop.setdefault(waiter.loop, []).append((index, waiter))
        else:
            waiter.release()
    for loop, waiters in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, batch, loop, waiters)
        except RuntimeError:  # the loop was closed: nobody is waiting any more
            log.warning("audit: %d results for a closed event loop dropped", len(waiters))


def read_anchor(conn: sa.Connection) -> audit_verify.Checkpoint | None:
    row = conn.execute(sa.select(tables.audit_anchor)).first()
    if row is None:
        return None
    return audit_verify.Checkpoint(
        seq=int(row.seq), hash=str(row.prev_hash), kind="anchor", signature=str(row.signature)
    )


def records_from_rows(rows: Iterable[Any]) -> list[audit.AuditRecord]:
    return [audit.AuditRecord._make(row) for row in rows]
