"""SyncEngine hooks against the sandbox: a failing hook triggers the SyncFail hooks and ends the operation
Failed without applying later waves; SyncFail hooks do not run on success; delete policies (HookSucceeded,
HookFailed, the default BeforeHookCreation that deletes a previous run's hook first); a waiting message for a
pruned object that is still being deleted; terminate and the sync timeout delete running hooks and end Failed
without retrying."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import sandbox
from sync.application import Backoff, Retry
from sync.cluster import NotFound
from sync.engine_request import SyncRequest
from sync.models import ResourceKey
from sync.operation import OperationPhase, TaskPhase
from tests.sync.enginefixtures import (
    NS,
    POLICY,
    T0,
    WAVE,
    Harness,
    cm,
    harness,
    job,
    new_op,
    ns_path,
)

MERGE_PATCH = "application/merge-patch+json"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    yield from harness(tmp_path)


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[Harness]:
    """Jobs run for an hour of sandbox time: hooks stay running."""
    yield from harness(tmp_path, sandbox.ControllerTiming(job_duration_seconds=3600))


def _count(h: Harness, verb: str, path: str) -> int:
    """Writes of ``verb`` to ``path``, not counting the merge patches that take the hook finalizer off."""
    return sum(1 for r in h.sb.requests.writes()
               if (r.verb, r.path) == (verb, path) and not r.body_summary.startswith(MERGE_PATCH))


def test_a_failing_hook_runs_the_sync_fail_hooks_and_stops_later_waves(h: Harness) -> None:
    targets = [job("pre", "PreSync", fail=True), cm("cfg"), job("notify", "SyncFail")]
    op, messages = h.run(new_op(), lambda: h.request(targets))

    assert op.phase is OperationPhase.FAILED
    assert op.message == "one or more synchronization tasks completed unsuccessfully"
    assert "running SyncFail hooks" in messages[-2]
    assert _count(h, "patch", ns_path("Job", "notify")) == 2  # dry-run, then run as the sync failed
    assert _count(h, "patch", ns_path("ConfigMap", "cfg")) == 1  # its dry-run only: never applied
    pre = op.result(ResourceKey("batch", "Job", NS, "pre"), op.results[0].sync_phase)
    assert pre is not None and pre.task_phase is TaskPhase.FAILED
    assert h.sink.actions()[-1] == "sync.failed"


def test_a_failing_sync_fail_hook_is_reported(h: Harness) -> None:
    targets = [job("pre", "PreSync", fail=True), job("notify", "SyncFail", fail=True)]
    op, _ = h.run(new_op(), lambda: h.request(targets))
    assert op.phase is OperationPhase.FAILED
    assert "\none or more SyncFail hooks failed" in op.message


def test_an_apply_error_is_the_reason_of_the_failure(h: Harness) -> None:
    targets = [cm("a", ann={WAVE: "0"}), cm("b", ann={WAVE: "1"})]
    engine = h.engine()
    op = engine.tick(new_op(), h.request(targets), now=T0)
    h.sb.faults.add("patch", "configmaps", "b", status=422)  # the server rejects b when it is really applied
    op, _ = h.run(op, lambda: h.request(targets), engine=engine, start=T0 + timedelta(seconds=1))
    assert op.phase is OperationPhase.FAILED
    assert op.message.startswith("one or more synchronization tasks completed unsuccessfully, reason: ")
    assert "injected fault: HTTP 422" in op.message


def test_sync_fail_hooks_do_not_run_when_the_sync_succeeds(h: Harness) -> None:
    op, _ = h.run(new_op(), lambda: h.request([cm("cfg"), job("notify", "SyncFail")]))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert _count(h, "patch", ns_path("Job", "notify")) == 1  # the dry-run only


def test_hook_failed_policy_deletes_hooks_when_the_operation_fails(h: Harness) -> None:
    targets = [
        job("ok", "PreSync", ann={POLICY: "HookFailed", WAVE: "-1"}),
        job("bad", "PreSync", fail=True),
        job("kept", "PreSync", ann={POLICY: "HookSucceeded", WAVE: "-1"}),
    ]
    op, _ = h.run(new_op(), lambda: h.request(targets))
    assert op.phase is OperationPhase.FAILED
    deletes = [p for v, p in h.writes() if v == "delete"]
    assert deletes == [ns_path("Job", "ok")]  # succeeded itself, but the operation failed
    assert h.cluster.get(ResourceKey("batch", "Job", NS, "kept"))


def test_before_hook_creation_deletes_the_previous_run_first(h: Harness) -> None:
    targets = [job("migrate", "PreSync"), cm("cfg")]
    op, _ = h.run(new_op(), lambda: h.request(targets))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    h.sb.requests.clear()

    op, _ = h.run(new_op("op-2", T0 + timedelta(hours=1)), lambda: h.request(targets), start=T0 + timedelta(hours=1))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    migrate = ns_path("Job", "migrate")
    real = [w for w in h.writes() if w[1] == migrate]
    # no dry-run of a hook about to be recreated; delete, then create afresh; once it completed, the hook
    # finalizer is taken off (the first run's was taken off when it completed, so the delete is not held)
    assert real == [("delete", migrate), ("patch", migrate), ("patch", migrate)]


def test_a_hook_without_before_hook_creation_is_reapplied_and_counts_as_done(h: Harness) -> None:
    targets = [job("once", "PreSync", ann={POLICY: "HookFailed"}), cm("cfg")]
    h.run(new_op(), lambda: h.request(targets))
    h.sb.requests.clear()
    op, _ = h.run(new_op("op-2"), lambda: h.request(targets))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert ("delete", ns_path("Job", "once")) not in h.writes()


def test_a_pruned_object_still_terminating_holds_the_next_wave(h: Harness) -> None:
    h.cluster.apply(
        {
            **cm("stuck"),
            "metadata": {
                "name": "stuck",
                "namespace": NS,
                "finalizers": ["example.com/hold"],
                "annotations": {WAVE: "5"},
            },
        },
        field_manager="test",
    )
    live = [h.cluster.get(ResourceKey("", "ConfigMap", NS, "stuck"))]
    targets = [cm("a", ann={WAVE: "0"}), cm("b", ann={WAVE: "9"})]
    engine = h.engine()
    op = engine.tick(new_op(), h.request(targets, live=live, prune=True), now=T0)
    op = engine.tick(op, h.request(targets, live=live, prune=True), now=T0 + timedelta(seconds=1))
    assert op.message == "waiting for deletion of /ConfigMap/stuck"
    assert _count(h, "patch", ns_path("ConfigMap", "b")) == 1  # the dry-run only, so far
    h.cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stuck", "namespace": NS, "finalizers": []}},
        field_manager="test",
    )
    op, _ = h.run(op, lambda: h.request(targets, live=live, prune=True), engine=engine, start=T0 + timedelta(seconds=2))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert _count(h, "patch", ns_path("ConfigMap", "b")) == 2


def test_terminate_deletes_running_hooks_and_fails_without_retry(slow: Harness) -> None:
    h = slow
    targets = [job("long", "PreSync"), cm("cfg")]
    engine = h.engine()
    request = h.request(targets)
    op = engine.tick(new_op(), request, now=T0)
    assert op.message == "waiting for completion of hook batch/Job/long"

    op = engine.terminate(op, h.request(targets), now=T0 + timedelta(seconds=5))
    assert (op.phase, op.message) == (OperationPhase.FAILED, "Operation terminated")
    result = op.results[0]
    assert (result.task_phase, result.message) == (TaskPhase.FAILED, "Terminated")
    assert ("delete", ns_path("Job", "long")) in h.writes()
    with pytest.raises(NotFound):
        h.cluster.get(ResourceKey("batch", "Job", NS, "long"))
    assert engine.tick(op, request, now=T0 + timedelta(minutes=5)) == op  # completed: nothing more happens
    assert _count(h, "patch", ns_path("ConfigMap", "cfg")) == 1
    assert h.sink.actions()[-2:] == ["sync.resource", "sync.failed"]


def test_the_sync_timeout_terminates_the_operation(slow: Harness) -> None:
    h = slow
    h.settings = h.settings.model_copy(update={"sync_timeout_seconds": 30.0})
    targets = [job("long", "PreSync"), cm("cfg")]
    engine = h.engine()

    def request() -> SyncRequest:
        return dataclasses.replace(h.request(targets), retry=Retry(limit=3, backoff=Backoff()))

    op = engine.tick(new_op(), request(), now=T0)
    op = engine.tick(op, request(), now=T0 + timedelta(seconds=29))
    assert op.phase is OperationPhase.RUNNING
    op = engine.tick(op, request(), now=T0 + timedelta(seconds=31))
    assert op.phase is OperationPhase.FAILED
    assert "sync timeout of 30s exceeded" in op.message
    assert op.retry_count == 0  # a timeout is never retried
    assert ("delete", ns_path("Job", "long")) in h.writes()


def test_a_terminating_operation_is_terminated_on_its_next_tick(slow: Harness) -> None:
    h = slow
    engine = h.engine()
    op = engine.tick(new_op(), h.request([job("long", "PreSync")]), now=T0)
    op.phase = OperationPhase.TERMINATING  # what the API writes when a user asks to terminate
    op = engine.tick(op, h.request([job("long", "PreSync")]), now=T0 + timedelta(seconds=1))
    assert (op.phase, op.message) == (OperationPhase.FAILED, "Operation terminated")
    assert ("delete", ns_path("Job", "long")) in h.writes()
