"""PATCH through the HTTP API in every content type: JSON patch (with a failing ``test`` op as 422),
JSON merge patch, strategic merge patch (containers merged by name; refused for custom resources with
415, see test_lifecycle), an unknown media type (415); server-side apply through the DynamicClient:
create, managedFields per manager, 409 with causes on a conflict, ``force`` taking ownership, removal
of fields a manager stopped applying, fieldManager required, YAML bodies, dry-run apply; Update
managers recorded for plain writes. The merge semantics themselves are tested with the pure
``sandbox.patch``/``sandbox.ssa`` (test_patch.py, test_ssa.py); these tests prove the HTTP wiring."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

import sandbox
from tests.sandbox.helpers import configmap, deployment, http

CM_PATH = "/api/v1/namespaces/default/configmaps/a"


@pytest.fixture
def cm(api: client.ApiClient) -> client.CoreV1Api:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", configmap("a", data={"x": "1", "y": "2"}))
    return core


def test_json_patch(sb: sandbox.Sandbox, cm: client.CoreV1Api) -> None:
    ops = [{"op": "replace", "path": "/data/x", "value": "9"}, {"op": "remove", "path": "/data/y"}]
    reply = http(sb.url, "PATCH", CM_PATH, ops, content_type="application/json-patch+json")
    assert reply.status == 200 and reply.body["data"] == {"x": "9"}
    assert cm.read_namespaced_config_map("a", "default").data == {"x": "9"}


def test_json_patch_failing_test_op_is_422(sb: sandbox.Sandbox, cm: client.CoreV1Api) -> None:
    ops = [{"op": "test", "path": "/data/x", "value": "nope"}, {"op": "replace", "path": "/data/x", "value": "9"}]
    reply = http(sb.url, "PATCH", CM_PATH, ops, content_type="application/json-patch+json")
    assert reply.status == 422 and reply.body["kind"] == "Status"
    assert cm.read_namespaced_config_map("a", "default").data["x"] == "1"


def test_json_patch_must_be_a_list(sb: sandbox.Sandbox, cm: client.CoreV1Api) -> None:
    reply = http(sb.url, "PATCH", CM_PATH, {"op": "add"}, content_type="application/json-patch+json")
    assert reply.status == 400


def test_merge_patch_deletes_with_null(sb: sandbox.Sandbox, cm: client.CoreV1Api) -> None:
    reply = http(sb.url, "PATCH", CM_PATH, {"data": {"y": None, "z": "3"}},
                 content_type="application/merge-patch+json")
    assert reply.status == 200 and reply.body["data"] == {"x": "1", "z": "3"}


def test_strategic_merge_patch_merges_containers_by_name(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
    apps.create_namespaced_deployment("default", body)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}}
    done = apps.patch_namespaced_deployment("web", "default", patch)  # the client sends strategic merge
    images = {c.name: c.image for c in done.spec.template.spec.containers}
    assert images == {"web": "nginx:2", "side": "busybox"}
    assert done.metadata.generation == 2


def test_stale_resource_version_in_patch_conflicts(sb: sandbox.Sandbox, cm: client.CoreV1Api) -> None:
    reply = http(sb.url, "PATCH", CM_PATH, {"metadata": {"resourceVersion": "1"}, "data": {"x": "2"}},
                 content_type="application/merge-patch+json")
    assert reply.status == 409 and reply.body["reason"] == "Conflict"


def test_unknown_patch_type_is_415(sb: sandbox.Sandbox, cm: client.CoreV1Api) -> None:
    reply = http(sb.url, "PATCH", CM_PATH, {"data": {}}, content_type="text/plain")
    assert reply.status == 415 and reply.body["reason"] == "UnsupportedMediaType"


def test_patch_of_missing_object_is_404(sb: sandbox.Sandbox) -> None:
    reply = http(sb.url, "PATCH", CM_PATH, {"data": {}}, content_type="application/merge-patch+json")
    assert reply.status == 404


def _apply(dyn: dynamic.DynamicClient, body: dict[str, Any], manager: str, *, force: bool = False) -> Any:
    resource = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    return dyn.server_side_apply(resource, body=body, name=body["metadata"]["name"], namespace="default",
                                 field_manager=manager, force_conflicts=force)


def _managers(obj: Any) -> dict[str, str]:
    return {m["manager"]: m["operation"] for m in obj.to_dict()["metadata"]["managedFields"]}


def test_server_side_apply_creates_and_records_manager(api: client.ApiClient) -> None:
    dyn = dynamic.DynamicClient(api)
    made = _apply(dyn, configmap("a", data={"x": "1"}), "syncwarden")
    assert made.data.x == "1" and made.metadata.uid
    assert _managers(made) == {"syncwarden": "Apply"}
    fields = made.to_dict()["metadata"]["managedFields"][0]
    assert fields["fieldsType"] == "FieldsV1" and "f:data" in fields["fieldsV1"]


def test_server_side_apply_conflict_and_force(api: client.ApiClient) -> None:
    dyn = dynamic.DynamicClient(api)
    _apply(dyn, deployment("web", replicas=2), "syncwarden")
    with pytest.raises(ApiException) as err:
        _apply(dyn, deployment("web", replicas=5), "someone-else")
    assert err.value.status == 409
    status = json.loads(err.value.body)
    assert status["reason"] == "Conflict" and "syncwarden" in status["message"]
    cause = status["details"]["causes"][0]
    assert (cause["field"], cause["reason"]) == (".spec.replicas", "FieldManagerConflict")
    forced = _apply(dyn, deployment("web", replicas=5), "someone-else", force=True)
    assert forced.spec.replicas == 5
    assert _managers(forced) == {"syncwarden": "Apply", "someone-else": "Apply"}


def test_server_side_apply_removes_fields_no_longer_applied(api: client.ApiClient) -> None:
    dyn = dynamic.DynamicClient(api)
    _apply(dyn, configmap("a", data={"x": "1", "y": "2"}), "syncwarden")
    after = _apply(dyn, configmap("a", data={"x": "1"}), "syncwarden")
    assert after.to_dict()["data"] == {"x": "1"}


def test_server_side_apply_requires_field_manager(sb: sandbox.Sandbox) -> None:
    reply = http(sb.url, "PATCH", CM_PATH, json.dumps(configmap("a")),
                 content_type="application/apply-patch+yaml")
    assert reply.status == 422 and "fieldManager" in reply.body["message"]


def test_server_side_apply_accepts_yaml(sb: sandbox.Sandbox) -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: 'from yaml'\n"
    reply = http(sb.url, "PATCH", CM_PATH + "?fieldManager=me", text, content_type="application/apply-patch+yaml")
    assert reply.status == 201 and reply.body["data"] == {"x": "from yaml"}


def test_server_side_apply_bad_yaml_is_400(sb: sandbox.Sandbox) -> None:
    reply = http(sb.url, "PATCH", CM_PATH + "?fieldManager=me", "a: [", content_type="application/apply-patch+yaml")
    assert reply.status == 400 and reply.body["kind"] == "Status"


def test_server_side_apply_dry_run(sb: sandbox.Sandbox) -> None:
    reply = http(sb.url, "PATCH", CM_PATH + "?fieldManager=me&dryRun=All", configmap("a"),
                 content_type="application/apply-patch+yaml")
    assert reply.status == 201 and reply.body["metadata"]["name"] == "a"
    assert http(sb.url, "GET", CM_PATH).status == 404


def test_plain_writes_record_update_managers(sb: sandbox.Sandbox) -> None:
    reply = http(sb.url, "POST", "/api/v1/namespaces/default/configmaps?fieldManager=creator", configmap("a"))
    assert reply.status == 201
    entries = reply.body["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"]) for e in entries] == [("creator", "Update")]
    patched = http(sb.url, "PATCH", CM_PATH + "?fieldManager=editor", {"data": {"k": "2"}},
                   content_type="application/merge-patch+json").body
    assert {(e["manager"], e["operation"]) for e in patched["metadata"]["managedFields"]} >= {("editor", "Update")}
