"""Deletion as clients observe it: finalizers hold an object with deletionTimestamp until removed;
propagationPolicy Background (dependents collected after the owner), Foreground (the owner waits with
``foregroundDeletion`` until its dependents are gone), Orphan (dependents keep living, their
ownerReference removed); ownerReference garbage collection; namespace deletion cascading to its
objects (Terminating while something holds it, no new objects, 403); deletecollection with a selector;
CRDs: creating one makes its resource discoverable and usable, deleting it deletes its objects."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

import sandbox
from tests.sandbox.helpers import configmap, http


def _owned(name: str, owner: Any) -> dict[str, Any]:
    body = configmap(name)
    body["metadata"]["ownerReferences"] = [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid,
        "blockOwnerDeletion": True,
    }]
    return body


def _names(core: client.CoreV1Api, namespace: str = "default") -> list[str]:
    return sorted(i.metadata.name for i in core.list_namespaced_config_map(namespace).items)


def test_finalizer_holds_the_object(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    body = configmap("a")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_config_map("default", body)
    reply = core.delete_namespaced_config_map("a", "default")
    assert reply["metadata"]["deletionTimestamp"]
    held = core.read_namespaced_config_map("a", "default")
    assert held.metadata.deletion_timestamp is not None and held.metadata.finalizers == ["example.com/hold"]
    core.patch_namespaced_config_map("a", "default", {"metadata": {"finalizers": None}})
    assert _names(core) == []


def test_background_propagation_collects_dependents(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map("default", configmap("owner"))
    core.create_namespaced_config_map("default", _owned("child", owner))
    grandchild_owner = core.read_namespaced_config_map("child", "default")
    core.create_namespaced_config_map("default", _owned("grandchild", grandchild_owner))
    core.create_namespaced_config_map("default", configmap("bystander"))
    core.delete_namespaced_config_map("owner", "default", propagation_policy="Background")
    assert _names(core) == ["bystander"]


def test_dependent_with_a_live_owner_survives(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    first = core.create_namespaced_config_map("default", configmap("first"))
    second = core.create_namespaced_config_map("default", configmap("second"))
    child = _owned("child", first)
    child["metadata"]["ownerReferences"].append(
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "second", "uid": second.metadata.uid})
    core.create_namespaced_config_map("default", child)
    core.delete_namespaced_config_map("first", "default")
    assert _names(core) == ["child", "second"]


def test_foreground_waits_for_dependents(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map("default", configmap("owner"))
    child = _owned("child", owner)
    child["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_config_map("default", child)
    reply = core.delete_namespaced_config_map("owner", "default", propagation_policy="Foreground")
    assert reply["metadata"]["finalizers"] == ["foregroundDeletion"]
    waiting = core.read_namespaced_config_map("owner", "default")
    assert waiting.metadata.deletion_timestamp is not None
    assert core.read_namespaced_config_map("child", "default").metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("child", "default", {"metadata": {"finalizers": None}})
    assert _names(core) == []


def test_orphan_keeps_dependents(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map("default", configmap("owner"))
    core.create_namespaced_config_map("default", _owned("child", owner))
    core.delete_namespaced_config_map("owner", "default", propagation_policy="Orphan")
    assert _names(core) == ["child"]
    assert core.read_namespaced_config_map("child", "default").metadata.owner_references is None


def test_unknown_propagation_policy_is_rejected(sb: sandbox.Sandbox, api: client.ApiClient) -> None:
    client.CoreV1Api(api).create_namespaced_config_map("default", configmap("a"))
    reply = http(sb.url, "DELETE", "/api/v1/namespaces/default/configmaps/a?propagationPolicy=Sometimes")
    assert reply.status == 422 and "propagationPolicy" in reply.body["message"]


def test_namespace_deletion_cascades(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "team"}})
    core.create_namespaced_config_map("team", configmap("a"))
    held = configmap("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_config_map("team", held)
    core.create_namespaced_config_map("default", configmap("elsewhere"))
    core.delete_namespace("team")
    ns = core.read_namespace("team")
    assert ns.status.phase == "Terminating" and ns.metadata.deletion_timestamp is not None
    assert _names(core, "team") == ["held"]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("team", configmap("late"))
    assert err.value.status == 403
    core.patch_namespaced_config_map("held", "team", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as gone:
        core.read_namespace("team")
    assert gone.value.status == 404
    assert _names(core) == ["elsewhere"]


def test_delete_collection_with_selector(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", configmap("a", labels={"app": "x"}))
    core.create_namespaced_config_map("default", configmap("b", labels={"app": "x"}))
    core.create_namespaced_config_map("default", configmap("c", labels={"app": "y"}))
    core.delete_collection_namespaced_config_map("default", label_selector="app=x")
    assert _names(core) == ["c"]


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object"}},
                      "subresources": {"status": {}}}],
    },
}


def _widget(name: str) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": 1}}


def test_crd_makes_its_resource_usable(sb: sandbox.Sandbox, api: client.ApiClient) -> None:
    assert http(sb.url, "GET", "/apis/example.com/v1").status == 404
    made = client.ApiextensionsV1Api(api).create_custom_resource_definition(CRD)
    assert {c.type: c.status for c in made.status.conditions}["Established"] == "True"
    listing = http(sb.url, "GET", "/apis/example.com/v1").body
    entry = next(r for r in listing["resources"] if r["name"] == "widgets")
    assert (entry["kind"], entry["namespaced"], entry["shortNames"]) == ("Widget", True, ["wd"])
    assert any(g["name"] == "example.com" for g in http(sb.url, "GET", "/apis").body["groups"])
    dyn = dynamic.DynamicClient(api)
    widgets = dyn.resources.get(api_version="example.com/v1", kind="Widget")
    dyn.create(widgets, body=_widget("w1"), namespace="default")
    assert [w.metadata.name for w in dyn.get(widgets, namespace="default").items] == ["w1"]
    custom = client.CustomObjectsApi(api)
    status = custom.patch_namespaced_custom_object_status(
        "example.com", "v1", "default", "widgets", "w1", {"status": {"ready": True}})
    assert status["status"] == {"ready": True} and status["metadata"]["generation"] == 1


def test_crd_refuses_strategic_merge_patch_on_its_objects(sb: sandbox.Sandbox, api: client.ApiClient) -> None:
    client.ApiextensionsV1Api(api).create_custom_resource_definition(CRD)
    http(sb.url, "POST", "/apis/example.com/v1/namespaces/default/widgets", _widget("w1"))
    reply = http(sb.url, "PATCH", "/apis/example.com/v1/namespaces/default/widgets/w1", {"spec": {"size": 2}},
                 content_type="application/strategic-merge-patch+json")
    assert reply.status == 415
    reply = http(sb.url, "PATCH", "/apis/example.com/v1/namespaces/default/widgets/w1", {"spec": {"size": 2}},
                 content_type="application/merge-patch+json")
    assert reply.status == 200 and reply.body["metadata"]["generation"] == 2


def test_deleting_a_crd_deletes_its_objects(sb: sandbox.Sandbox, api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(CRD)
    for name in ("w1", "w2"):
        assert http(sb.url, "POST", "/apis/example.com/v1/namespaces/default/widgets", _widget(name)).status == 201
    ext.delete_custom_resource_definition("widgets.example.com")
    assert http(sb.url, "GET", "/apis/example.com/v1").status == 404
    assert sb.core.store.keys("example.com", "widgets") == []
    ext.create_custom_resource_definition(CRD)
    assert http(sb.url, "GET", "/apis/example.com/v1/widgets").body["items"] == []


def test_invalid_crd_is_422(sb: sandbox.Sandbox) -> None:
    bad = {**CRD, "metadata": {"name": "wrong.example.com"}}
    reply = http(sb.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", bad)
    assert reply.status == 422 and "metadata.name" in reply.body["message"]


def test_cluster_scoped_crd(sb: sandbox.Sandbox) -> None:
    crd = {**CRD, "metadata": {"name": "gadgets.example.com"},
           "spec": {**CRD["spec"], "scope": "Cluster",  # type: ignore[dict-item]
                    "names": {"plural": "gadgets", "kind": "Gadget"}}}
    assert http(sb.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd).status == 201
    body = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    assert http(sb.url, "POST", "/apis/example.com/v1/gadgets", body).status == 201
    assert http(sb.url, "POST", "/apis/example.com/v1/namespaces/default/gadgets", body).status == 404
    started = time.monotonic()
    assert http(sb.url, "GET", "/apis/example.com/v1/gadgets/g").body["metadata"]["name"] == "g"
    assert time.monotonic() - started < 5


def test_crd_serves_every_served_version(sb: sandbox.Sandbox) -> None:
    crd = {**CRD, "spec": {**CRD["spec"], "versions": [  # type: ignore[dict-item]
        {"name": "v1", "served": True, "storage": True},
        {"name": "v2", "served": True, "storage": False},
        {"name": "v0", "served": False, "storage": False},
    ]}}
    assert http(sb.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd).status == 201
    versions = [v["version"] for v in http(sb.url, "GET", "/apis/example.com").body["versions"]]
    assert versions == ["v1", "v2"]
    assert http(sb.url, "GET", "/apis/example.com/v0").status == 404
    assert http(sb.url, "POST", "/apis/example.com/v1/namespaces/default/widgets", _widget("w")).status == 201
    as_v2 = http(sb.url, "GET", "/apis/example.com/v2/namespaces/default/widgets/w").body
    assert as_v2["apiVersion"] == "example.com/v2" and as_v2["spec"] == {"size": 1}


def test_delete_collection_dry_run_keeps_everything(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", configmap("a", labels={"app": "x"}))
    core.delete_collection_namespaced_config_map("default", label_selector="app=x", dry_run="All")
    assert _names(core) == ["a"]
