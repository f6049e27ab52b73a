"""Three sync options of the engine against the sandbox over HTTP (reference §1.10, §4.1 step 4.4, §4.6 step 2,
§4.8, §4.12), asserting what a user sees: the operation's phase and message, the sandbox's request log and the
live objects.

Covers: ``Prune=confirm`` on a live object or app-wide holds every prune of its step, and the step's applies,
until the app's ``deletion-approved`` annotation is at or after the operation's start (an older approval or a
value that is not an RFC3339 time approves nothing); ``Prune=true`` on a resource overrides an app-level
``Prune=confirm`` or ``Prune=false``; a dry run or a sync without prune needs no confirmation.
``RespectIgnoreDifferences``: an existing object keeps the live values of fields ignored by JSON pointer, jq
expression or ``managedFieldsManagers`` (list items matched by name) while its other fields and new objects
get Git's values, and without the option Git's value wins; ignoreDifferences the engine cannot evaluate end
the operation Error with nothing written. ``FailOnSharedResource``: a request carrying the comparison's
shared-resource warnings fails at once with nothing written, and runs normally without the option.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sync.cluster import NotFound
from sync.engine_request import SyncRequest
from sync.models import ResourceKey
from sync.operation import OperationPhase, OperationState
from tests.sync.enginefixtures import (
    NS,
    OPTIONS,
    T0,
    Harness,
    application,
    cm,
    deployment,
    harness,
    new_op,
    ns_path,
)

APPROVED = "argocd.argoproj.io/deletion-approved"
WAITING_OLD = "waiting for pruning confirmation of /ConfigMap/old"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    yield from harness(tmp_path)


def _seed(h: Harness, *objs: dict[str, Any]) -> None:
    op, _ = h.run(new_op("seed"), lambda: h.request(list(objs)))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    h.sb.requests.clear()


def _data(h: Harness, name: str) -> dict[str, str] | None:
    try:
        return dict(h.cluster.get(ResourceKey("", "ConfigMap", NS, name)).get("data") or {})
    except NotFound:
        return None


def _deletes(h: Harness) -> list[str]:
    return [path.rsplit("/", 1)[1] for verb, path in h.writes() if verb == "delete"]


def _results(op: OperationState) -> dict[str, tuple[str, str]]:
    return {r.key.name: (r.status.value, r.message) for r in op.results}


# -- Prune=confirm ---------------------------------------------------------------------------------------


def test_prune_confirm_waits_for_an_approval_made_after_the_operation_started(h: Harness) -> None:
    _seed(h, cm("keep"), cm("old", ann={OPTIONS: "Prune=confirm"}), cm("other"))
    engine = h.engine()

    def build(approval: str | None) -> SyncRequest:
        app = application(annotations={APPROVED: approval} if approval is not None else None)
        return h.request([cm("keep", {"k": "2"})], app=app, prune=True)

    op = new_op()  # started at T0 = 2026-03-01T12:00:00Z
    for i, approval in enumerate([None, None, "2026-03-01T11:59:59Z", "yesterday", "2026-03-01 12:00:01"]):
        op = engine.tick(op, build(approval), now=T0 + timedelta(seconds=i))
        h.sb.tick()
        assert (op.phase, op.message) == (OperationPhase.RUNNING, WAITING_OLD), approval
    # nothing was pruned, and the step's apply waits with the prunes: only the first tick's dry run was written
    assert h.writes() == [("patch", ns_path("ConfigMap", "keep"))]
    assert _data(h, "old") == {"k": "v"} and _data(h, "other") == {"k": "v"} and _data(h, "keep") == {"k": "v"}

    # the moment the operation started, written with an offset, is approval enough (at or after startedAt)
    op, _ = h.run(op, lambda: build("2026-03-01T13:00:00+01:00"), engine=engine, start=T0 + timedelta(seconds=10))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert sorted(_deletes(h)) == ["old", "other"]
    assert _data(h, "old") is None and _data(h, "other") is None and _data(h, "keep") == {"k": "2"}
    assert _results(op)["old"] == ("Pruned", "pruned")


@pytest.mark.parametrize(
    ("annotation", "options", "result"),
    [
        pytest.param("", {"prune_confirm": True}, None, id="app-confirm-waits"),
        pytest.param("Prune=true", {"prune_confirm": True}, ("Pruned", "pruned"), id="resource-true-over-app-confirm"),
        pytest.param("Prune=true", {"prune_disabled": True}, ("Pruned", "pruned"), id="resource-true-over-app-false"),
        pytest.param("Prune=false", {"prune_confirm": True}, ("PruneSkipped", "ignored (no prune)"),
                     id="resource-false-over-app-confirm"),
        pytest.param("Prune=confirm", {"prune": False}, ("PruneSkipped", "ignored (requires pruning)"),
                     id="no-prune-no-confirmation"),
        pytest.param("Prune=confirm", {"dry_run": True}, ("Pruned", "pruned (dry run)"), id="dry-run"),
    ],
)
def test_which_prunes_need_confirmation(
    h: Harness, annotation: str, options: dict[str, Any], result: tuple[str, str] | None
) -> None:
    _seed(h, cm("keep"), cm("old", ann={OPTIONS: annotation} if annotation else None))
    build = lambda: h.request([cm("keep")], **{"prune": True, **options})  # noqa: E731
    if result is None:
        op = h.engine().tick(new_op(), build(), now=T0)
        assert (op.phase, op.message) == (OperationPhase.RUNNING, WAITING_OLD)
        assert _deletes(h) == [] and _data(h, "old") is not None
        return
    op, _ = h.run(new_op(), build)
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert _results(op)["old"] == result
    assert (_data(h, "old") is None) is (result == ("Pruned", "pruned"))


def test_an_earlier_wave_runs_while_a_later_prune_waits(h: Harness) -> None:
    _seed(h, cm("old", ann={OPTIONS: "Prune=confirm", "argocd.argoproj.io/sync-wave": "1"}))
    op = new_op()
    for i in range(3):
        op = h.engine().tick(op, h.request([cm("first")], prune=True), now=T0 + timedelta(seconds=i))
        h.sb.tick()
    assert (op.phase, op.message) == (OperationPhase.RUNNING, WAITING_OLD)
    assert _data(h, "first") == {"k": "v"} and _data(h, "old") is not None and _deletes(h) == []


# -- RespectIgnoreDifferences ------------------------------------------------------------------------------


def _scale_extra(h: Harness) -> None:
    """Another field manager takes ``data.extra`` over (a controller, a person with kubectl)."""
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": NS},
           "data": {"extra": "live"}}
    h.cluster.apply(obj, field_manager="other", force=True)


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param({"kind": "ConfigMap", "jsonPointers": ["/data/extra"]}, id="json-pointer"),
        pytest.param({"kind": "ConfigMap", "name": "cfg", "jqPathExpressions": [".data.extra"]}, id="jq"),
        pytest.param({"group": "*", "kind": "Config*", "managedFieldsManagers": ["other"]}, id="managed-fields"),
    ],
)
def test_respect_ignore_differences_keeps_the_live_value_of_ignored_fields(h: Harness, rule: dict[str, Any]) -> None:
    _seed(h, cm("cfg", {"k": "1", "extra": "git"}))
    _scale_extra(h)
    app = application(ignore_differences=[rule])
    targets = [cm("cfg", {"k": "2", "extra": "git"}), cm("fresh", {"k": "1", "extra": "git"})]

    op, _ = h.run(new_op(), lambda: h.request(targets, app=app, respect_ignore_differences=True))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert _data(h, "cfg") == {"k": "2", "extra": "live"}  # the ignored field kept, the other one synced
    assert _data(h, "fresh") == {"k": "1", "extra": "git"}  # a new object is created as Git has it

    op, _ = h.run(new_op("op-2"), lambda: h.request(targets, app=app))  # without the option Git wins
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert _data(h, "cfg") == {"k": "2", "extra": "git"}


def test_respect_ignore_differences_matches_list_items_by_name(h: Harness) -> None:
    _seed(h, deployment("web"))
    image = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
             "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.28"}]}}}}
    h.cluster.apply(image, field_manager="image-updater", force=True)
    rule = {"group": "apps", "kind": "Deployment",
            "jqPathExpressions": ['.spec.template.spec.containers[] | select(.name == "c") | .image']}
    target = deployment("web")
    target["spec"]["replicas"] = 2
    target["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    app = application(ignore_differences=[rule])

    op, _ = h.run(new_op(), lambda: h.request([target], app=app, respect_ignore_differences=True))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    live = h.cluster.get(ResourceKey("apps", "Deployment", NS, "web"))
    assert live["spec"]["replicas"] == 2
    assert [(c["name"], c["image"]) for c in live["spec"]["template"]["spec"]["containers"]] == [
        ("c", "nginx:1.28"), ("sidecar", "busybox")]


def test_ignore_differences_it_cannot_evaluate_end_the_operation_with_nothing_written(h: Harness) -> None:
    _seed(h, cm("cfg"))
    app = application(ignore_differences=[{"kind": "ConfigMap", "jqPathExpressions": [".data | keys"]}])
    op, _ = h.run(new_op(), lambda: h.request([cm("cfg", {"k": "2"})], app=app, respect_ignore_differences=True))
    assert op.phase is OperationPhase.ERROR
    assert op.message.startswith("InvalidSpecError: spec.ignoreDifferences[0].jqPathExpressions[0]: '.data | keys'")
    assert h.writes() == [] and _data(h, "cfg") == {"k": "v"}


# -- FailOnSharedResource -----------------------------------------------------------------------------------

SHARED = "ConfigMap/a is part of applications web and other"


def test_fail_on_shared_resource_fails_at_once_with_nothing_written(h: Harness) -> None:
    def build(**options: Any) -> SyncRequest:
        return dataclasses.replace(h.request([cm("b")], **options), shared_resources=(SHARED,))

    op, messages = h.run(new_op(), lambda: build(fail_on_shared_resource=True))
    assert (op.phase, op.message) == (OperationPhase.FAILED, f"Shared resource found: {SHARED}")
    assert messages == [op.message] and h.writes() == [] and h.gate.calls == []
    assert h.sink.actions() == ["sync.started", "sync.failed"]
    assert _data(h, "b") is None

    op, _ = h.run(new_op("op-2"), lambda: build())  # without the option the warning does not stop the sync
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert _data(h, "b") == {"k": "v"}

