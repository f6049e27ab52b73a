"""The sync store's operations, history, auto-sync bookkeeping and refresh requests, on SQLite and PostgreSQL.

Covers: one operation per app (a second start is refused with Argo CD's wording, also when many threads race);
state saved per tick and the request cleared on completion; a stale operation cannot save; history ids are
last + 1 from 0 and only the newest revisionHistoryLimit entries are kept (limit 0 keeps none, so ids restart);
the auto-sync record round trip; refresh requests merge (hard wins) and a newer request survives clearing;
completion writes state, history and bookkeeping in one transaction (a stale one writes none of them); the
managedNamespaceMetadata an operation applied outlives it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sync.store import (
    AppNotFound,
    AutoSyncRecord,
    OperationInProgress,
    StaleOperation,
    SyncStore,
    open_sync_store,
)
from sync.store.operations import NewHistory

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NS, NAME = "syncwarden", "web"


@pytest.fixture
def store(database_url: str) -> Iterator[SyncStore]:
    s = open_sync_store(database_url)
    yield s
    s.close()


def test_one_operation_at_a_time(store: SyncStore) -> None:
    store.operations.start(NS, NAME, op_id="op1", request={"trigger": "manual"}, now=T0)
    with pytest.raises(OperationInProgress, match="another operation is already in progress"):
        store.operations.start(NS, NAME, op_id="op2", request={"trigger": "auto"}, now=T0)
    assert store.operations.in_progress() == [(NS, NAME)]
    store.operations.save_state(
        NS, NAME, op_id="op1", state={"phase": "Running"}, phase="Running", completed=False, now=T0
    )
    record = store.operations.operation(NS, NAME)
    assert record is not None and record.in_progress and record.state == {"phase": "Running"}
    store.operations.save_state(
        NS, NAME, op_id="op1", state={"phase": "Succeeded"}, phase="Succeeded", completed=True, now=T0
    )
    record = store.operations.operation(NS, NAME)
    assert record is not None and not record.in_progress and record.state == {"phase": "Succeeded"}
    assert store.operations.in_progress() == []
    # a completed operation cannot be written again, and a new one clears the old state
    with pytest.raises(StaleOperation):
        store.operations.save_state(NS, NAME, op_id="op1", state={}, phase="Failed", completed=True, now=T0)
    store.operations.start(NS, NAME, op_id="op2", request={"trigger": "auto"}, now=T0)
    record = store.operations.operation(NS, NAME)
    assert record is not None and record.op_id == "op2" and record.state is None
    with pytest.raises(StaleOperation):
        store.operations.save_state(NS, NAME, op_id="op1", state={}, phase="Running", completed=False, now=T0)


def test_racing_starts_have_exactly_one_winner(store: SyncStore) -> None:
    winners: list[str] = []
    refused: list[str] = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            store.operations.start(NS, "race", op_id=f"op{i}", request={"n": i}, now=T0)
            winners.append(f"op{i}")
        except OperationInProgress:
            refused.append(f"op{i}")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(refused) == 7
    record = store.operations.operation(NS, "race")
    assert record is not None and record.op_id == winners[0]


def _append(store: SyncStore, rev: str, *, limit: int, name: str = NAME) -> int | None:
    entry = store.operations.append_history(
        NS,
        name,
        revisions=(rev,),
        sources=[{"repoURL": "r", "path": "p", "targetRevision": rev}],
        deploy_started_at=T0,
        deployed_at=T0 + timedelta(seconds=3),
        initiated_by={"username": "alice"},
        limit=limit,
    )
    return None if entry is None else entry.id


def test_history_ids_and_limit(store: SyncStore) -> None:
    assert [_append(store, f"r{i}", limit=3) for i in range(5)] == [0, 1, 2, 3, 4]
    kept = store.operations.history(NS, NAME)
    assert [e.id for e in kept] == [2, 3, 4]
    assert kept[-1].revisions == ("r4",) and kept[-1].initiated_by == {"username": "alice"}
    assert kept[-1].sources == [{"repoURL": "r", "path": "p", "targetRevision": "r4"}]
    assert store.operations.history_entry(NS, NAME, 3).revisions == ("r3",)
    with pytest.raises(AppNotFound, match="no history entry with id 0"):
        store.operations.history_entry(NS, NAME, 0)
    # a lower limit truncates on the next append
    assert _append(store, "r5", limit=1) == 5
    assert [e.id for e in store.operations.history(NS, NAME)] == [5]


def test_history_limit_zero_keeps_nothing_and_ids_restart(store: SyncStore) -> None:
    assert _append(store, "a", limit=0, name="zero") is None
    assert _append(store, "b", limit=0, name="zero") is None
    assert store.operations.history(NS, "zero") == []
    assert _append(store, "c", limit=2, name="zero") == 0


def test_autosync_record_round_trip(store: SyncStore) -> None:
    assert store.operations.autosync(NS, NAME) is None
    record = AutoSyncRecord(
        revisions=("a" * 40,),
        spec_hash="h",
        attempted_at=T0,
        phase="Failed",
        message="boom",
        self_heal_attempts=2,
        last_finished_at=T0 + timedelta(seconds=4),
    )
    store.operations.put_autosync(NS, NAME, record)
    assert store.operations.autosync(NS, NAME) == record
    store.operations.put_autosync(NS, NAME, None)
    assert store.operations.autosync(NS, NAME) is None


def test_refresh_requests_merge_and_survive_a_newer_request(store: SyncStore) -> None:
    ops = store.operations
    ops.request_refresh(NS, NAME, level="hard", now=T0, requested_by="alice")
    ops.request_refresh(NS, NAME, level="normal", now=T0 + timedelta(seconds=1), requested_by="webhook")
    req = ops.refresh_requests()[(NS, NAME)]
    assert req.level == "hard" and req.requested_by == "webhook"
    assert not ops.clear_refresh(NS, NAME, requested_at=T0)  # a newer request arrived: it stays
    assert ops.clear_refresh(NS, NAME, requested_at=req.requested_at)
    assert ops.refresh_requests() == {}
    with pytest.raises(ValueError, match="'normal' or 'hard'"):
        ops.request_refresh(NS, NAME, level="soft", now=T0)  # type: ignore[arg-type]


def test_lease_lets_one_owner_tick_until_it_expires(store: SyncStore) -> None:
    ops = store.operations
    assert not ops.claim(NS, NAME, owner="r1", now=T0, seconds=60)  # nothing to tick
    ops.start(NS, NAME, op_id="op1", request={"trigger": "manual"}, now=T0)
    assert ops.claim(NS, NAME, owner="r1", now=T0, seconds=60)
    assert not ops.claim(NS, NAME, owner="r2", now=T0 + timedelta(seconds=30), seconds=60)
    assert ops.claim(NS, NAME, owner="r1", now=T0 + timedelta(seconds=30), seconds=60)  # renewal
    assert ops.claim(NS, NAME, owner="r2", now=T0 + timedelta(seconds=91), seconds=60)  # expired: taken over


def test_save_with_a_stale_version_is_refused(store: SyncStore) -> None:
    ops = store.operations
    ops.start(NS, NAME, op_id="op1", request={"trigger": "manual"}, now=T0)
    record = ops.operation(NS, NAME)
    assert record is not None
    ops.save_state(NS, NAME, op_id="op1", state={"n": 1}, phase="Running", completed=False, now=T0,
                   expected_version=record.version)
    with pytest.raises(StaleOperation):
        ops.save_state(NS, NAME, op_id="op1", state={"n": 2}, phase="Running", completed=False, now=T0,
                       expected_version=record.version)
    final = ops.operation(NS, NAME)
    assert final is not None and final.state == {"n": 1}


def test_completion_records_state_history_and_bookkeeping_together(store: SyncStore) -> None:
    ops = store.operations
    record = AutoSyncRecord(revisions=("a" * 40,), spec_hash="h", attempted_at=T0, phase="Succeeded", message="ok",
                            self_heal_attempts=0, last_finished_at=T0 + timedelta(seconds=3))
    entry = NewHistory(revisions=("a" * 40,), sources=[{"repoURL": "https://example.com/r.git"}],
                       deploy_started_at=T0, deployed_at=T0 + timedelta(seconds=3),
                       initiated_by={"automated": True}, limit=10)
    ops.start(NS, NAME, op_id="op1", request={"trigger": "auto"}, now=T0)
    ops.complete(NS, NAME, op_id="op1", state={"phase": "Succeeded"}, phase="Succeeded", now=T0,
                 history=entry, autosync=record)
    done = ops.operation(NS, NAME)
    assert done is not None and not done.in_progress and done.state == {"phase": "Succeeded"}
    assert [(h.id, h.revisions) for h in ops.history(NS, NAME)] == [(0, ("a" * 40,))]
    assert ops.autosync(NS, NAME) == record

    # a stale completion writes nothing at all: no state, no history entry, the bookkeeping unchanged
    ops.start(NS, NAME, op_id="op2", request={"trigger": "auto"}, now=T0)
    later = AutoSyncRecord(revisions=("b" * 40,), spec_hash="h", attempted_at=T0, phase="Failed", message="x",
                           self_heal_attempts=0, last_finished_at=T0)
    with pytest.raises(StaleOperation):
        ops.complete(NS, NAME, op_id="op1", state={"phase": "Failed"}, phase="Failed", now=T0, history=entry,
                     autosync=later)
    current = ops.operation(NS, NAME)
    assert current is not None and current.op_id == "op2" and current.in_progress
    assert len(ops.history(NS, NAME)) == 1
    assert ops.autosync(NS, NAME) == record
    # without history or bookkeeping (a dry run), only the state is written
    ops.complete(NS, NAME, op_id="op2", state={"phase": "Succeeded"}, phase="Succeeded", now=T0)
    assert len(ops.history(NS, NAME)) == 1 and ops.autosync(NS, NAME) == record


def test_applied_namespace_metadata_outlives_the_operation_that_applied_it(store: SyncStore) -> None:
    applied = {"labels": {"team": "web"}, "annotations": {}}
    store.operations.start(NS, NAME, op_id="op1", request={"trigger": "manual"}, now=T0)
    state = {"phase": "Succeeded", "managedNamespaceMetadata": applied}
    store.operations.save_state(NS, NAME, op_id="op1", state=state, phase="Succeeded", completed=True, now=T0)
    record = store.operations.operation(NS, NAME)
    assert record is not None and record.namespace_metadata == applied
    # the next operation clears the state, not what was applied; one that applies nothing leaves it too
    store.operations.start(NS, NAME, op_id="op2", request={"trigger": "manual"}, now=T0)
    store.operations.complete(NS, NAME, op_id="op2", state={"phase": "Failed"}, phase="Failed", now=T0)
    record = store.operations.operation(NS, NAME)
    assert record is not None and record.state == {"phase": "Failed"} and record.namespace_metadata == applied
