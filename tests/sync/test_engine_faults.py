"""SyncEngine under faults, restarts and audit failures, against the sandbox over HTTP.

Covers: 503 with Retry-After, 409 and slow responses injected by the sandbox are retried within the tick
without writing an already-applied object twice; retries are bounded; a rejected object (422) is not
retried; a restart resumes from the persisted (JSON) state with a new engine and a new client without
re-applying completed steps; an event sink that fails stops the operation before anything further is
written ("audit log unavailable"); an operation-level retry waits its backoff and runs the gate again
(trigger "retry"); the retry limit ends it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sync.application import Backoff, Retry
from sync.engine import SyncEngine
from sync.engine_request import SyncRequest
from sync.gate import Violation
from sync.operation import OperationPhase, OperationState, ResultCode
from tests.sync.enginefixtures import (
    T0,
    WAVE,
    Harness,
    Sink,
    cm,
    connect,
    harness,
    job,
    new_op,
    ns_path,
)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    yield from harness(tmp_path)


WAVES = [job("pre", "PreSync"), cm("a", ann={WAVE: "0"}), cm("b", ann={WAVE: "1"})]


def _count(h: Harness, path: str) -> int:
    """Applies (dry or real) of ``path``: patches other than the merge patch taking the hook finalizer off."""
    return sum(1 for r in h.sb.requests.writes()
               if (r.verb, r.path) == ("patch", path) and not r.body_summary.startswith("application/merge-patch"))


def _first_step(h: Harness) -> OperationState:
    """Tick once: gate, dry-run, the PreSync hook applied."""
    op = h.engine().tick(new_op(), h.request(WAVES), now=T0)
    assert op.message == "waiting for completion of hook batch/Job/pre"
    h.sb.tick()
    return op


def test_503_with_retry_after_is_retried_without_duplicate_writes(h: Harness) -> None:
    op = _first_step(h)
    h.sb.faults.add("patch", "configmaps", "a", status=503, retry_after=1, times=2)
    op, _ = h.run(op, lambda: h.request(WAVES), start=T0 + timedelta(seconds=1))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert h.sleeps == [1.0, 1.0]  # the server's Retry-After, through the injected sleep
    assert _count(h, ns_path("ConfigMap", "a")) == 1 + 3  # dry-run + two refused + the one that took
    assert _count(h, ns_path("ConfigMap", "b")) == 2  # dry-run + once
    assert _count(h, ns_path("Job", "pre")) == 2


def test_409_and_slow_responses_are_retried(h: Harness) -> None:
    h.sb.faults.add("patch", "configmaps", "a", status=409, times=1)
    h.sb.faults.add("get", "jobs", latency=0.05, times=3)
    op, _ = h.run(new_op(), lambda: h.request(WAVES))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert len(h.sleeps) == 1
    assert _count(h, ns_path("ConfigMap", "a")) == 1 + 1 + 1  # a refused dry-run, its retry, the apply
    assert _count(h, ns_path("ConfigMap", "b")) == 2


def test_transient_retries_are_bounded(h: Harness) -> None:
    op = _first_step(h)
    h.sb.faults.add("patch", "configmaps", "a", status=503)
    op, _ = h.run(op, lambda: h.request(WAVES), start=T0 + timedelta(seconds=1))
    assert op.phase is OperationPhase.FAILED
    assert "the server is currently unable to handle the request" in op.message
    assert _count(h, ns_path("ConfigMap", "a")) == 1 + 4
    assert _count(h, ns_path("ConfigMap", "b")) == 1  # later waves are not applied


def test_a_rejected_object_is_not_retried(h: Harness) -> None:
    op = _first_step(h)
    h.sb.faults.add("patch", "configmaps", "a", status=403, times=1)
    op, _ = h.run(op, lambda: h.request(WAVES), start=T0 + timedelta(seconds=1))
    assert op.phase is OperationPhase.FAILED
    assert h.sleeps == []
    assert _count(h, ns_path("ConfigMap", "a")) == 2  # dry-run + the refused apply
    failed = [r for r in op.results if r.status is ResultCode.SYNC_FAILED]
    assert [r.key.name for r in failed] == ["a"]


def test_a_restart_resumes_from_the_persisted_state(h: Harness, tmp_path: Path) -> None:
    engine = h.engine()
    op = engine.tick(new_op(), h.request(WAVES), now=T0)
    h.sb.tick()
    op = engine.tick(op, h.request(WAVES), now=T0 + timedelta(seconds=1))  # wave 0 applied
    assert op.message == "waiting for healthy state of /ConfigMap/a"
    saved = json.dumps(op.to_dict())
    h.cluster.close()

    # a new process: a new client, a new engine, the state read back from the store
    h.cluster = connect(h.sb, tmp_path / "restarted")
    resumed = OperationState.from_dict(json.loads(saved))
    op, _ = h.run(resumed, lambda: h.request(WAVES), start=T0 + timedelta(seconds=2))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    for path in (ns_path("Job", "pre"), ns_path("ConfigMap", "a"), ns_path("ConfigMap", "b")):
        assert _count(h, path) == 2, path  # one dry-run and one apply each, across the restart
    assert len(h.gate.calls) == 1  # the attempt had passed the gate before the restart


def test_a_failing_event_sink_stops_the_operation_before_anything_is_written(h: Harness) -> None:
    h.sink = Sink(fail_on=lambda e: e.action == "sync.started")
    op, _ = h.run(new_op(), lambda: h.request([cm("a"), cm("b")]))
    assert (op.phase, op.message) == (OperationPhase.ERROR, "audit log unavailable")
    assert h.writes() == []
    assert h.gate.calls == []


def test_a_resource_event_that_cannot_be_recorded_stops_further_writes(h: Harness) -> None:
    h.sink = Sink(fail_on=lambda e: e.action == "sync.resource")
    op, _ = h.run(new_op(), lambda: h.request([cm("a"), cm("b")]))
    assert (op.phase, op.message) == (OperationPhase.ERROR, "audit log unavailable")
    assert op.retry_count == 0
    # both dry-runs, then a's apply (whose result could not be recorded); b is never applied
    assert h.writes() == [
        ("patch", ns_path("ConfigMap", "a")),
        ("patch", ns_path("ConfigMap", "b")),
        ("patch", ns_path("ConfigMap", "a")),
    ]


def _with_retry(request: SyncRequest, limit: int) -> SyncRequest:
    return dataclasses.replace(request, retry=Retry(limit=limit, backoff=Backoff(duration="5s", factor=2)))


def test_a_failed_attempt_is_retried_after_its_backoff_through_the_gate_again(h: Harness) -> None:
    h.gate.violations = [Violation("SyncWindowClosed", "a deny window is active")]
    h.gate.deny_times = 1
    engine = h.engine()
    op = engine.tick(new_op(), _with_retry(h.request([cm("a")]), 2), now=T0)
    assert op.phase is OperationPhase.RUNNING and op.waiting_for_retry
    assert op.retry_count == 1
    assert op.message.startswith("sync denied by project policy: a deny window is active. Retrying attempt #1 at ")
    assert op.next_attempt_at == T0 + timedelta(seconds=5)
    op = OperationState.from_dict(json.loads(json.dumps(op.to_dict())))

    assert engine.tick(op, _with_retry(h.request([cm("a")]), 2), now=T0 + timedelta(seconds=4)) == op
    assert len(h.gate.calls) == 1
    op = engine.tick(op, _with_retry(h.request([cm("a")]), 2), now=T0 + timedelta(seconds=5))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert [(c.trigger, c.started_at) for c in h.gate.calls] == [("manual", None), ("retry", T0)]
    assert "sync.retrying" in h.sink.actions() and "sync.retry" in h.sink.actions()
    assert _count(h, ns_path("ConfigMap", "a")) == 2


def test_retries_stop_at_the_limit(h: Harness) -> None:
    h.gate.violations = [Violation("SyncWindowClosed", "a deny window is active")]
    engine = h.engine()
    op = engine.tick(new_op(), _with_retry(h.request([cm("a")]), 1), now=T0)
    op = engine.tick(op, _with_retry(h.request([cm("a")]), 1), now=T0 + timedelta(seconds=6))
    assert op.phase is OperationPhase.FAILED
    assert op.message.endswith("(retried 1 times).")
    assert h.writes() == []


def test_a_refused_read_ends_the_operation_error(h: Harness) -> None:
    h.sb.faults.add("get", "jobs", status=403)
    op, _ = h.run(new_op(), lambda: h.request(WAVES))
    assert op.phase is OperationPhase.ERROR
    assert "HTTP 403" in op.message
    assert h.sink.actions()[-1] == "sync.error"


def test_a_gate_that_cannot_decide_denies(h: Harness) -> None:
    def broken(request: object) -> object:
        raise RuntimeError("policy store unreachable")

    engine = SyncEngine(h.cluster, broken, h.sink, h.settings)  # type: ignore[arg-type]
    op = engine.tick(new_op(), h.request([cm("a")]), now=T0)
    assert op.phase is OperationPhase.FAILED
    assert op.message == "sync denied: the policy gate could not decide (RuntimeError)"
    assert h.writes() == []
    assert (h.sink.events[-1].action, h.sink.events[-1].result) == ("sync.denied", "denied")
