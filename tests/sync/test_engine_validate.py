"""The ``Validate`` sync option (reference §4.7) against the sandbox over HTTP: KubeCluster sends
``fieldValidation`` on every write in every apply mode (Strict by default, so the server rejects unknown
fields); a sync of an object with an unknown field fails at the dry-run with the server's message and
writes nothing, and succeeds with ``Validate=false`` on the app or on the resource (the field dropped)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.cluster import ApplyMode, Invalid
from sync.engine_request import SyncOptions
from sync.models import ResourceKey
from sync.operation import OperationPhase, ResultCode
from tests.sync.enginefixtures import NS, OPTIONS, Harness, cm, harness, new_op, ns_path


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    yield from harness(tmp_path)


def odd(name: str, *, ann: dict[str, str] | None = None) -> dict[str, Any]:
    obj = cm(name, ann=ann)
    obj["spec"] = {"replicas": 2}  # a ConfigMap has no spec: an unknown field
    return obj


def test_validate_option_is_parsed_and_on_by_default() -> None:
    assert SyncOptions().validate is True
    assert SyncOptions.parse(["Validate=false"]).validate is False
    assert SyncOptions.parse(["Validate=true"]).validate is True


@pytest.mark.parametrize("mode", ["server-side", "client-side", "replace"])
def test_kube_apply_is_strict_by_default_and_ignore_drops_the_field(h: Harness, mode: ApplyMode) -> None:
    obj = {**odd("a"), "metadata": {"name": "a", "namespace": NS}}
    with pytest.raises(Invalid, match='strict decoding error: unknown field "spec"'):
        h.cluster.apply(obj, mode=mode)
    with pytest.raises(Invalid, match='strict decoding error: unknown field "spec"'):
        h.cluster.apply(obj, mode=mode, field_validation="Strict", dry_run=True)

    stored = h.cluster.apply(obj, mode=mode, field_validation="Ignore")
    assert "spec" not in stored and stored["data"] == {"k": "v"}
    again = h.cluster.apply(obj, mode=mode, field_validation="Warn")  # the update path this time
    assert "spec" not in again


def test_kube_apply_refuses_an_unknown_field_validation(h: Harness) -> None:
    with pytest.raises(Invalid, match="unknown field validation 'Loose'"):
        h.cluster.apply(cm("a"), field_validation="Loose")  # type: ignore[arg-type]
    assert h.writes() == []


def test_an_unknown_field_fails_the_sync_by_default_and_nothing_is_written(h: Harness) -> None:
    op, _ = h.run(new_op(), lambda: h.request([cm("fine"), odd("odd")]))

    assert op.phase is OperationPhase.FAILED
    failed = [r for r in op.results if r.status is ResultCode.SYNC_FAILED]
    assert [r.key.name for r in failed] == ["odd"]
    assert 'strict decoding error: unknown field "spec"' in failed[0].message
    assert 'unknown field "spec"' in op.message
    # only the two dry-runs reached the server; neither object exists
    assert h.writes() == [("patch", ns_path("ConfigMap", "fine")), ("patch", ns_path("ConfigMap", "odd"))]
    assert h.live() == []


def test_validate_false_on_the_app_syncs_and_the_server_drops_the_field(h: Harness) -> None:
    op, _ = h.run(new_op(), lambda: h.request([cm("fine"), odd("odd")], validate=False))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    live = h.cluster.get(ResourceKey("", "ConfigMap", NS, "odd"))
    assert "spec" not in live and live["data"] == {"k": "v"}


def test_validate_false_on_the_resource_only_relaxes_that_resource(h: Harness) -> None:
    relaxed = odd("relaxed", ann={OPTIONS: "Validate=false"})
    op, _ = h.run(new_op(), lambda: h.request([relaxed]))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert "spec" not in h.cluster.get(ResourceKey("", "ConfigMap", NS, "relaxed"))

    op, _ = h.run(new_op("op-2"), lambda: h.request([relaxed, odd("strict")]))
    assert op.phase is OperationPhase.FAILED
    assert [r.key.name for r in op.results if r.status is ResultCode.SYNC_FAILED] == ["strict"]
