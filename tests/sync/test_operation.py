"""sync.operation: the persisted operation state (JSON round trip, results keyed by (resource, phase), clear
errors naming the field for a damaged state) and the retry backoff math of reference §4.14."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sync.application import Backoff
from sync.hooks import Phase
from sync.models import ResourceKey
from sync.operation import (
    InvalidOperationState,
    OperationPhase,
    OperationState,
    ResourceResult,
    ResultCode,
    TaskPhase,
    retry_delay,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = ResourceKey("batch", "Job", "team-a", "migrate")


@pytest.mark.parametrize(
    ("n", "seconds"),
    [
        pytest.param(0, 5, id="first"),
        pytest.param(1, 10, id="second"),
        pytest.param(2, 20, id="third"),
        pytest.param(3, 40, id="fourth"),
        pytest.param(4, 80, id="fifth"),
        pytest.param(5, 160, id="sixth"),
        pytest.param(6, 180, id="capped"),
        pytest.param(10_000, 180, id="huge-n-capped"),
    ],
)
def test_default_backoff(n: int, seconds: float) -> None:
    assert retry_delay(n) == timedelta(seconds=seconds)


@pytest.mark.parametrize(("n", "seconds"), [(0, 2), (1, 6), (2, 18), (3, 54), (4, 60), (50, 60)])
def test_custom_backoff(n: int, seconds: float) -> None:
    assert retry_delay(n, Backoff(duration="2s", factor=3, max_duration="1m")) == timedelta(seconds=seconds)


def test_zero_max_duration_means_no_cap_and_never_overflows() -> None:
    backoff = Backoff(duration="1s", factor=2, max_duration="0")
    assert retry_delay(10, backoff) == timedelta(seconds=1024)
    assert retry_delay(100_000, backoff) > timedelta(days=365 * 1000)


def _op() -> OperationState:
    op = OperationState.new("op-7", started_at=T0, revision="abc123")
    op.put_result(ResourceResult(KEY, Phase.PRE_SYNC, ResultCode.SYNCED, TaskPhase.RUNNING, "created", "v1", True, -1))
    op.put_result(ResourceResult(KEY, Phase.POST_SYNC, ResultCode.SYNCED, TaskPhase.SUCCEEDED, "", "v1", True, 0))
    op.gate_passed = True
    op.dry_run_done = True
    op.retry_count = 2
    op.finished_at = T0 + timedelta(seconds=30)
    op.next_attempt_at = T0 + timedelta(seconds=50)
    op.violations = [{"code": "DestinationNotPermitted", "message": "no", "field": "", "rule": ""}]
    return op


def test_state_survives_a_json_round_trip() -> None:
    op = _op()
    again = OperationState.from_dict(json.loads(json.dumps(op.to_dict())))
    assert again == op
    assert again.waiting_for_retry
    assert not again.completed


def test_results_are_keyed_by_resource_and_phase_in_first_seen_order() -> None:
    op = _op()
    assert [r.sync_phase for r in op.results] == [Phase.PRE_SYNC, Phase.POST_SYNC]
    op.put_result(ResourceResult(KEY, Phase.PRE_SYNC, ResultCode.SYNCED, TaskPhase.FAILED, "BackoffLimitExceeded"))
    assert len(op.results) == 2
    found = op.result(KEY, Phase.PRE_SYNC)
    assert found is not None and found.task_phase is TaskPhase.FAILED
    assert op.result(KEY, Phase.SYNC) is None
    assert op.to_dict()["resources"][0] == {
        "group": "batch",
        "version": "",
        "kind": "Job",
        "namespace": "team-a",
        "name": "migrate",
        "status": "Synced",
        "message": "BackoffLimitExceeded",
        "hookType": "",
        "hookPhase": "Failed",
        "syncPhase": "PreSync",
        "syncWave": 0,
    }


def test_a_new_attempt_forgets_the_previous_one() -> None:
    op = _op()
    op.failure = "boom"
    op.start_attempt()
    assert (op.results, op.gate_passed, op.dry_run_done, op.failure, op.violations) == ([], False, False, "", [])
    assert op.finished_at is None and op.next_attempt_at is None
    assert op.retry_count == 2  # the count survives: it is what limits retries


def test_phases_know_when_they_are_completed() -> None:
    assert [p.value for p in OperationPhase if p.completed] == ["Succeeded", "Failed", "Error"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        pytest.param({"phase": "Done"}, "phase", id="bad-phase"),
        pytest.param({"startedAt": "yesterday"}, "startedAt", id="bad-time"),
        pytest.param({"startedAt": "2026-03-01T12:00:00"}, "startedAt", id="naive-time"),
        pytest.param({"startedAt": None}, "startedAt", id="missing-start"),
        pytest.param({"retryCount": -1}, "retryCount", id="negative-retries"),
        pytest.param({"operationId": ""}, "operationId", id="empty-id"),
        pytest.param({"resources": [{"kind": "Job"}]}, "resources[0].name", id="result-without-name"),
        pytest.param(
            {
                "resources": [
                    {"kind": "Job", "name": "x", "status": "Synced", "hookPhase": "Running", "syncPhase": "Later"}
                ]
            },
            "resources[0].syncPhase",
            id="bad-sync-phase",
        ),
        pytest.param({"attempt": {"nextAttemptAt": 5}}, "attempt.nextAttemptAt", id="bad-next-attempt"),
        pytest.param({"violations": ["x"]}, "violations", id="bad-violations"),
    ],
)
def test_a_damaged_state_names_the_field(patch: dict[str, object], field: str) -> None:
    data = {**_op().to_dict(), **patch}
    with pytest.raises(InvalidOperationState) as info:
        OperationState.from_dict(data)
    assert info.value.field == field
    assert field in str(info.value)
