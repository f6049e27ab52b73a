"""A sync window's refusal is not retried by the engine (the reconciler tries an automatic sync again at its next
poll); any other denial still follows the operation's retry policy."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.application import Backoff, Retry
from sync.gate import Violation
from sync.operation import OperationPhase
from tests.sync.enginefixtures import Harness, cm, harness, new_op

RETRY = Retry(limit=3, backoff=Backoff(duration="5s", factor=2, max_duration="1m"))


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    yield from harness(tmp_path)


def test_window_only_denial_ends_the_operation_without_retry(h: Harness) -> None:
    h.gate.violations = [Violation("window.blocked", "blocked by deny window 'freeze'")]
    op, _ = h.run(new_op(), lambda: dataclasses.replace(h.request([cm("cfg")]), retry=RETRY), max_ticks=1)
    assert op.phase is OperationPhase.FAILED and op.retry_count == 0 and op.next_attempt_at is None
    assert len(h.gate.calls) == 1 and h.writes() == []


def test_other_denials_are_retried(h: Harness) -> None:
    h.gate.violations = [Violation("resource.denied", "ConfigMap is not permitted")]
    op = h.engine().tick(new_op(), dataclasses.replace(h.request([cm("cfg")]), retry=RETRY), now=new_op().started_at)
    assert op.phase is OperationPhase.RUNNING and op.retry_count == 1 and op.next_attempt_at is not None
    assert h.writes() == []
