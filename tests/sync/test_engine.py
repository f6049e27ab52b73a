"""SyncEngine against the sandbox over HTTP, through KubeCluster: what a user observes of one sync operation.

Covers: plain manifests (gate, server dry-run of every object, server-side apply with our field manager,
tracking stamped, events); the exact order of writes for waves with PreSync/PostSync hooks (from the
sandbox's request log); a gate denial stops the whole sync with nothing written and every violation
reported; prune, prune disabled, ``Prune=false``, a project that refuses a prune, the empty-set guard and
allowEmpty; ApplyOutOfSyncOnly; CreateNamespace; selective sync; a dry-run operation; Replace; an unknown
kind fails the dry-run (closed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.cluster import NotFound
from sync.engine_request import SelectedResource
from sync.gate import Violation
from sync.models import ResourceKey
from sync.operation import OperationPhase, OperationState, ResultCode, TaskPhase
from tests.sync.enginefixtures import (
    NS,
    OPTIONS,
    POLICY,
    T0,
    WAVE,
    Harness,
    application,
    cm,
    deployment,
    harness,
    job,
    new_op,
    ns_path,
)

REV7 = "0123456"
UNIX = int(T0.timestamp())


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    yield from harness(tmp_path)


def results(op: OperationState) -> dict[str, tuple[str, str, str]]:
    return {
        f"{r.sync_phase.value}:{r.key.kind}/{r.key.name}": (r.status.value, r.task_phase.value, r.message)
        for r in op.results
    }


def test_plain_manifests_are_gated_dry_run_then_applied(h: Harness) -> None:
    targets = [deployment("web"), cm("cfg")]
    op, messages = h.run(new_op(), lambda: h.request(targets))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert messages == ["successfully synced (all tasks run)"]  # a single step succeeds right after apply
    cfg, web = ns_path("ConfigMap", "cfg"), ns_path("Deployment", "web")
    # dry-run of every object first (kind order: ConfigMap before Deployment), then the real applies
    assert h.writes() == [("patch", cfg), ("patch", web), ("patch", cfg), ("patch", web)]
    live = h.cluster.get(ResourceKey("", "ConfigMap", NS, "cfg"))
    assert live["metadata"]["annotations"]["syncwarden.io/tracking-id"] == f"web:/ConfigMap:{NS}/cfg"
    assert {m["manager"] for m in live["metadata"]["managedFields"]} == {"syncwarden"}
    (gate_call,) = h.gate.calls
    assert [o["metadata"]["name"] for o in gate_call.objects] == ["cfg", "web"]
    assert all("syncwarden.io/tracking-id" in o["metadata"]["annotations"] for o in gate_call.objects)
    assert (gate_call.trigger, gate_call.subject, gate_call.started_at) == ("manual", "alice", None)
    assert h.sink.actions() == ["sync.started", "sync.resource", "sync.resource", "sync.succeeded"]
    assert all(e.operation_id == "op-1" and e.app == "web" and e.project == "team" for e in h.sink.events)
    assert results(op)["Sync:ConfigMap/cfg"][0] == "Synced"


def test_waves_and_hooks_write_in_order_and_wait_for_health(h: Harness) -> None:
    targets = [
        job("post", "PostSync", generate=True, ann={POLICY: "HookSucceeded"}),
        deployment("web", ann={WAVE: "1"}),
        cm("cfg", ann={WAVE: "0"}),
        job("pre", "PreSync", generate=True),
    ]
    op, messages = h.run(new_op(), lambda: h.request(targets))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    pre, post = f"pre-{REV7}-presync-{UNIX}", f"post-{REV7}-postsync-{UNIX}"
    order = [ns_path("Job", pre), ns_path("ConfigMap", "cfg"), ns_path("Deployment", "web"), ns_path("Job", post)]
    pre_job, cfg, web, post_job = order
    # dry-runs, then the applies; a hook that completed first loses the hook finalizer (a second patch)
    assert h.writes() == [("patch", p) for p in order] + [
        ("patch", pre_job), ("patch", pre_job), ("patch", cfg), ("patch", web),
        ("patch", post_job), ("patch", post_job), ("delete", post_job),
    ]
    assert messages == [
        f"waiting for completion of hook batch/Job/{pre}",
        "waiting for healthy state of /ConfigMap/cfg",
        "waiting for healthy state of apps/Deployment/web",
        f"waiting for completion of hook batch/Job/{post}",
        "successfully synced (no more tasks)",
    ]
    assert results(op) == {
        f"PreSync:Job/{pre}": ("Synced", "Succeeded", "Reached expected number of succeeded pods"),
        "Sync:ConfigMap/cfg": ("Synced", "Succeeded", "/ConfigMap/cfg created"),
        "Sync:Deployment/web": ("Synced", "Succeeded", "apps/Deployment/web created"),
        f"PostSync:Job/{post}": ("Synced", "Succeeded", "Reached expected number of succeeded pods"),
    }
    # the PreSync hook (default policy BeforeHookCreation) stays; the PostSync one was cleaned up
    assert h.cluster.get(ResourceKey("batch", "Job", NS, pre))
    with pytest.raises(NotFound):
        h.cluster.get(ResourceKey("batch", "Job", NS, post))


def test_a_denied_object_stops_the_whole_sync_with_nothing_written(h: Harness) -> None:
    h.gate.violations = [
        Violation(
            "DestinationNotPermitted",
            "namespace 'kube-system' is not a destination of project 'team'",
            field="metadata.namespace",
        ),
        Violation("KindNotPermitted", "cluster-scoped kind ClusterRole is not permitted in project 'team'"),
    ]
    targets = [
        cm("cfg"),
        job("pre", "PreSync"),
        job("cleanup", "SyncFail"),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "kube-system"}},
    ]
    op, _ = h.run(new_op(), lambda: h.request(targets))

    assert op.phase is OperationPhase.FAILED
    assert "namespace 'kube-system' is not a destination" in op.message
    assert "ClusterRole is not permitted" in op.message
    assert [v["code"] for v in op.violations] == ["DestinationNotPermitted", "KindNotPermitted"]
    assert h.writes() == []
    # the whole desired set went to the gate, hooks (SyncFail included) too
    assert sorted(o["metadata"]["name"] for o in h.gate.calls[0].objects) == ["cfg", "cleanup", "pre", "x"]
    denied = h.sink.events[-1]
    assert (denied.action, denied.result, len(denied.violations)) == ("sync.denied", "denied", 2)


def _seed(h: Harness, *objs: dict[str, Any]) -> None:
    op, _ = h.run(new_op("seed"), lambda: h.request(list(objs)))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    h.sb.requests.clear()


def test_prune_deletes_what_left_git_with_the_propagation_policy(h: Harness) -> None:
    _seed(h, cm("keep"), cm("old"))
    op, _ = h.run(new_op(), lambda: h.request([cm("keep")], prune=True, prune_propagation="Background"))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert ("delete", ns_path("ConfigMap", "old")) in h.writes()
    assert results(op)["Sync:ConfigMap/old"] == ("Pruned", "Succeeded", "pruned")
    with pytest.raises(NotFound):
        h.cluster.get(ResourceKey("", "ConfigMap", NS, "old"))


@pytest.mark.parametrize(
    ("annotations", "options", "message"),
    [
        pytest.param({}, {"prune": False}, "ignored (requires pruning)", id="prune-off"),
        pytest.param({OPTIONS: "Prune=false"}, {"prune": True}, "ignored (no prune)", id="resource-prune-false"),
        pytest.param({}, {"prune": True, "prune_disabled": True}, "ignored (no prune)", id="app-prune-false"),
        pytest.param({}, {"prune": True, "refuse": True}, "ignored (not permitted by the project)", id="project"),
    ],
)
def test_prune_skipped(h: Harness, annotations: dict[str, str], options: dict[str, Any], message: str) -> None:
    _seed(h, cm("keep"), cm("old", ann=annotations))
    refuse = options.pop("refuse", False)
    op, _ = h.run(new_op(), lambda: h.request([cm("keep")], may_prune=lambda o: not refuse, **options))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert results(op)["Sync:ConfigMap/old"] == ("PruneSkipped", "Succeeded", message)
    assert not [w for w in h.writes() if w[0] == "delete"]
    assert h.cluster.get(ResourceKey("", "ConfigMap", NS, "old"))


def test_an_empty_desired_set_never_prunes_everything_unless_allow_empty(h: Harness) -> None:
    _seed(h, cm("a"), cm("b"))
    op, _ = h.run(new_op(), lambda: h.request([], prune=True))
    assert op.phase is OperationPhase.FAILED
    assert "desired set is empty" in op.message
    assert h.writes() == []

    op, _ = h.run(new_op("op-2"), lambda: h.request([], prune=True, allow_empty=True))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert sorted(w for w in h.writes() if w[0] == "delete") == [
        ("delete", ns_path("ConfigMap", "a")),
        ("delete", ns_path("ConfigMap", "b")),
    ]


def test_apply_out_of_sync_only_writes_only_what_changed(h: Harness) -> None:
    _seed(h, cm("same"), cm("changed"))
    targets = [cm("same"), cm("changed", {"k": "new"})]
    op, _ = h.run(new_op(), lambda: h.request(targets, apply_out_of_sync_only=True))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert h.writes() == [("patch", ns_path("ConfigMap", "changed"))] * 2
    assert h.cluster.get(ResourceKey("", "ConfigMap", NS, "changed"))["data"] == {"k": "new"}


def test_create_namespace_creates_the_destination_first_and_gates_it(h: Harness) -> None:
    app = application(dest_ns="fresh")
    op, _ = h.run(new_op(), lambda: h.request([cm("cfg")], app=app, create_namespace=True))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert h.writes() == [
        ("patch", "/api/v1/namespaces/fresh"),
        ("patch", ns_path("ConfigMap", "cfg", "fresh")),
        ("patch", ns_path("ConfigMap", "cfg", "fresh")),
    ]
    assert [o["kind"] for o in h.gate.calls[0].objects] == ["Namespace", "ConfigMap"]
    assert results(op)["PreSync:Namespace/fresh"] == ("Synced", "Succeeded", "namespace fresh created")


def test_selective_sync_touches_only_the_selected_resources_and_no_hooks(h: Harness) -> None:
    targets = [cm("a"), cm("b"), job("pre", "PreSync")]
    op, _ = h.run(new_op(), lambda: h.request(targets, resources=(SelectedResource("", "ConfigMap", "a"),)))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert h.writes() == [("patch", ns_path("ConfigMap", "a"))] * 2
    assert [o["metadata"]["name"] for o in h.gate.calls[0].objects] == ["a"]


def test_a_dry_run_operation_writes_nothing(h: Harness) -> None:
    _seed(h, cm("old"))
    op, _ = h.run(new_op(), lambda: h.request([cm("new"), job("pre", "PreSync")], dry_run=True, prune=True))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert results(op) == {
        "PreSync:Job/pre": ("Synced", "Succeeded", "dry run"),
        "Sync:ConfigMap/new": ("Synced", "Succeeded", "dry run"),
        "Sync:ConfigMap/old": ("Pruned", "Succeeded", "pruned (dry run)"),
    }
    assert not [w for w in h.writes() if w[0] == "delete"]
    with pytest.raises(NotFound):
        h.cluster.get(ResourceKey("", "ConfigMap", NS, "new"))
    assert h.cluster.get(ResourceKey("", "ConfigMap", NS, "old"))


def test_replace_creates_then_updates_instead_of_applying(h: Harness) -> None:
    op, _ = h.run(new_op(), lambda: h.request([cm("cfg")], replace=True))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert [v for v, _ in h.writes()] == ["create", "create"]  # dry-run, then real
    h.sb.requests.clear()
    op, _ = h.run(new_op("op-2"), lambda: h.request([cm("cfg", {"k": "2"})], replace=True))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert [v for v, _ in h.writes()] == ["update", "update"]


def test_an_unknown_kind_fails_the_dry_run_and_nothing_is_written(h: Harness) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    op, _ = h.run(new_op(), lambda: h.request([cm("cfg"), widget]))

    assert op.phase is OperationPhase.FAILED
    assert op.message.startswith("one or more objects failed to apply (dry run), reason: ")
    assert "example.com/v1/Widget" in op.message
    assert results(op)["Sync:Widget/w"][:2] == (ResultCode.SYNC_FAILED.value, TaskPhase.FAILED.value)
    # discovery refuses the Widget before any request for it: only the ConfigMap's dry-run reached the server
    assert h.writes() == [("patch", ns_path("ConfigMap", "cfg"))]


def test_prunes_run_in_reverse_waves_and_prune_last_after_everything(h: Harness) -> None:
    _seed(h, cm("keep"), cm("w1", ann={WAVE: "1"}), cm("w3", ann={WAVE: "3"}))
    op, _ = h.run(new_op(), lambda: h.request([cm("keep"), cm("late", ann={WAVE: "2"})], prune=True))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    order = [p.rsplit("/", 1)[1] for v, p in h.writes() if v == "delete" or p.endswith("/late")]
    assert order == ["late", "w3", "late", "w1"]  # dry-run of late; prune w3 (now wave 1); late (2); w1 (now 3)

    _seed(h, cm("keep"), cm("old", ann={WAVE: "-5"}))
    op, _ = h.run(
        new_op("op-3"), lambda: h.request([cm("keep"), cm("x", ann={WAVE: "4"})], prune=True, prune_last=True)
    )
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    order = [p.rsplit("/", 1)[1] for v, p in h.writes() if v == "delete" or p.endswith("/x")]
    assert order == ["x", "x", "late", "old"]  # both prunes after wave 4, whatever their own waves


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


def test_a_crd_and_its_custom_resource_in_one_sync(h: Harness) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}
    op, _ = h.run(new_op(), lambda: h.request([widget, CRD]))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert h.cluster.get(ResourceKey("example.com", "Widget", NS, "w"))["spec"] == {"size": 3}
    # the Widget's dry-run is skipped (its kind does not exist yet); the CRD is applied first
    kinds = [p.split("/")[-2] for _, p in h.writes()]
    assert kinds == ["customresourcedefinitions", "customresourcedefinitions", "widgets"]


def test_objects_in_a_namespace_created_by_the_same_sync(h: Harness) -> None:
    other = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}
    target = {**cm("cfg"), "metadata": {"name": "cfg", "namespace": "other"}}
    op, _ = h.run(new_op(), lambda: h.request([target, other]))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert h.cluster.get(ResourceKey("", "ConfigMap", "other", "cfg"))
    cfg = ns_path("ConfigMap", "cfg", "other")
    # the ConfigMap's dry-run is refused (no namespace yet) and skipped; the Namespace goes first for real
    assert h.writes() == [("patch", "/api/v1/namespaces/other"), ("patch", cfg)] * 2


def test_server_side_apply_by_default_and_client_side_when_a_resource_opts_out(h: Harness) -> None:
    _seed(h, cm("ssa"), cm("csa", ann={OPTIONS: "ServerSideApply=false"}))
    targets = [cm("ssa", {"k": "2"}), cm("csa", {"k": "2"}, ann={OPTIONS: "ServerSideApply=false"})]
    op, _ = h.run(new_op(), lambda: h.request(targets))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    media = {(r.path.rsplit("/", 1)[1], r.body_summary.split()[0]) for r in h.sb.requests.writes()}
    assert media == {("ssa", "application/apply-patch+yaml"), ("csa", "application/merge-patch+json")}
