"""Discovery as clients see it: /version, /api, /apis, per-group-version resource lists with kind,
scope, verbs, short names and singular names, for every built-in resource issue 3 lists; unknown
paths answer a 404 ``Status``; the DynamicClient resolves every built-in kind through discovery; Table,
protobuf and aggregated-discovery requests get JSON, which clients accept."""

from __future__ import annotations

import httpx
import pytest
from kubernetes import client, dynamic

import sandbox
from tests.sandbox.helpers import http

BUILTINS = [
    ("v1", "Namespace", "namespaces", False, "ns"),
    ("v1", "ConfigMap", "configmaps", True, "cm"),
    ("v1", "Secret", "secrets", True, None),
    ("v1", "Service", "services", True, "svc"),
    ("v1", "ServiceAccount", "serviceaccounts", True, "sa"),
    ("v1", "Pod", "pods", True, "po"),
    ("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, "pvc"),
    ("v1", "Event", "events", True, "ev"),
    ("apps/v1", "Deployment", "deployments", True, "deploy"),
    ("apps/v1", "StatefulSet", "statefulsets", True, "sts"),
    ("apps/v1", "DaemonSet", "daemonsets", True, "ds"),
    ("apps/v1", "ReplicaSet", "replicasets", True, "rs"),
    ("batch/v1", "Job", "jobs", True, None),
    ("batch/v1", "CronJob", "cronjobs", True, "cj"),
    ("networking.k8s.io/v1", "Ingress", "ingresses", True, "ing"),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True, "netpol"),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", True, None),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True, None),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False, None),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False, None),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False, "crd"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, "hpa"),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True, "pdb"),
    ("coordination.k8s.io/v1", "Lease", "leases", True, None),
]


def test_version(api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    assert info.major == "1" and info.git_version.startswith("v1.")


def test_core_versions_and_groups(sb: sandbox.Sandbox) -> None:
    assert http(sb.url, "GET", "/api").body["versions"] == ["v1"]
    groups = http(sb.url, "GET", "/apis").body
    assert groups["kind"] == "APIGroupList"
    names = {g["name"]: g for g in groups["groups"]}
    assert set(names) >= {"apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io",
                          "apiextensions.k8s.io", "autoscaling", "policy", "coordination.k8s.io"}
    assert names["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    group = http(sb.url, "GET", "/apis/batch").body
    assert group["kind"] == "APIGroup" and group["versions"] == [{"groupVersion": "batch/v1", "version": "v1"}]


@pytest.mark.parametrize(("api_version", "kind", "plural", "namespaced", "short"), BUILTINS,
                         ids=[b[1] for b in BUILTINS])
def test_every_builtin_is_discoverable(
    sb: sandbox.Sandbox, api_version: str, kind: str, plural: str, namespaced: bool, short: str | None
) -> None:
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    listing = http(sb.url, "GET", path).body
    assert listing["kind"] == "APIResourceList" and listing["groupVersion"] == api_version
    entry = next(r for r in listing["resources"] if r["name"] == plural)
    assert entry["kind"] == kind
    assert entry["namespaced"] is namespaced
    assert entry["singularName"] == kind.lower()
    assert set(entry["verbs"]) == {"create", "delete", "deletecollection", "get", "list", "patch", "update",
                                   "watch"}
    if short:
        assert short in entry["shortNames"]


def test_status_subresources_are_listed(sb: sandbox.Sandbox) -> None:
    names = {r["name"] for r in http(sb.url, "GET", "/apis/apps/v1").body["resources"]}
    assert "deployments/status" in names
    core = {r["name"] for r in http(sb.url, "GET", "/api/v1").body["resources"]}
    assert "configmaps/status" not in core and "pods/status" in core


@pytest.mark.parametrize("path", ["/apis/nope.example.com", "/apis/apps/v9", "/api/v2", "/apis/apps/v1/widgets",
                                  "/openapi/v2", "/openapi/v3", "/nothing"])
def test_unknown_paths_are_404_status(sb: sandbox.Sandbox, path: str) -> None:
    reply = http(sb.url, "GET", path)
    assert reply.status == 404
    assert reply.body["kind"] == "Status" and reply.body["reason"] == "NotFound" and reply.body["code"] == 404


def test_health_endpoints(sb: sandbox.Sandbox) -> None:
    assert http(sb.url, "GET", "/healthz").body == "ok"
    assert http(sb.url, "GET", "/readyz").status == 200


def test_dynamic_client_resolves_every_builtin(api: client.ApiClient) -> None:
    dyn = dynamic.DynamicClient(api)
    for api_version, kind, plural, namespaced, _ in BUILTINS:
        resource = dyn.resources.get(api_version=api_version, kind=kind)
        assert (resource.name, resource.namespaced) == (plural, namespaced)


def test_discovery_endpoints_refuse_writes(sb: sandbox.Sandbox) -> None:
    reply = http(sb.url, "POST", "/apis", {})
    assert reply.status == 405 and reply.body["reason"] == "MethodNotAllowed"


@pytest.mark.parametrize("accept", [
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
    "application/vnd.kubernetes.protobuf,application/json",
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
], ids=["table", "protobuf", "aggregated-discovery"])
def test_other_representations_are_answered_with_json(sb: sandbox.Sandbox, accept: str) -> None:
    for path in ("/api/v1/namespaces", "/apis"):
        reply = httpx.get(sb.url + path, headers={"Accept": accept})
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/json"
        assert reply.json()["kind"] in ("NamespaceList", "APIGroupList")
