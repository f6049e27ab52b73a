"""KubeCluster against the sandbox over HTTP, through the official client.

Covers: discovery (namespaced or not, unknown kinds, a CRD created by another client becomes known
after a refresh, our own CRD apply makes its kind usable at once); get; server-side apply create,
update, conflict between field managers and force; client-side apply (three-way, removed fields);
replace; dry-run writes nothing (apply and delete); delete with each propagation policy; list_managed
by tracking annotation and by label with one list per resource type; allowed namespaces.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sandbox
from sync import cluster, kube
from sync.cluster import ResourceKey, TrackingSelector
from sync.cluster_registry import ClusterEntry, ClusterRegistry

TRACK = "syncwarden.io/tracking-id"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sb() -> Iterator[sandbox.Sandbox]:
    with sandbox.start(port=0) as box:
        yield box


@pytest.fixture
def entry(sb: sandbox.Sandbox, tmp_path: Path) -> ClusterEntry:
    path = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
    return ClusterRegistry.load([path], environ={}).resolve(server=sb.url)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kc(entry: ClusterEntry, clock: Clock) -> Iterator[kube.KubeCluster]:
    c = kube.connect(entry, timeout_seconds=10, qps=0, clock=clock)
    yield c
    c.close()


def cm(name: str, ns: str = "default", data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, **meta},
        "data": data or {},
    }


def tracked(app: str, name: str, ns: str = "default", **kw: Any) -> dict[str, Any]:
    return cm(name, ns, annotations={TRACK: f"{app}:/ConfigMap:{ns}/{name}"}, **kw)


def ns_obj(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


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
WIDGET = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "w", "namespace": "default"},
    "spec": {"size": 3},
}


# -- discovery -------------------------------------------------------------------------------------------


def test_discovery(kc: kube.KubeCluster) -> None:
    info = kc.resource_for("apps/v1", "Deployment")
    assert (info.plural, info.namespaced) == ("deployments", True)
    assert {"get", "list", "watch", "patch"} <= info.verbs
    assert kc.is_namespaced("", "ConfigMap")
    assert not kc.is_namespaced("", "Namespace")
    assert not kc.is_namespaced("rbac.authorization.k8s.io", "ClusterRole")
    kinds = {(i.group, i.kind) for i in kc.served_resources()}
    assert {("", "ConfigMap"), ("apps", "Deployment"), ("batch", "Job")} <= kinds
    with pytest.raises(cluster.UnknownKind, match="example.com/v1/Nothing"):
        kc.resource_for("example.com/v1", "Nothing")


def test_crd_from_another_client_becomes_known_after_refresh(
    kc: kube.KubeCluster, entry: ClusterEntry, clock: Clock
) -> None:
    kc.served_resources()  # discovery is now cached
    other = kube.connect(entry, qps=0)
    other.apply(CRD)
    with pytest.raises(cluster.UnknownKind):
        kc.resource_for("example.com/v1", "Widget")  # a miss right after loading does not refresh
    clock.now += 5
    assert kc.resource_for("example.com/v1", "Widget").plural == "widgets"
    other.close()


def test_own_crd_apply_makes_kind_usable_at_once(kc: kube.KubeCluster) -> None:
    kc.served_resources()
    kc.apply(CRD)
    live = kc.apply(WIDGET)
    assert live["spec"] == {"size": 3}
    assert kc.get(ResourceKey("example.com", "Widget", "default", "w"))["spec"]["size"] == 3
    kc.delete(ResourceKey("apiextensions.k8s.io", "CustomResourceDefinition", "", "widgets.example.com"))
    with pytest.raises(cluster.UnknownKind):
        kc.resource_for("example.com/v1", "Widget")


# -- server-side apply ----------------------------------------------------------------------------------


def test_ssa_create_update_and_managed_fields(kc: kube.KubeCluster, sb: sandbox.Sandbox) -> None:
    created = kc.apply(cm("a", data={"k": "1"}))
    assert created["data"] == {"k": "1"}
    updated = kc.apply(cm("a", data={"k": "2"}))
    assert updated["data"] == {"k": "2"}
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    managers = {m["manager"] for m in updated["metadata"].get("managedFields", [])}
    assert managers == {"syncwarden"}
    patches = [r for r in sb.requests.writes() if r.verb == "patch"]
    assert len(patches) == 2
    assert all("apply-patch+yaml" in r.body_summary for r in patches)


def test_ssa_removes_fields_we_stopped_applying(kc: kube.KubeCluster) -> None:
    kc.apply(cm("a", data={"k": "1", "gone": "x"}))
    live = kc.apply(cm("a", data={"k": "1"}))
    assert live["data"] == {"k": "1"}


def test_ssa_conflict_and_force(kc: kube.KubeCluster) -> None:
    kc.apply(cm("a", data={"k": "1"}), field_manager="someone-else")
    with pytest.raises(cluster.Conflict) as info:
        kc.apply(cm("a", data={"k": "2"}))
    assert info.value.status == 409
    assert isinstance(info.value.__cause__, Exception)
    live = kc.apply(cm("a", data={"k": "2"}), force=True)
    assert live["data"] == {"k": "2"}


def test_missing_namespace_and_name_are_invalid(kc: kube.KubeCluster) -> None:
    with pytest.raises(cluster.Invalid, match="namespace for ConfigMap is missing"):
        kc.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    with pytest.raises(cluster.Invalid, match="metadata.name is missing"):
        kc.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
    with pytest.raises(cluster.NotFound):
        kc.apply(cm("x", ns="no-such-namespace"))


def test_cluster_scoped_object_drops_namespace(kc: kube.KubeCluster) -> None:
    live = kc.apply({**ns_obj("team"), "metadata": {"name": "team", "namespace": "ignored"}})
    assert live["metadata"]["name"] == "team"
    assert kc.get(ResourceKey("", "Namespace", "", "team"))["metadata"]["name"] == "team"


# -- client-side apply and replace ----------------------------------------------------------------------


def test_client_side_apply_three_way(kc: kube.KubeCluster) -> None:
    kc.apply(cm("c", data={"a": "1", "b": "2"}), mode="client-side")
    live = kc.apply(cm("c", data={"a": "9"}), mode="client-side")
    assert live["data"] == {"a": "9"}  # b was applied before and is no longer: removed
    assert "kubectl.kubernetes.io/last-applied-configuration" in live["metadata"]["annotations"]


def test_client_side_apply_keeps_fields_it_never_applied(kc: kube.KubeCluster, entry: ClusterEntry) -> None:
    kc.apply(cm("c", data={"a": "1"}), mode="client-side")
    other = kube.connect(entry, qps=0)
    other.apply(cm("c", data={"added": "by-other"}), field_manager="other")  # SSA by someone else
    live = kc.apply(cm("c", data={"a": "2"}), mode="client-side")
    assert live["data"] == {"a": "2", "added": "by-other"}
    other.close()


def test_replace(kc: kube.KubeCluster) -> None:
    kc.apply(cm("r", data={"a": "1"}), mode="replace")  # absent: created
    live = kc.apply(cm("r", data={"b": "2"}), mode="replace")
    assert live["data"] == {"b": "2"}


# -- dry run --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["server-side", "client-side", "replace"])
def test_dry_run_writes_nothing(kc: kube.KubeCluster, mode: str) -> None:
    preview = kc.apply(cm("d", data={"a": "1"}), dry_run=True, mode=mode)  # type: ignore[arg-type]
    assert preview["data"] == {"a": "1"}
    with pytest.raises(cluster.NotFound):
        kc.get(ResourceKey("", "ConfigMap", "default", "d"))
    kc.apply(cm("d", data={"a": "1"}))
    kc.apply(cm("d", data={"a": "2"}), dry_run=True, mode=mode)  # type: ignore[arg-type]
    assert kc.get(ResourceKey("", "ConfigMap", "default", "d"))["data"] == {"a": "1"}
    kc.delete(ResourceKey("", "ConfigMap", "default", "d"), dry_run=True)
    assert kc.get(ResourceKey("", "ConfigMap", "default", "d"))["data"] == {"a": "1"}


# -- delete ---------------------------------------------------------------------------------------------


def _parent_and_child(kc: kube.KubeCluster) -> tuple[ResourceKey, ResourceKey]:
    parent = kc.apply(cm("parent"))
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": parent["metadata"]["uid"]}
    kc.apply(cm("child", ownerReferences=[owner]))
    return ResourceKey("", "ConfigMap", "default", "parent"), ResourceKey("", "ConfigMap", "default", "child")


@pytest.mark.parametrize(
    ("policy", "child_survives"),
    [
        pytest.param("Background", False, id="background"),
        pytest.param("Foreground", False, id="foreground"),
        pytest.param("Orphan", True, id="orphan"),
    ],
)
def test_delete_propagation(kc: kube.KubeCluster, sb: sandbox.Sandbox, policy: str, child_survives: bool) -> None:
    parent, child = _parent_and_child(kc)
    kc.delete(parent, propagation=policy)  # type: ignore[arg-type]
    deletes = [r for r in sb.requests.writes() if r.verb == "delete"]
    assert deletes[-1].path == "/api/v1/namespaces/default/configmaps/parent"
    with pytest.raises(cluster.NotFound):
        kc.get(parent)
    if child_survives:
        assert not kc.get(child)["metadata"].get("ownerReferences")
    else:
        with pytest.raises(cluster.NotFound):
            kc.get(child)


def test_delete_missing_and_bad_policy(kc: kube.KubeCluster) -> None:
    with pytest.raises(cluster.NotFound, match="ConfigMap/default/nope"):
        kc.delete(ResourceKey("", "ConfigMap", "default", "nope"))
    with pytest.raises(cluster.Invalid, match="propagation"):
        kc.delete(ResourceKey("", "ConfigMap", "default", "x"), propagation="Sideways")  # type: ignore[arg-type]


# -- managed objects ------------------------------------------------------------------------------------


def test_list_managed_by_annotation_one_list_per_type(kc: kube.KubeCluster, sb: sandbox.Sandbox) -> None:
    kc.apply(ns_obj("other"))
    kc.apply(tracked("a", "one"))
    kc.apply(tracked("a", "two", ns="other"))
    kc.apply(tracked("b", "three"))
    kc.apply(cm("untracked"))
    kc.apply(cm("bad", annotations={TRACK: "a:garbage"}))
    parent = kc.get(ResourceKey("", "ConfigMap", "default", "one"))
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "one", "uid": parent["metadata"]["uid"]}
    kc.apply(tracked("a", "owned", ownerReferences=[owner]))
    kc.served_resources()
    sb.requests.clear()
    found = kc.list_managed(TrackingSelector(key=TRACK).for_app("a"), kinds=[("", "ConfigMap"), ("apps", "Deployment")])
    assert sorted((o["metadata"]["namespace"], o["metadata"]["name"]) for o in found) == [
        ("default", "one"),
        ("other", "two"),
    ]
    assert all(o["kind"] == "ConfigMap" and o["apiVersion"] == "v1" for o in found)
    assert [r.verb for r in sb.requests.records()] == ["list", "list"]
    sb.requests.clear()
    everything = kc.list_managed(TrackingSelector(key=TRACK).for_app("a"))
    assert len(everything) == 2
    lists = [r for r in sb.requests.records() if r.verb == "list"]
    assert len(lists) == len(kc.served_resources())


def test_list_managed_by_label(kc: kube.KubeCluster, sb: sandbox.Sandbox) -> None:
    kc.apply(cm("one", labels={TRACK: "a"}))
    kc.apply(cm("two", labels={TRACK: "b"}))
    kc.apply(tracked("a", "annotated-only"))
    sb.requests.clear()
    found = kc.list_managed(TrackingSelector(key=TRACK, method="label", app="a"), kinds=[("", "ConfigMap")])
    assert [o["metadata"]["name"] for o in found] == ["one"]
    assert [r.verb for r in sb.requests.records()] == ["list"]


def test_allowed_namespaces_are_enforced(entry: ClusterEntry, sb: sandbox.Sandbox) -> None:
    admin = kube.connect(entry, qps=0)
    admin.apply(ns_obj("web"))
    admin.apply(tracked("a", "in-web", ns="web"))
    admin.apply(tracked("a", "in-default"))
    restricted = kube.connect(
        ClusterEntry(
            name=entry.name,
            server=entry.server,
            context=entry.context,
            kubeconfig=entry.kubeconfig,
            namespaces=("web",),
        ),
        qps=0,
    )
    with pytest.raises(cluster.Forbidden, match="namespace 'default' is not allowed"):
        restricted.apply(cm("x"))
    with pytest.raises(cluster.Forbidden, match="cluster-scoped Namespace"):
        restricted.apply(ns_obj("another"))
    sb.requests.clear()
    found = restricted.list_managed(TrackingSelector(key=TRACK, app="a"), kinds=[("", "ConfigMap")])
    assert [o["metadata"]["name"] for o in found] == ["in-web"]
    assert all("/namespaces/web/" in r.path for r in sb.requests.records())
    admin.close()
    restricted.close()
