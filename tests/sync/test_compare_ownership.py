"""sync.compare: target normalisation (argocd-sync-semantics §3.2), live selection, adoption and the other-app
rule (§3.3), ignoreDifferences (§1.12, §3.5).

Aspects: namespace defaulting from discovery scope, cluster-scoped namespaces cleared, the tracking id stamped
after defaulting; a kind the cluster does not know fails closed (ComparisonError, Unknown, not handed to the
engine) unless a CRD among the targets defines its scope; a namespaced target with no namespace at all is an
InvalidSpecError; duplicates collapse to the last with a RepeatedResourceWarning; generateName objects do not
collide. Adoption of an untracked object by key; an object tracked by another app is never synced or pruned
(SharedResourceWarning), even with ownerReferences; another app's objects elsewhere are invisible; objects
with ownerReferences are not ours to prune; label→annotation migration shows no diff; label tracking.
ignoreDifferences by group/kind glob, name and namespace; managedFieldsManagers; jq expressions outside the subset
and bad pointers refused as InvalidSpecError (the subset itself: test_compare_jq).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from config.settings import SyncSettings
from sync.compare import SyncStatus
from sync.health import Health
from tests.sync.compare_fixtures import ANN, LBL, application, cm, key, live, row, run, tracked_by

# -- target normalisation ----------------------------------------------------------------------------------


def test_namespace_defaulting_and_cluster_scope() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web", "namespace": "bogus"}}
    c = run([cm(), cm("pinned", ns="other"), ns], [])
    assert {r.key for r in c.resources} == {
        key("ConfigMap", "cfg"),
        key("ConfigMap", "pinned", "other"),
        key("Namespace", "web", ""),
    }
    by_name = {t["metadata"]["name"]: t for t in c.targets}
    assert "namespace" not in by_name["web"]["metadata"]
    assert by_name["web"]["metadata"]["annotations"][ANN] == "gb:/Namespace:web/web"  # destination namespace
    assert by_name["cfg"]["metadata"]["namespace"] == "web"
    assert by_name["pinned"]["metadata"]["annotations"][ANN] == "gb:/ConfigMap:other/pinned"


def widget() -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}}


def test_unknown_kind_fails_closed() -> None:
    c = run([cm(), widget()], [])
    assert c.sync_status is SyncStatus.UNKNOWN
    [err] = c.errors
    assert err.type == "ComparisonError"
    assert "manifests[1]" in err.message and "example.com/v1/Widget 'w'" in err.message
    assert row(c, "Widget", "w").status is SyncStatus.UNKNOWN
    assert all(t["kind"] != "Widget" for t in c.targets)  # never applied to a guessed namespace


def test_crd_among_targets_gives_the_scope() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"}},
    }
    c = run([crd, widget()], [])
    assert c.errors == () and c.sync_status is SyncStatus.OUT_OF_SYNC
    assert row(c, "Widget", "w").key == key("Widget", "w", group="example.com")
    stamped = {t["kind"]: t for t in c.targets}
    assert stamped["Widget"]["metadata"]["annotations"][ANN] == "gb:example.com/Widget:web/w"
    assert "annotations" not in stamped["CustomResourceDefinition"]["metadata"]  # CRDs are never tracked


def test_namespaced_target_without_any_namespace_is_invalid_spec() -> None:
    c = run([cm()], [], app=application(dest_ns=""))
    assert [(x.type, x.message) for x in c.errors] == [
        ("InvalidSpecError", "Namespace for cfg v1/ConfigMap is missing.")
    ]


def test_duplicates_collapse_to_the_last() -> None:
    c = run([cm(data={"v": "1"}), cm(ns="web", data={"v": "2"})], [])
    assert [r.key for r in c.resources] == [key("ConfigMap", "cfg")]
    assert [t["data"] for t in c.targets] == [{"v": "2"}]
    assert [(x.type, x.message) for x in c.conditions] == [
        ("RepeatedResourceWarning", "Resource /ConfigMap/web/cfg appeared 2 times among application resources.")
    ]
    assert c.errors == ()


def test_generate_name_objects_do_not_collide() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"generateName": "seed-", "annotations": {"argocd.argoproj.io/hook": "PostSync"}},
    }
    c = run([job, copy.deepcopy(job)], [])
    assert len([r for r in c.resources if r.key.kind == "Job"]) == 2
    assert c.conditions == ()
    assert all("name" not in t["metadata"] for t in c.targets)  # the planner names hooks


# -- selection, adoption, other apps ------------------------------------------------------------------------


def test_untracked_object_at_a_target_key_is_adopted() -> None:
    untracked = live({**cm(), "metadata": {"name": "cfg", "namespace": "web"}})
    c = run([cm()], [untracked])
    r = row(c, "ConfigMap", "cfg")
    assert r.status is SyncStatus.OUT_OF_SYNC  # only the tracking annotation is missing
    assert r.diff is not None and [i.path for i in r.diff.items] == ["/metadata/annotations"]
    assert untracked in c.managed_live and len(c.targets) == 1
    assert c.conditions == ()


def test_adoption_through_fetch() -> None:
    untracked = live({**cm(), "metadata": {"name": "cfg", "namespace": "web"}})
    c = run([cm()], [], fetch=lambda k: untracked if k == key("ConfigMap", "cfg") else None)
    assert row(c, "ConfigMap", "cfg").status is SyncStatus.OUT_OF_SYNC
    assert c.managed_live == (untracked,)


@pytest.mark.parametrize("owner_refs", [False, True], ids=["top-level", "with-owner-references"])
def test_object_tracked_by_another_app_is_never_synced_or_pruned(owner_refs: bool) -> None:
    theirs = live(tracked_by(cm(), instance="other"))
    if owner_refs:
        theirs["metadata"]["ownerReferences"] = [{"uid": "p", "kind": "X", "name": "x", "apiVersion": "v1"}]
    c = run([cm(), cm("mine")], [theirs, live(tracked_by(cm("mine")))])
    r = row(c, "ConfigMap", "cfg")
    assert r.shared_with == "other"
    assert [(x.type, x.message) for x in c.conditions] == [
        ("SharedResourceWarning", "ConfigMap/cfg is part of applications gb and other")
    ]
    assert [t["metadata"]["name"] for t in c.targets] == ["mine"]
    assert theirs not in c.managed_live
    assert c.to_dict()["resources"][0]["sharedWith"] == "other"


def test_shared_resource_status_compares_content_only() -> None:
    same = run([cm()], [live(tracked_by(cm(), instance="other"))])
    assert row(same, "ConfigMap", "cfg").status is SyncStatus.SYNCED
    assert same.sync_status is SyncStatus.SYNCED
    different = run([cm(data={"k": "mine"})], [live(tracked_by(cm(data={"k": "theirs"}), instance="other"))])
    r = row(different, "ConfigMap", "cfg")
    assert r.status is SyncStatus.OUT_OF_SYNC and different.sync_status is SyncStatus.OUT_OF_SYNC
    assert r.diff is not None and [i.path for i in r.diff.items] == ["/data/k"]  # not the tracking id


def test_shared_resource_found_through_fetch() -> None:
    theirs = live(tracked_by(cm(), instance="other"))
    c = run([cm()], [], fetch=lambda k: theirs)
    assert row(c, "ConfigMap", "cfg").shared_with == "other"
    assert c.targets == () and c.managed_live == ()


def test_other_apps_objects_elsewhere_are_invisible() -> None:
    c = run([cm()], [live(tracked_by(cm())), live(tracked_by(cm("theirs"), instance="other"))])
    assert [r.key.name for r in c.resources] == ["cfg"]
    assert c.conditions == ()


def test_tracked_children_are_not_prune_candidates() -> None:
    child = live(tracked_by(cm("child")))
    child["metadata"]["ownerReferences"] = [{"uid": "p", "kind": "X", "name": "x", "apiVersion": "v1"}]
    c = run([cm()], [live(tracked_by(cm())), child])
    assert [r.key.name for r in c.resources] == ["cfg"]


def test_label_tracked_object_migrates_to_annotation_without_diff() -> None:
    old = live({**cm(), "metadata": {"name": "cfg", "namespace": "web", "labels": {LBL: "gb"}}})
    c = run([cm()], [old])
    assert row(c, "ConfigMap", "cfg").status is SyncStatus.SYNCED


def test_label_tracking() -> None:
    settings = SyncSettings(tracking_method="label")
    ours = live({**cm(), "metadata": {"name": "cfg", "namespace": "web", "labels": {LBL: "gb"}}})
    extra = live({**cm("extra"), "metadata": {"name": "extra", "namespace": "web", "labels": {LBL: "gb"}}})
    theirs = live({**cm("t"), "metadata": {"name": "t", "namespace": "web", "labels": {LBL: "other"}}})
    c = run([cm(), cm("t")], [ours, extra, theirs], settings=settings)
    assert row(c, "ConfigMap", "cfg").status is SyncStatus.SYNCED
    assert row(c, "ConfigMap", "extra").requires_pruning
    assert row(c, "ConfigMap", "t").shared_with == "other"
    assert c.targets[0]["metadata"]["labels"] == {LBL: "gb"}


# -- ignoreDifferences --------------------------------------------------------------------------------------


def deploy(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }


@pytest.mark.parametrize(
    ("entry", "ignored"),
    [
        pytest.param({"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}, True, id="exact"),
        pytest.param({"group": "*", "kind": "Deploy*", "jsonPointers": ["/spec/replicas"]}, True, id="globs"),
        pytest.param(
            {"group": "", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}, False, id="empty-group-is-core"
        ),
        pytest.param(
            {
                "group": "apps",
                "kind": "Deployment",
                "name": "api",
                "namespace": "web",
                "jsonPointers": ["/spec/replicas"],
            },
            True,
            id="name-and-namespace",
        ),
        pytest.param(
            {"group": "apps", "kind": "Deployment", "name": "other", "jsonPointers": ["/spec/replicas"]},
            False,
            id="other-name",
        ),
        pytest.param(
            {"group": "apps", "kind": "Deployment", "namespace": "prod", "jsonPointers": ["/spec/replicas"]},
            False,
            id="other-namespace",
        ),
        pytest.param(
            {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/missing"]},
            False,
            id="missing-path-is-harmless",
        ),
    ],
)
def test_ignore_differences_json_pointers(entry: dict[str, Any], ignored: bool) -> None:
    c = run([deploy(2)], [live(tracked_by(deploy(5)))], app=application(ignore=[entry]))
    assert row(c, "Deployment", "api").status is (SyncStatus.SYNCED if ignored else SyncStatus.OUT_OF_SYNC)
    assert c.errors == ()


def test_ignore_differences_managed_fields_managers() -> None:
    scaled = live(tracked_by(deploy(5)))
    scaled["metadata"]["managedFields"] = [
        {"manager": "hpa-controller", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    ]
    plain = run([deploy(2)], [scaled])
    assert row(plain, "Deployment", "api").status is SyncStatus.OUT_OF_SYNC
    entry = {"group": "apps", "kind": "Deployment", "managedFieldsManagers": ["hpa-controller"]}
    trusted = run([deploy(2)], [scaled], app=application(ignore=[entry]))
    assert row(trusted, "Deployment", "api").status is SyncStatus.SYNCED


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        pytest.param(
            {"kind": "Deployment", "jqPathExpressions": [".spec | keys"]},
            "spec.ignoreDifferences[0].jqPathExpressions[0]",
            id="jq-outside-the-subset",
        ),
        pytest.param(
            {"kind": "Deployment", "jsonPointers": ["spec/replicas"]},
            "spec.ignoreDifferences[0].jsonPointers[0]",
            id="bad-pointer",
        ),
    ],
)
def test_unsupported_ignore_differences_are_refused(entry: dict[str, Any], field: str) -> None:
    c = run([deploy(2)], [live(tracked_by(deploy(5)))], app=application(ignore=[entry]))
    assert (c.sync_status, c.health.status) == (SyncStatus.UNKNOWN, Health.UNKNOWN)
    [err] = c.errors
    assert err.type == "InvalidSpecError" and err.message.startswith(field)
    assert c.targets == () and c.managed_live == ()
