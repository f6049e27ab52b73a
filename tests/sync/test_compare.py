"""sync.compare: the decision table of per-resource and app sync status (argocd-sync-semantics §3.7), pairing,
``requiresPruning``, health, and what the engine is handed.

Aspects, one test (or parametrised row) each: Synced; OutOfSync for missing live, extraneous live (prune
candidate) and a modified field; IgnoreExtraneous; hooks, Skip targets, garbage hooks and live hooks carry no
status and are never pruned; copies failing the self-reference check get no status and are never handed to the
engine; a target the project does not permit is Unknown; a live object the project does not permit is dropped
entirely; a live-state load failure makes everything Unknown; health per resource and for the app; live
copies of one object under two API groups collapse; inputs are never mutated; ``to_dict`` is JSON.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from sync.cluster import Unavailable
from sync.compare import SyncStatus
from sync.health import Health
from sync.models import ResourceKey
from tests.sync.compare_fixtures import ANN, application, cm, key, live, row, run, tracked_by


def deployment(name: str = "api", replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}},
    }


HEALTHY_DEPLOY = {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "observedGeneration": 1}


def test_synced() -> None:
    c = run([cm()], [live(tracked_by(cm()))])
    r = row(c, "ConfigMap", "cfg")
    assert (r.status, c.sync_status) == (SyncStatus.SYNCED, SyncStatus.SYNCED)
    assert r.diff is not None and not r.diff.modified and r.diff.items == ()
    assert (r.key, r.version, r.requires_pruning, r.hook) == (key("ConfigMap", "cfg"), "v1", False, False)
    assert c.conditions == ()


def test_missing_live_is_out_of_sync_and_missing() -> None:
    c = run([cm()], [])
    r = row(c, "ConfigMap", "cfg")
    assert (r.status, c.sync_status) == (SyncStatus.OUT_OF_SYNC, SyncStatus.OUT_OF_SYNC)
    assert r.health is not None and r.health.status is Health.MISSING
    assert r.diff is not None and r.diff.modified
    assert c.health.status is Health.MISSING  # the app's only resource does not exist
    assert c.targets[0]["metadata"]["annotations"][ANN] == "gb:/ConfigMap:web/cfg"
    assert c.managed_live == ()


def test_modified_field_is_out_of_sync_with_a_readable_diff() -> None:
    c = run([cm(data={"k": "new"})], [live(tracked_by(cm(data={"k": "old"})))])
    r = row(c, "ConfigMap", "cfg")
    assert r.status is SyncStatus.OUT_OF_SYNC and c.sync_status is SyncStatus.OUT_OF_SYNC
    assert r.diff is not None
    assert [(i.op, i.path, i.old, i.new) for i in r.diff.items] == [("change", "/data/k", "old", "new")]
    assert "-  k: old" in r.diff.unified and "+  k: new" in r.diff.unified


def test_server_fields_and_status_are_not_differences() -> None:
    c = run([deployment()], [live(tracked_by(deployment()), **HEALTHY_DEPLOY)])
    assert row(c, "Deployment", "api").status is SyncStatus.SYNCED
    assert c.health.status is Health.HEALTHY


def test_extraneous_live_is_a_prune_candidate() -> None:
    extra = live(tracked_by(cm("old")))
    c = run([cm()], [live(tracked_by(cm())), extra])
    r = row(c, "ConfigMap", "old")
    assert (r.status, r.requires_pruning, r.diff) == (SyncStatus.OUT_OF_SYNC, True, None)
    assert c.sync_status is SyncStatus.OUT_OF_SYNC
    assert extra in c.managed_live  # the engine may prune it
    assert len(c.targets) == 1


def test_ignore_extraneous_keeps_the_app_synced() -> None:
    extra = live(tracked_by(cm("old", annotations={"argocd.argoproj.io/compare-options": "IgnoreExtraneous"})))
    c = run([cm()], [live(tracked_by(cm())), extra])
    assert row(c, "ConfigMap", "old").status is SyncStatus.OUT_OF_SYNC
    assert row(c, "ConfigMap", "old").requires_pruning
    assert c.sync_status is SyncStatus.SYNCED


def hook(name: str = "migrate", kind: str = "PreSync", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "annotations": {"argocd.argoproj.io/hook": kind, **extra}},
        "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "m:1"}]}}},
    }


def test_hook_target_has_no_status_and_does_not_affect_the_app() -> None:
    c = run([cm(), hook()], [live(tracked_by(cm()))])
    r = row(c, "Job", "migrate")
    assert (r.status, r.hook, r.diff, r.requires_pruning) == (None, True, None, False)
    assert c.sync_status is SyncStatus.SYNCED
    assert any(t["kind"] == "Job" for t in c.targets)  # the engine runs it


def test_live_hook_from_a_past_sync_is_never_pruned() -> None:
    old_hook = live(tracked_by(hook("migrate-abc")), succeeded=1)
    c = run([cm()], [live(tracked_by(cm())), old_hook])
    r = row(c, "Job", "migrate-abc")
    assert (r.status, r.hook, r.requires_pruning) == (None, True, False)
    assert c.sync_status is SyncStatus.SYNCED


def test_skip_target_has_no_status_and_its_live_twin_is_not_pruned() -> None:
    skipped = cm("skipped", annotations={"argocd.argoproj.io/hook": "Skip"})
    c = run([skipped], [live(tracked_by(cm("skipped", data={"other": "x"})))])
    r = row(c, "ConfigMap", "skipped")
    assert (r.status, r.requires_pruning, r.hook) == (None, False, False)
    assert c.sync_status is SyncStatus.SYNCED
    assert (c.targets, c.managed_live) == ((), ())  # the engine neither applies nor prunes it


def test_garbage_hook_is_dropped_entirely() -> None:
    c = run([cm(), hook("junk", kind="Nonsense")], [live(tracked_by(cm()))])
    assert [r.key.name for r in c.resources] == ["cfg"]
    assert all(t["metadata"]["name"] != "junk" for t in c.targets)


def test_deletion_only_hook_is_set_aside() -> None:
    c = run([cm(), hook("cleanup", kind="PostDelete")], [live(tracked_by(cm()))])
    assert [r.key.name for r in c.resources] == ["cfg"]
    assert [h["metadata"]["name"] for h in c.deletion_hooks] == ["cleanup"]


def test_copy_with_a_cloned_tracking_id_is_not_managed() -> None:
    # a tool copied the app's ConfigMap (annotation included) into another namespace
    copied = live(tracked_by(cm()))
    copied["metadata"]["namespace"] = "elsewhere"
    c = run([cm()], [live(tracked_by(cm())), copied])
    r = next(r for r in c.resources if r.key.namespace == "elsewhere")
    assert (r.status, r.requires_pruning) == (None, False)
    assert copied not in c.managed_live
    assert c.sync_status is SyncStatus.SYNCED


def test_target_not_permitted_is_unknown() -> None:
    c = run([cm(), cm("denied")], [], permitted=lambda o: o["metadata"]["name"] != "denied")
    assert row(c, "ConfigMap", "denied").status is SyncStatus.UNKNOWN
    assert row(c, "ConfigMap", "cfg").status is SyncStatus.OUT_OF_SYNC


def test_live_object_not_permitted_is_never_reported_or_pruned() -> None:
    outside = live(tracked_by(cm("x", ns="kube-system")))
    c = run([cm()], [live(tracked_by(cm())), outside], permitted=lambda o: o["metadata"].get("namespace") == "web")
    assert [r.key.name for r in c.resources] == ["cfg"]
    assert outside not in c.managed_live
    assert c.sync_status is SyncStatus.SYNCED


def test_live_load_failure_makes_everything_unknown() -> None:
    def fetch(k: ResourceKey) -> dict[str, Any] | None:
        raise Unavailable("get v1/ConfigMap web/cfg: Authorization: Bearer abc.def (HTTP 503)", status=503)

    c = run([cm()], [], fetch=fetch)
    assert (c.sync_status, c.health.status) == (SyncStatus.UNKNOWN, Health.UNKNOWN)
    assert c.resources == () and c.targets == ()
    assert [x.type for x in c.errors] == ["ComparisonError"]
    assert "HTTP 503" in c.errors[0].message and "abc.def" not in c.errors[0].message


def test_fetch_is_asked_only_for_targets_not_already_live() -> None:
    asked: list[ResourceKey] = []

    def fetch(k: ResourceKey) -> dict[str, Any] | None:
        asked.append(k)
        return None

    run([cm(), cm("other")], [live(tracked_by(cm()))], fetch=fetch)
    assert asked == [key("ConfigMap", "other")]


def test_health_per_resource_and_app() -> None:
    degraded = live(
        tracked_by(deployment()),
        replicas=2,
        updatedReplicas=2,
        observedGeneration=1,
        conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}],
    )
    c = run([deployment(), cm()], [degraded, live(tracked_by(cm()))])
    assert row(c, "Deployment", "api").health.status is Health.DEGRADED
    assert row(c, "ConfigMap", "cfg").health is None  # no check for ConfigMaps
    assert c.health.status is Health.DEGRADED
    assert "apps/Deployment:web/api" in c.health.message


def test_missing_resource_does_not_degrade_an_app_with_live_ones() -> None:
    c = run([deployment(), cm()], [live(tracked_by(deployment()), **HEALTHY_DEPLOY)])
    assert row(c, "ConfigMap", "cfg").health.status is Health.MISSING
    assert c.health.status is Health.HEALTHY


def test_sync_wave_and_resources_sorted() -> None:
    waved = cm("b", annotations={"argocd.argoproj.io/sync-wave": "3"})
    c = run([waved, cm("a"), deployment()], [])
    assert [(r.key.group, r.key.kind, r.key.name) for r in c.resources] == [
        ("", "ConfigMap", "a"),
        ("", "ConfigMap", "b"),
        ("apps", "Deployment", "api"),
    ]
    assert row(c, "ConfigMap", "b").sync_wave == 3


def test_live_copies_under_two_groups_collapse() -> None:
    ing = {"kind": "Ingress", "metadata": {"name": "web"}, "spec": {"rules": []}}
    target = {"apiVersion": "networking.k8s.io/v1", **copy.deepcopy(ing)}
    seen_new = live(tracked_by(target))
    seen_old = copy.deepcopy(seen_new)
    seen_old["apiVersion"] = "extensions/v1beta1"
    seen_old["metadata"]["annotations"][ANN] = "gb:extensions/Ingress:web/web"
    from tests.sync import compare_fixtures

    compare_fixtures.SCOPES[("networking.k8s.io", "Ingress")] = True
    compare_fixtures.SCOPES[("extensions", "Ingress")] = True
    try:
        c = run([target], [seen_old, seen_new])
    finally:
        del compare_fixtures.SCOPES[("networking.k8s.io", "Ingress")]
        del compare_fixtures.SCOPES[("extensions", "Ingress")]
    assert [(r.key.group, r.status) for r in c.resources] == [("networking.k8s.io", SyncStatus.SYNCED)]
    assert c.managed_live == (seen_new,)


def test_inputs_are_not_mutated() -> None:
    manifests = [cm(), deployment()]
    live_objs = [live(tracked_by(cm(data={"k": "old"}))), live(tracked_by(cm("extra")))]
    before = copy.deepcopy((manifests, live_objs))
    run(manifests, live_objs)
    assert (manifests, live_objs) == before


def test_to_dict_is_json() -> None:
    c = run([cm(data={"k": "new"}), hook()], [live(tracked_by(cm(data={"k": "old"}))), live(tracked_by(cm("x")))])
    doc = json.loads(json.dumps(c.to_dict()))
    assert doc["sync"] == {"status": "OutOfSync"}
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["cfg"]["diff"]["items"] == [{"op": "change", "path": "/data/k", "old": "old", "new": "new"}]
    assert by_name["x"]["requiresPruning"] is True
    assert by_name["migrate"]["status"] == "" and by_name["migrate"]["hook"] is True
    assert "targets" not in doc and "managed_live" not in doc


def test_app_in_another_namespace_uses_its_instance_name() -> None:
    app = application(namespace="team-a")
    c = run([cm()], [live(tracked_by(cm(), instance="team-a_gb"))], app=app)
    assert c.instance == "team-a_gb"
    assert row(c, "ConfigMap", "cfg").status is SyncStatus.SYNCED
    assert c.targets[0]["metadata"]["annotations"][ANN] == "team-a_gb:/ConfigMap:web/cfg"


def test_hooks_are_not_fetched_and_generate_name_never_pairs() -> None:
    asked: list[ResourceKey] = []

    def fetch(k: ResourceKey) -> dict[str, Any] | None:
        asked.append(k)
        return None

    seeded = hook("seed-", kind="PostSync")
    seeded["metadata"] = {"generateName": "seed-", "annotations": seeded["metadata"]["annotations"]}
    lookalike = live(tracked_by(hook("seed-2", kind="PostSync")))  # a past run named like the synthetic key
    c = run([cm(), hook(), seeded], [live(tracked_by(cm())), lookalike], fetch=fetch)
    assert asked == []
    runs = [r for r in c.resources if r.key.kind == "Job"]
    assert sorted(r.key.name for r in runs) == ["migrate", "seed-2", "seed-2"]  # synthetic key, and the past run
    assert all(r.status is None and r.hook for r in runs)
    assert lookalike in c.managed_live
