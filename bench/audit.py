"""Benchmark: the audit log's group-commit writer against one commit per event, and filtered query latency
at 1,000,000 records. SQLite always; PostgreSQL too when ``SYNCWARDEN_TEST_DATABASE_URL`` or ``--pg`` is set.

Run: ``python bench/audit.py [--events N] [--threads N] [--tasks N,N] [--baseline N] [--paced-rate R]
[--paced-seconds S] [--rows N] [--queries N] [--pg URL] [--only sqlite|postgresql]``.

For each backend, in one run and with the service's default settings (SQLite WAL with synchronous=FULL,
PostgreSQL with its default synchronous_commit=on):

* baseline: one event per transaction, one thread, through :func:`policy.store.audit.append_in`;
* group commit: ``--threads`` threads calling :meth:`policy.store.AuditLog.append` (each call returns
  only after its record is committed), ``--events`` events in all; events/s and the ratio to the baseline;
* the same with ``--tasks`` coroutines (one run per number given) on one event loop awaiting
  :meth:`AuditLog.append_async` (the same commit-before-return guarantee, without a blocked OS thread and
  its GIL hand-offs per event): the service's path, since every API handler is a coroutine;
* events are built before the clock starts in every run (the baseline too): the figure is the writer's;
* paced: single events at ``--paced-rate`` per second for ``--paced-seconds`` (open loop), commit latency
  p50/p99/max: the floor under any answer that waits for its audit record (the admission check's);
* query: ``--rows`` records with a valid chain bulk-inserted (sealed in Python, COPY / executemany), then
  ``--queries`` filtered first pages (limit 100) of mixed shapes: p50, p99 and max in milliseconds.

Targets from issue 5: SQLite >= 40,000 events/s and >= 40x baseline; PostgreSQL >= 30,000 events/s and
>= 10x; filtered query p99 <= 5 ms at 1,000,000 events. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from policy import audit  # noqa: E402
from policy.store import audit as audit_store  # noqa: E402
from policy.store import audit_read, db, tables  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ACTIONS = ["app.sync", "app.get", "app.diff", "project.update", "token.create", "app.rollback", "rbac.check"]


def make_event(i: int, *, start: datetime = T0) -> audit.AuditEvent:
    return audit.AuditEvent(
        time=start + timedelta(milliseconds=i),
        action=ACTIONS[i % len(ACTIONS)],
        result="denied" if i % 10 == 0 else "allowed",
        subject=f"user{i % 500}",
        token_id="",
        client=f"10.0.{i % 256}.{i % 250}",
        project=f"project{i % 200}",
        app=f"app{i % 2000}",
        object=f"apps/Deployment/ns{i % 50}/web{i % 97}",
        request_id=f"req-{i:08d}",
        violations=({"code": "destination.not-permitted", "message": "namespace not allowed"},) if i % 10 == 0 else (),
        details={"revision": f"{i:040x}"[:40], "n": i},
    )


@contextmanager
def backend(name: str, pg_url: str | None) -> Iterator[str]:
    if name == "sqlite":
        with tempfile.TemporaryDirectory(prefix="sw-bench-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    assert pg_url
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(db.normalise_url(pg_url))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def fresh_engine(url: str) -> sa.Engine:
    engine = db.create_engine(url, pool_size=8)
    db.migrate(engine)
    return engine


def reset(engine: sa.Engine) -> None:
    with db.write_connection(engine) as conn, conn.begin():
        conn.execute(sa.text("DELETE FROM audit_records"))
        conn.execute(sa.text("UPDATE audit_head SET seq = 0, hash = :h, time_us = 0"), {"h": audit.GENESIS_HASH})


def bench_baseline(engine: sa.Engine, count: int) -> float:
    events = [make_event(i) for i in range(count)]
    started = time.perf_counter()
    for event in events:
        with db.write_connection(engine) as conn, conn.begin():
            audit_store.append_in(conn, event)
    return count / (time.perf_counter() - started)


def bench_group(engine: sa.Engine, count: int, threads: int) -> tuple[float, float, float]:
    log = audit_store.AuditLog(engine)
    log.append(make_event(0))  # start the writer thread outside the timing
    per_thread = count // threads
    barrier = threading.Barrier(threads + 1)

    def worker(base: int) -> None:
        events = [make_event(base + k) for k in range(per_thread)]
        barrier.wait()
        for event in events:
            log.append(event)

    pool = [threading.Thread(target=worker, args=(t * per_thread + 1,)) for t in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    log.close()
    return per_thread * threads / elapsed, elapsed, log.events_written / max(1, log.batches_written)


def bench_async(engine: sa.Engine, count: int, tasks: int) -> tuple[float, float, float]:
    """``tasks`` coroutines on one event loop, each awaiting :meth:`AuditLog.append_async` in turn."""
    log = audit_store.AuditLog(engine)
    per_task = count // tasks

    batches = [[make_event(t * per_task + 1 + k) for k in range(per_task)] for t in range(tasks)]

    async def worker(events: list[audit.AuditEvent]) -> None:
        for event in events:
            await log.append_async(event)

    async def run() -> float:
        await log.append_async(make_event(0))  # start the writer thread outside the timing
        started = time.perf_counter()
        await asyncio.gather(*(worker(events) for events in batches))
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    log.close()
    return per_task * tasks / elapsed, elapsed, log.events_written / max(1, log.batches_written)


def bench_paced(engine: sa.Engine, rate: float, seconds: float) -> dict[str, float]:
    """Commit latency of single events arriving at ``rate`` per second (open loop, on one event loop): the
    floor under any route that answers only after its audit record is committed."""
    log = audit_store.AuditLog(engine)
    events = [make_event(i) for i in range(int(rate * seconds))]
    latencies: list[float] = []

    async def one(index: int, start: float) -> None:
        due = start + index / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await log.append_async(events[index])
        latencies.append((time.perf_counter() - due) * 1000)

    async def run() -> None:
        await log.append_async(make_event(0))  # start the writer thread outside the timing
        start = time.perf_counter() + 0.05
        await asyncio.gather(*(one(i, start) for i in range(len(events))))

    asyncio.run(run())
    log.close()
    latencies.sort()
    return {"p50": latencies[len(latencies) // 2], "p99": latencies[int(len(latencies) * 0.99)],
            "max": latencies[-1], "n": len(latencies)}


def bulk_load(engine: sa.Engine, rows: int, chunk: int = 50_000) -> float:
    """Seal ``rows`` events in Python and insert them in large transactions (valid chain, head updated).

    The secondary indexes are dropped for the load and built afterwards (a sorted build is far cheaper
    than a million scattered inserts); the schema is the same as the service's when this returns.
    """
    started = time.perf_counter()
    indexes = list(tables.audit_records.indexes)
    with db.write_connection(engine) as conn, conn.begin():
        for index in indexes:
            index.drop(bind=conn)
    prev, seq, last = audit.GENESIS_HASH, 0, 0
    for offset in range(0, rows, chunk):
        records = []
        for i in range(offset, min(rows, offset + chunk)):
            seq += 1
            record = audit.prepare(make_event(i)).seal(seq=seq, prev_hash=prev, min_time_us=last)
            records.append(record)
            prev, last = record.hash, record.time_us
        with db.write_connection(engine) as conn, conn.begin():
            audit_store.insert_records(conn, records)
            audit_store.set_head(conn, records[-1])
    with db.write_connection(engine) as conn, conn.begin():
        for index in indexes:
            index.create(bind=conn)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE audit_records"))
        else:
            conn.exec_driver_sql("ANALYZE")
        conn.commit()
    return time.perf_counter() - started


def query_shapes(rows: int, rng: random.Random) -> list[Callable[[], audit_read.AuditFilter]]:
    def by_project() -> audit_read.AuditFilter:
        return audit_read.AuditFilter(project=f"project{rng.randrange(200)}")

    def by_app_denied() -> audit_read.AuditFilter:
        return audit_read.AuditFilter(app=f"app{rng.randrange(2000)}", result="denied")

    def by_actor_action() -> audit_read.AuditFilter:
        return audit_read.AuditFilter(actor=f"user{rng.randrange(500)}", action=rng.choice(ACTIONS))

    def by_request() -> audit_read.AuditFilter:
        return audit_read.AuditFilter(request_id=f"req-{rng.randrange(rows):08d}")

    def by_time_project() -> audit_read.AuditFilter:
        start = T0 + timedelta(milliseconds=rng.randrange(rows))
        project = f"project{rng.randrange(200)}"
        return audit_read.AuditFilter(since=start, until=start + timedelta(minutes=5), project=project)

    def denied_recent() -> audit_read.AuditFilter:
        return audit_read.AuditFilter(result="denied", since=T0 + timedelta(milliseconds=rows - 60_000))

    return [by_project, by_app_denied, by_actor_action, by_request, by_time_project, denied_recent]


def bench_queries(engine: sa.Engine, rows: int, count: int) -> dict[str, float]:
    rng = random.Random(5)
    shapes = query_shapes(rows, rng)
    for shape in shapes:  # warm the cache and the connection pool
        audit_read.query(engine, shape(), limit=100)
    timings = []
    for i in range(count):
        flt = shapes[i % len(shapes)]()
        newest = i % 2 == 1
        started = time.perf_counter()
        page = audit_read.query(engine, flt, limit=100, newest_first=newest)
        timings.append((time.perf_counter() - started) * 1000)
        if page.next_cursor and i % 3 == 0:  # every third query is followed by its second page
            started = time.perf_counter()
            audit_read.query(engine, flt, limit=100, newest_first=newest, cursor=page.next_cursor)
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "p50": timings[len(timings) // 2],
        "p99": timings[min(len(timings) - 1, int(len(timings) * 0.99))],
        "n": len(timings),
        "max": timings[-1],
    }


def run_backend(name: str, url: str, args: argparse.Namespace) -> None:
    engine = fresh_engine(url)
    try:
        base = bench_baseline(engine, args.baseline)
        reset(engine)
        rate, elapsed, per_batch = bench_group(engine, args.events, args.threads)
        result = audit_read.verify(engine, keys=[])
        target, ratio_target = (40_000, 40) if name == "sqlite" else (30_000, 10)
        print(f"[{name}] baseline, one commit per event : {base:10,.0f} events/s ({args.baseline} events)")
        print(
            f"[{name}] group commit, {args.threads} threads   : {rate:10,.0f} events/s ({args.events} events in "
            f"{elapsed:.2f}s, {per_batch:.0f} events per commit; chain verifies: {result.ok}; {rate / base:.1f}x)"
        )
        for tasks in args.tasks:
            reset(engine)
            a_rate, a_elapsed, a_per_batch = bench_async(engine, args.events, tasks)
            a_result = audit_read.verify(engine, keys=[])
            print(
                f"[{name}] group commit, {tasks} asyncio tasks: {a_rate:10,.0f} events/s ({args.events} events in "
                f"{a_elapsed:.2f}s, {a_per_batch:.0f} events per commit; chain verifies: {a_result.ok}; "
                f"{a_rate / base:.1f}x)"
            )
        print(f"[{name}] targets: >= {target:,} events/s and >= {ratio_target}x the baseline")
        if args.paced_rate:
            paced = bench_paced(engine, args.paced_rate, args.paced_seconds)
            print(
                f"[{name}] commit latency paced at {args.paced_rate:,.0f} events/s: p50 {paced['p50']:.1f} ms, "
                f"p99 {paced['p99']:.1f} ms, max {paced['max']:.1f} ms ({paced['n']:.0f} events; what an answer "
                f"that waits for its record pays)"
            )
        if args.rows:
            reset(engine)
            load = bulk_load(engine, args.rows)
            print(f"[{name}] bulk load of {args.rows:,} chained records: {load:.1f}s ({args.rows / load:,.0f} rows/s)")
            stats = bench_queries(engine, args.rows, args.queries)
            print(
                f"[{name}] filtered query, first page of 100 at {args.rows:,} rows: p50 {stats['p50']:.2f} ms, "
                f"p99 {stats['p99']:.2f} ms, max {stats['max']:.2f} ms ({stats['n']:.0f} queries; target p99 <= 5 ms)"
            )
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=256)
    parser.add_argument("--tasks", type=lambda text: [int(n) for n in text.split(",")], default=[256, 1024],
                        help="comma-separated numbers of concurrent coroutines, one run each (default 256,1024)")
    parser.add_argument("--baseline", type=int, default=1_000)
    parser.add_argument("--paced-rate", type=float, default=1_000.0, help="events/s of the latency run (0: skip)")
    parser.add_argument("--paced-seconds", type=float, default=5.0)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=600)
    parser.add_argument("--pg", default=os.environ.get("SYNCWARDEN_TEST_DATABASE_URL"))
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for name in ("sqlite", "postgresql"):
        if args.only and args.only != name:
            continue
        if name == "postgresql" and not args.pg:
            print("[postgresql] skipped: set SYNCWARDEN_TEST_DATABASE_URL or --pg")
            continue
        with backend(name, args.pg) as url:
            run_backend(name, url, args)


if __name__ == "__main__":
    main()
