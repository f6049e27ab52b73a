"""Object semantics through the typed client: uid, one global monotonically increasing
resourceVersion, generation bumped on spec changes only, creationTimestamp, generateName; the errors
(409 AlreadyExists, 409 Conflict on a stale resourceVersion, 404 for a missing namespace, URL scope,
400 for a body that does not match the URL), each a Kubernetes ``Status``; ``dryRun=All`` on every
write stores nothing and answers as if it had."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

import sandbox
from tests.sandbox.helpers import configmap, deployment, http


def _status(exc: ApiException) -> dict[str, object]:
    body: dict[str, object] = json.loads(exc.body)
    return body


def test_create_sets_identity_and_bookkeeping(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    made = core.create_namespaced_config_map("default", configmap("a"))
    assert made.metadata.uid and made.metadata.creation_timestamp is not None
    assert made.metadata.generation == 1 and made.metadata.namespace == "default"
    again = core.read_namespaced_config_map("a", "default")
    assert again.metadata.uid == made.metadata.uid
    assert again.metadata.resource_version == made.metadata.resource_version


def test_resource_version_is_global_and_increasing(api: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    first = int(core.create_namespaced_config_map("default", configmap("a")).metadata.resource_version)
    second = int(apps.create_namespaced_deployment("default", deployment("web")).metadata.resource_version)
    third = int(core.patch_namespaced_config_map("a", "default", {"data": {"k": "w"}}).metadata.resource_version)
    assert first < second < third
    listed = core.list_namespaced_config_map("default")
    assert int(listed.metadata.resource_version) >= third


def test_generation_follows_spec_only(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", deployment("web"))
    labelled = apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"x": "y"}}})
    assert labelled.metadata.generation == 1
    status = apps.patch_namespaced_deployment_status("web", "default", {"status": {"replicas": 7}})
    assert status.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2
    again = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}})
    assert again.metadata.generation == 2


def test_generate_name(api: client.ApiClient) -> None:
    body = configmap("x")
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "cfg-"
    made = client.CoreV1Api(api).create_namespaced_config_map("default", body)
    assert made.metadata.name.startswith("cfg-") and len(made.metadata.name) == len("cfg-") + 5


def test_already_exists(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", configmap("a"))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", configmap("a"))
    assert err.value.status == 409
    status = _status(err.value)
    assert status["kind"] == "Status" and status["reason"] == "AlreadyExists"
    assert status["message"] == 'configmaps "a" already exists'


def test_stale_resource_version_conflicts(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    old = core.create_namespaced_config_map("default", configmap("a"))
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "new"}})
    old.data = {"k": "mine"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("a", "default", old)
    assert err.value.status == 409 and _status(err.value)["reason"] == "Conflict"
    assert "the object has been modified" in str(_status(err.value)["message"])
    assert core.read_namespaced_config_map("a", "default").data == {"k": "new"}


def test_update_with_current_version_succeeds(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    live = core.create_namespaced_config_map("default", configmap("a"))
    live.data = {"k": "mine"}
    done = core.replace_namespaced_config_map("a", "default", live)
    assert done.data == {"k": "mine"}
    assert int(done.metadata.resource_version) > int(live.metadata.resource_version)


def test_missing_namespace_is_404(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).create_namespaced_config_map("nowhere", configmap("a"))
    assert err.value.status == 404
    assert _status(err.value)["message"] == 'namespaces "nowhere" not found'


def test_missing_object_is_404(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(api).read_namespaced_deployment("ghost", "default")
    status = _status(err.value)
    assert err.value.status == 404 and status["reason"] == "NotFound"
    assert status["details"] == {"name": "ghost", "group": "apps", "kind": "deployments"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/namespaces/default/namespaces/default"),  # cluster-scoped inside a namespace
        ("GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/clusterroles"),
        ("GET", "/api/v1/configmaps/a"),  # namespaced by name without a namespace
        ("POST", "/api/v1/configmaps"),
        ("GET", "/api/v1/namespaces/default/configmaps/a/status"),  # no status subresource
    ],
)
def test_url_scope_is_checked(sb: sandbox.Sandbox, method: str, path: str) -> None:
    reply = http(sb.url, method, path, configmap("a") if method == "POST" else None)
    assert reply.status == 404 and reply.body["kind"] == "Status"


def test_list_across_namespaces_is_allowed(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "other"}})
    core.create_namespaced_config_map("default", configmap("a"))
    core.create_namespaced_config_map("other", configmap("b"))
    names = sorted(i.metadata.name for i in core.list_config_map_for_all_namespaces().items)
    assert names == ["a", "b"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**configmap("a"), "kind": "Secret"}, "does not match"),
        (configmap("a", namespace="other"), "namespace of the provided object does not match"),
        ({**configmap("a"), "metadata": {"name": "Bad_Name"}}, "RFC 1123"),
        ({**configmap("a"), "metadata": {}}, "name or generateName is required"),
    ],
    ids=["kind", "namespace", "invalid-name", "no-name"],
)
def test_bad_bodies_are_rejected(sb: sandbox.Sandbox, body: dict[str, object], message: str) -> None:
    reply = http(sb.url, "POST", "/api/v1/namespaces/default/configmaps", body)
    assert reply.status in (400, 422) and reply.body["kind"] == "Status"
    assert message in reply.body["message"]


def test_unparseable_body_is_400(sb: sandbox.Sandbox) -> None:
    reply = http(sb.url, "POST", "/api/v1/namespaces/default/configmaps", b"{not json")
    assert reply.status == 400 and reply.body["reason"] == "BadRequest"


def test_url_name_must_match_body(sb: sandbox.Sandbox, api: client.ApiClient) -> None:
    client.CoreV1Api(api).create_namespaced_config_map("default", configmap("a"))
    reply = http(sb.url, "PUT", "/api/v1/namespaces/default/configmaps/a", configmap("b"))
    assert reply.status == 400 and "does not match the name on the URL" in reply.body["message"]


def test_dry_run_on_every_write(sb: sandbox.Sandbox, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    made = core.create_namespaced_config_map("default", configmap("ghost"), dry_run="All")
    assert made.metadata.uid and made.metadata.name == "ghost"
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("ghost", "default")
    live = core.create_namespaced_config_map("default", configmap("a"))
    rv = sb.core.store.resource_version
    live.data = {"k": "dry"}
    assert core.replace_namespaced_config_map("a", "default", live, dry_run="All").data == {"k": "dry"}
    assert core.patch_namespaced_config_map("a", "default", {"data": {"k": "p"}}, dry_run="All").data == {"k": "p"}
    core.delete_namespaced_config_map("a", "default", dry_run="All")
    assert core.read_namespaced_config_map("a", "default").data == {"k": "v"}
    assert sb.core.store.resource_version == rv


def test_dry_run_value_is_validated(sb: sandbox.Sandbox) -> None:
    reply = http(sb.url, "POST", "/api/v1/namespaces/default/configmaps?dryRun=Some", configmap("a"))
    assert reply.status == 400 and "dryRun" in reply.body["message"]


def test_delete_returns_success_status(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", configmap("a"))
    status = core.delete_namespaced_config_map("a", "default")
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"]["name"] == "a"
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map("a", "default")
    assert err.value.status == 404


def test_delete_preconditions(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", configmap("a"))
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map(
            "a", "default", body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="other")))
    assert err.value.status == 409
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map(
            "a", "default",
            body=client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1")))
    assert err.value.status == 409
    assert core.read_namespaced_config_map("a", "default").metadata.name == "a"


def test_chunked_request_body(sb: sandbox.Sandbox) -> None:
    def chunks() -> Iterator[bytes]:
        text = json.dumps(configmap("chunked")).encode()
        yield text[:10]
        yield text[10:]

    reply = httpx.post(sb.url + "/api/v1/namespaces/default/configmaps", content=chunks(),
                       headers={"Content-Type": "application/json"})
    assert reply.status_code == 201 and reply.json()["metadata"]["name"] == "chunked"
    assert http(sb.url, "GET", "/api/v1/namespaces/default/configmaps/chunked").status == 200


def test_dry_run_in_delete_options(sb: sandbox.Sandbox, api: client.ApiClient) -> None:
    client.CoreV1Api(api).create_namespaced_config_map("default", configmap("a"))
    path = "/api/v1/namespaces/default/configmaps/a"
    assert http(sb.url, "DELETE", path, {"kind": "DeleteOptions", "dryRun": ["All"]}).status == 200
    assert http(sb.url, "GET", path).status == 200
    assert http(sb.url, "DELETE", path, {"dryRun": ["Nope"]}).status == 400
    assert http(sb.url, "DELETE", path, {"kind": "DeleteOptions"}).status == 200
    assert http(sb.url, "GET", path).status == 404
