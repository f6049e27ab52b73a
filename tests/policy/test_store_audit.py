"""policy.store audit chain on SQLite and PostgreSQL: group commit, tamper detection, query, export, retention.

Covered: an append returns only after commit and the chain verifies; 40 threads appending concurrently get
a gap-free sequence (REL-11) and each its own record; two writers (replicas) with their own engines extend
one chain; an unwritable log raises AuditUnavailable; verify names the first bad record after an edit, a
deletion, a swap and a truncation (by the head row, and by an exported checkpoint when the head is rewritten
too); query filters, keyset pages, time ranges and newest-first; JSON lines and CSV export; retention keeps
the rest verifiable and a tampered anchor is caught; migrations are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from policy import audit, audit_verify
from policy import tokens as token_crypto
from policy.store import Store, audit_read, db, open_store
from policy.store import audit as audit_store

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
KEY = b"a" * 32
RING = token_crypto.KeyRing(token_crypto.SigningKey("kid", KEY))
CTX = audit.AuditContext(subject="admin", client="cli")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url, keyring=RING)
    try:
        yield opened
    finally:
        opened.close()


def event(i: int) -> audit.AuditEvent:
    ctx = audit.AuditContext(subject=f"user{i % 2}", client="10.0.0.9", request_id=f"req-{i}")
    return audit.AuditEvent.create(
        ctx=ctx,
        time=T0 + timedelta(seconds=i),
        action="app.sync",
        result="allowed" if i % 4 else "denied",
        project=f"p{i % 3}",
        app=f"app{i % 5}",
        details={"i": i},
    )


def fill(store: Store, n: int) -> list[audit.AuditRecord]:
    return [store.audit.append(event(i)) for i in range(n)]


def verify(store: Store, points: list[audit_verify.Checkpoint] | None = None) -> audit_verify.VerifyResult:
    return audit_read.verify(store.engine, keys=[KEY], checkpoints=points or [])


def sql(store: Store, text: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(text), params)


def test_append_commits_and_verifies(store: Store) -> None:
    records = fill(store, 5)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == audit.GENESIS_HASH
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_records")).scalar() == 5
    result = verify(store)
    assert result.ok and result.checked == 5


def test_concurrent_appends_are_gap_free(store: Store) -> None:
    results: dict[int, audit.AuditRecord] = {}
    lock = threading.Lock()

    def worker(base: int) -> None:
        for k in range(25):
            i = base * 100 + k
            record = store.audit.append(event(i))
            with lock:
                results[i] = record

    threads = [threading.Thread(target=worker, args=(b,)) for b in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.seq for r in results.values()) == list(range(1, 1001))
    assert all(json.loads(r.details_json) == {"i": i} for i, r in results.items())
    assert verify(store).ok
    assert store.audit.events_written == 1000
    assert store.audit.batches_written < 1000  # concurrent callers shared transactions


def test_two_replicas_extend_one_chain(store: Store, database_url: str) -> None:
    other = open_store(database_url, keyring=RING, migrate=False)
    try:
        threads = [
            threading.Thread(target=lambda s=s: [s.audit.append(event(i)) for i in range(50)])
            for s in (store, other, store, other)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    result = verify(store)
    assert result.ok and result.last_seq == 200


def test_unwritable_log_raises_audit_unavailable(store: Store) -> None:
    fill(store, 1)
    sql(store, "DROP TABLE audit_records")
    with pytest.raises(audit.AuditUnavailable, match="cannot be written"):
        store.audit.append(event(9))


def test_append_times_out_when_the_database_is_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    engine = db.create_engine(url)
    db.migrate(engine)
    log = audit_store.AuditLog(engine, append_timeout=0.3)
    blocker = db.write_connection(engine)
    blocker.begin()  # BEGIN IMMEDIATE: holds the write lock
    try:
        with pytest.raises(audit.AuditUnavailable, match="not committed within"):
            log.append(event(1))
    finally:
        blocker.rollback()
        blocker.close()
    log.close()
    engine.dispose()


def test_postgres_urls_use_psycopg() -> None:
    assert db.normalise_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert db.normalise_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert db.normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_closed_log_refuses(store: Store) -> None:
    store.audit.close()
    with pytest.raises(audit.AuditUnavailable, match="closed"):
        store.audit.append(event(1))


def test_edit_is_named(store: Store) -> None:
    fill(store, 6)
    sql(store, "UPDATE audit_records SET result = 'tampered' WHERE seq = 4")
    result = verify(store)
    assert not result.ok and result.bad_seq == 4 and "modified" in result.reason


def test_deletion_is_named(store: Store) -> None:
    fill(store, 6)
    sql(store, "DELETE FROM audit_records WHERE seq = 3")
    result = verify(store)
    assert not result.ok and result.bad_seq == 3 and "missing" in result.reason


def test_swap_is_named(store: Store) -> None:
    fill(store, 6)
    sql(store, "UPDATE audit_records SET seq = -1 WHERE seq = 2")
    sql(store, "UPDATE audit_records SET seq = 2 WHERE seq = 3")
    sql(store, "UPDATE audit_records SET seq = 3 WHERE seq = -1")
    result = verify(store)
    assert not result.ok and result.bad_seq == 2


def test_truncation_is_named_by_the_head(store: Store) -> None:
    fill(store, 6)
    sql(store, "DELETE FROM audit_records WHERE seq > 4")
    result = verify(store)
    assert not result.ok and result.bad_seq == 5 and "truncated" in result.reason


def test_truncation_with_rewritten_head_needs_the_checkpoint(store: Store) -> None:
    records = fill(store, 6)
    point = store.audit.checkpoint(key=KEY)
    assert (point.seq, point.hash) == (6, records[-1].hash)
    sql(store, "DELETE FROM audit_records WHERE seq > 4")
    sql(store, "UPDATE audit_head SET seq = 4, hash = :h", h=records[3].hash)
    assert verify(store).ok  # invisible without the exported checkpoint
    checked = audit_verify.Checkpoint.from_dict(point.to_dict(), keys=[KEY])
    result = verify(store, [checked])
    assert not result.ok and result.bad_seq == 5 and "truncated" in result.reason


def test_query_filters_and_pages(store: Store) -> None:
    fill(store, 60)
    page = audit_read.query(store.engine, audit_read.AuditFilter(project="p1"), limit=7)
    assert len(page.records) == 7 and all(r.project == "p1" for r in page.records)
    seen = [r.seq for r in page.records]
    while page.next_cursor:
        page = audit_read.query(store.engine, audit_read.AuditFilter(project="p1"), cursor=page.next_cursor, limit=7)
        seen += [r.seq for r in page.records]
    assert seen == [i + 1 for i in range(60) if i % 3 == 1]
    both = audit_read.query(store.engine, audit_read.AuditFilter(app="app0", result="denied"), limit=100)
    assert [r.seq - 1 for r in both.records] == [i for i in range(60) if i % 5 == 0 and i % 4 == 0]
    actor = audit_read.query(store.engine, audit_read.AuditFilter(actor="user1", action="app.sync"), limit=100)
    assert len(actor.records) == 30
    assert [r.seq for r in audit_read.query(store.engine, audit_read.AuditFilter(request_id="req-17")).records] == [18]
    assert audit_read.query(store.engine, audit_read.AuditFilter(action="nope")).records == []


def test_query_time_range_and_newest_first(store: Store) -> None:
    fill(store, 30)
    flt = audit_read.AuditFilter(since=T0 + timedelta(seconds=10), until=T0 + timedelta(seconds=20))
    assert [r.seq for r in audit_read.query(store.engine, flt).records] == list(range(11, 21))
    newest = audit_read.query(store.engine, flt, limit=4, newest_first=True)
    assert [r.seq for r in newest.records] == [20, 19, 18, 17]
    after = audit_read.query(store.engine, flt, limit=4, newest_first=True, cursor=newest.next_cursor)
    assert [r.seq for r in after.records] == [16, 15, 14, 13]
    late = audit_read.AuditFilter(since=T0 + timedelta(days=1))
    assert audit_read.query(store.engine, late).records == []
    with pytest.raises(ValueError, match="invalid cursor"):
        audit_read.query(store.engine, flt, cursor="abc")
    with pytest.raises(ValueError, match="limit"):
        audit_read.query(store.engine, flt, limit=0)


def test_export_jsonl_and_csv(store: Store) -> None:
    fill(store, 4)
    lines = list(audit_read.export_jsonl(audit_read.iter_records(store.engine)))
    rows = [json.loads(line) for line in lines]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["actor"]["subject"] == "user0" and rows[0]["details"] == {"i": 0}
    text = "".join(audit_read.export_csv(audit_read.iter_records(store.engine, audit_read.AuditFilter(project="p0"))))
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["seq"] for r in table] == ["1", "4"]
    assert table[0]["hash"] == rows[0]["hash"]


def test_retention_keeps_the_rest_verifiable(store: Store) -> None:
    fill(store, 10)
    deleted = store.audit.retain(before=T0 + timedelta(seconds=4), key=KEY, ctx=CTX, now=T0)
    assert deleted == 4
    result = verify(store)
    assert result.ok and result.checked == 7 and result.last_seq == 11  # 6 kept + the retention record
    store.audit.append(event(12))
    assert verify(store).ok
    sql(store, "DELETE FROM audit_records WHERE seq = 5")
    bad = verify(store)
    assert not bad.ok and bad.bad_seq == 5


def test_forged_anchor_is_caught(store: Store) -> None:
    fill(store, 10)
    store.audit.retain(before=T0 + timedelta(seconds=4), key=KEY, ctx=CTX, now=T0)
    sql(store, "DELETE FROM audit_records WHERE seq < 7")
    sql(store, "UPDATE audit_anchor SET seq = 7, prev_hash = (SELECT prev_hash FROM audit_records WHERE seq = 7)")
    result = verify(store)
    assert not result.ok and "anchor" in result.reason


def test_retention_of_everything_keeps_the_newest(store: Store) -> None:
    fill(store, 3)
    assert store.audit.retain(before=T0 + timedelta(days=1), key=KEY, ctx=CTX, now=T0) == 2
    result = verify(store)
    assert result.ok and result.checked == 2  # the newest record and the retention record


def test_migrations_are_idempotent_and_match_the_tables(store: Store) -> None:
    import importlib
    import pkgutil

    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    import policy.store
    from policy.store import tables

    for module in pkgutil.iter_modules(policy.store.__path__):  # every store module registers its tables
        importlib.import_module(f"policy.store.{module.name}")
    db.migrate(store.engine)
    config = Config()
    config.set_main_option("script_location", str(Path(policy.store.__file__).parent / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": db.VERSION_TABLE})
        assert compare_metadata(ctx, tables.metadata) == []
        assert ctx.get_current_revision() == head


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path}/x/y.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.BUSY_TIMEOUT_MS
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
    with pytest.raises(ValueError, match="unsupported database URL"):
        db.create_engine("mysql://x/y")


def test_async_and_thread_appends_share_one_gap_free_chain(store: Store) -> None:
    results: dict[int, audit.AuditRecord] = {}

    async def task(base: int) -> None:
        for k in range(10):
            results[base + k] = await store.audit.append_async(event(base + k))

    async def main() -> None:
        await asyncio.gather(*(task(b * 100) for b in range(30)))

    threads = [
        threading.Thread(target=lambda b=b: results.update({10_000 + b: store.audit.append(event(10_000 + b))}))
        for b in range(20)
    ]
    for t in threads:
        t.start()
    asyncio.run(main())
    for t in threads:
        t.join()
    assert sorted(r.seq for r in results.values()) == list(range(1, 321))
    assert all(json.loads(r.details_json) == {"i": i} for i, r in results.items())
    assert verify(store).ok
    assert store.audit.batches_written < 320


def test_async_append_reports_an_unwritable_log(store: Store) -> None:
    fill(store, 1)
    sql(store, "DROP TABLE audit_records")
    with pytest.raises(audit.AuditUnavailable, match="cannot be written"):
        asyncio.run(store.audit.append_async(event(9)))


@contextlib.contextmanager
def locked_log(tmp_path: Path) -> Iterator[tuple[sa.Engine, audit_store.AuditLog]]:
    """An audit log with a 0.3 s append timeout over a SQLite file whose write lock another connection holds
    until the block ends; afterwards the chain must verify."""
    engine = db.create_engine(f"sqlite:///{tmp_path / 'locked.db'}")
    db.migrate(engine)
    log = audit_store.AuditLog(engine, append_timeout=0.3)
    blocker = db.write_connection(engine)
    blocker.begin()
    try:
        yield engine, log
    finally:
        blocker.rollback()
        blocker.close()
    # The writer was waiting for the lock (SQLite's busy handler sleeps up to 100 ms between tries): let the late
    # batch commit before the test appends again with the same short timeout.
    deadline = time.monotonic() + 30
    while log.batches_written == 0 and time.monotonic() < deadline:
        time.sleep(0.01)


def test_async_append_times_out_when_the_database_is_locked(tmp_path: Path) -> None:
    with locked_log(tmp_path) as (engine, log), pytest.raises(audit.AuditUnavailable, match="not committed within"):
        asyncio.run(log.append_async(event(1)))
    assert log.append(event(2)).seq == 2  # the late batch committed once the lock was free; the chain goes on
    log.close()
    assert audit_read.verify(engine, keys=[]).ok
    engine.dispose()


def test_every_waiting_coroutine_of_a_late_batch_times_out_and_a_cancelled_one_does_not_matter(tmp_path: Path) -> None:
    """One timer per batch and event loop: it fails every coroutine of that batch that still waits."""

    async def main(log: audit_store.AuditLog) -> list[BaseException | audit.AuditRecord]:
        tasks = [asyncio.create_task(log.append_async(event(i))) for i in range(6)]
        await asyncio.sleep(0.05)
        tasks[0].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    with locked_log(tmp_path) as (engine, log):
        outcomes = asyncio.run(main(log))
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert all(isinstance(o, audit.AuditUnavailable) and "not committed within" in str(o) for o in outcomes[1:])
    assert log.append(event(9)).seq == 7  # the late batch committed once the lock was free
    log.close()
    assert audit_read.verify(engine, keys=[]).ok
    engine.dispose()


def test_writer_recovers_after_a_failed_batch(store: Store) -> None:
    fill(store, 2)
    sql(store, "ALTER TABLE audit_records RENAME TO audit_records_away")
    with pytest.raises(audit.AuditUnavailable, match="cannot be written"):
        store.audit.append(event(2))
    sql(store, "ALTER TABLE audit_records_away RENAME TO audit_records")
    assert store.audit.append(event(3)).seq == 3  # nothing of the failed batch was kept
    assert verify(store).ok


def test_batches_are_capped_at_max_batch(database_url: str) -> None:
    opened = open_store(database_url, keyring=RING)
    log = audit_store.AuditLog(opened.engine, max_batch=3)
    try:
        threads = [
            threading.Thread(target=lambda i=i: [log.append(event(i * 10 + k)) for k in range(5)]) for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert log.events_written == 40 and log.batches_written >= 14
        assert verify(opened).ok and verify(opened).last_seq == 40
    finally:
        log.close()
        opened.close()
