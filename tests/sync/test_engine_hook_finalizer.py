"""The hook finalizer ``argocd.argoproj.io/hook-finalizer`` (reference §4.5 step 6, §4.6 step 1, §4.9, §4.13), by the
SyncEngine against the sandbox over HTTP.

Covers: every hook the engine creates carries it while it runs; a Job whose ``ttlSecondsAfterFinished`` runs out
(the sandbox's TTL controller deletes it) is held Terminating until its result is read, then let go, and the sync
succeeds; a hook from an earlier run still holding the finalizer loses it before BeforeHookCreation deletes it;
terminate takes it off a running hook, so the delete is not held; hooks still running when the operation fails
lose it too, and one deleted by its HookFailed policy is gone, not held Terminating; taking it off never drops a
finalizer someone else added after our read (the resourceVersion precondition; the engine retries on a fresh read)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sandbox
from sync import hook_finalizer
from sync.cluster import Conflict, NotFound
from sync.models import ResourceKey
from sync.operation import OperationPhase, TaskPhase
from tests.sync.enginefixtures import NS, POLICY, T0, WAVE, Harness, cm, harness, job, new_op, ns_path, stamp

FINALIZER = "argocd.argoproj.io/hook-finalizer"
MERGE_PATCH = "application/merge-patch+json"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    yield from harness(tmp_path)


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[Harness]:
    """Jobs run for an hour of sandbox time: hooks stay running."""
    yield from harness(tmp_path, sandbox.ControllerTiming(job_duration_seconds=3600))


def _job_key(name: str) -> ResourceKey:
    return ResourceKey("batch", "Job", NS, name)


def _finalizers(h: Harness, name: str) -> list[str]:
    return list(h.cluster.get(_job_key(name))["metadata"].get("finalizers") or [])


def _writes(h: Harness, path: str) -> list[str]:
    """What was written to ``path``: "apply", "unhold" (the merge patch taking the finalizer off), "delete"."""
    out = []
    for r in h.sb.requests.writes():
        if r.path == path:
            out.append("unhold" if r.body_summary.startswith(MERGE_PATCH) else "apply" if r.verb == "patch" else r.verb)
    return out


def _ttl(obj: dict[str, Any], seconds: int) -> dict[str, Any]:
    obj["spec"]["ttlSecondsAfterFinished"] = seconds
    return obj


def test_a_hook_holds_the_finalizer_while_it_runs_and_a_ttl_cannot_take_it_early(h: Harness) -> None:
    targets = [_ttl(job("migrate", "PreSync"), 0), cm("cfg")]
    engine = h.engine()
    op = engine.tick(new_op(), h.request(targets), now=T0)
    assert op.message == "waiting for completion of hook batch/Job/migrate"
    assert _finalizers(h, "migrate") == [FINALIZER]

    h.sb.tick()  # the Job completes and its TTL (0 s) runs out at once: deleted, but the finalizer holds it
    held = h.cluster.get(_job_key("migrate"))
    assert held["metadata"].get("deletionTimestamp")
    assert held["status"]["succeeded"] == 1

    op, _ = h.run(op, lambda: h.request(targets), engine=engine, start=T0)
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    result = next(r for r in op.results if r.key == _job_key("migrate"))
    assert result.task_phase is TaskPhase.SUCCEEDED
    with pytest.raises(NotFound):  # its result read, the finalizer came off and the TTL deletion finished
        h.cluster.get(_job_key("migrate"))
    assert _writes(h, ns_path("Job", "migrate")) == ["apply", "apply", "unhold"]  # dry-run, create, release
    released = [(e.target, e.message) for e in h.sink.events if e.action == "sync.hook.finalizer"]
    assert released == [(str(_job_key("migrate")), "hook completed")]  # announced to the event sink, as every write


def test_a_completed_hook_kept_in_the_cluster_no_longer_holds_the_finalizer(h: Harness) -> None:
    op, _ = h.run(new_op(), lambda: h.request([job("migrate", "PreSync"), cm("cfg")]))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert _finalizers(h, "migrate") == []  # kept (BeforeHookCreation) but free to be deleted by anyone


def test_a_previous_runs_hook_still_holding_the_finalizer_is_released_before_it_is_replaced(h: Harness) -> None:
    # a hook left by a run that ended abruptly: it still carries the finalizer, and someone already deleted it
    old = job("migrate", "PreSync")
    old["metadata"]["namespace"] = NS
    h.cluster.apply(hook_finalizer.added(stamp(old)), field_manager="syncwarden")
    h.cluster.delete(_job_key("migrate"), propagation="Background")
    assert h.cluster.get(_job_key("migrate"))["metadata"].get("deletionTimestamp")  # held
    h.sb.requests.clear()

    op, _ = h.run(new_op(), lambda: h.request([job("migrate", "PreSync"), cm("cfg")]))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    # released first (it goes: its deletion was already asked for), created afresh, released once complete
    assert _writes(h, ns_path("Job", "migrate")) == ["unhold", "apply", "unhold"]
    assert _finalizers(h, "migrate") == []


def test_terminate_takes_the_finalizer_off_so_the_running_hook_is_deleted(slow: Harness) -> None:
    h = slow
    targets = [job("long", "PreSync"), cm("cfg")]
    engine = h.engine()
    op = engine.tick(new_op(), h.request(targets), now=T0)
    assert _finalizers(h, "long") == [FINALIZER]

    op = engine.terminate(op, h.request(targets), now=T0)
    assert (op.phase, op.message) == (OperationPhase.FAILED, "Operation terminated")
    assert _writes(h, ns_path("Job", "long")) == ["apply", "apply", "unhold", "delete"]
    assert [e.message for e in h.sink.events if e.action == "sync.hook.finalizer"] == ["operation terminated"]
    with pytest.raises(NotFound):  # not left Terminating behind the finalizer
        h.cluster.get(_job_key("long"))


def test_hooks_still_running_when_the_operation_fails_are_released_or_deleted(slow: Harness) -> None:
    h = slow
    wave1 = {WAVE: "1"}
    targets = [cm("first"), job("side", "Sync", ann=wave1), job("gone", "Sync", ann={POLICY: "HookFailed", **wave1}),
               cm("bad", ann=wave1)]
    engine = h.engine()
    op = engine.tick(new_op(), h.request(targets), now=T0)  # gate, dry-run, wave 0
    h.sb.faults.add("patch", "configmaps", "bad", status=422)  # the real apply of bad (wave 1) is refused
    op = engine.tick(op, h.request(targets), now=T0)
    assert op.phase is OperationPhase.FAILED, op.message
    side = next(r for r in op.results if r.key == _job_key("side"))
    assert side.task_phase is TaskPhase.RUNNING  # still running when the operation ended ...
    assert _finalizers(h, "side") == []  # ... so nothing will read its result: it is let go
    with pytest.raises(NotFound):  # HookFailed: released, then deleted, and not held Terminating
        h.cluster.get(_job_key("gone"))
    assert _writes(h, ns_path("Job", "gone")) == ["apply", "apply", "unhold", "delete"]


def test_taking_it_off_never_drops_a_finalizer_added_meanwhile(h: Harness) -> None:
    key = ResourceKey("", "ConfigMap", NS, "held")
    body = {**cm("held"), "metadata": {"name": "held", "namespace": NS, "finalizers": [FINALIZER]}}
    h.cluster.apply(body, field_manager="syncwarden")
    stale = h.cluster.get(key)
    other = {**body, "metadata": {**body["metadata"], "finalizers": ["example.com/keep"]}}
    h.cluster.apply(other, field_manager="other")  # someone else's finalizer, after our read

    with pytest.raises(Conflict):  # the stale read's resourceVersion is the precondition
        hook_finalizer.remove(h.cluster, key, stale)
    after = hook_finalizer.remove(h.cluster, key, stale, retry=h.engine().calls.call)  # retried on a fresh read
    assert after is not None and after["metadata"]["finalizers"] == ["example.com/keep"]
    assert h.sleeps  # the conflict was retried through the engine's bounded retry
