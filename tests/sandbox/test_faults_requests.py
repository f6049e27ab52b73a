"""Fault injection per verb/resource/name from Python and over ``/sandbox/faults``: 500, 503, 429 with
Retry-After (header and ``details.retryAfterSeconds``), 409, added latency, a dropped connection,
``times`` limiting a rule, removal and clearing, validation of bad rules; the request log records
verb, path and a body summary (never a Secret's values) in arrival order, over Python and HTTP."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

import sandbox
from tests.sandbox.helpers import configmap, http


@pytest.mark.parametrize(("status", "reason"), [(500, "InternalError"), (503, "ServiceUnavailable"),
                                                (409, "Conflict")])
def test_error_status_faults(sb: sandbox.Sandbox, api: client.ApiClient, status: int, reason: str) -> None:
    core = client.CoreV1Api(api)
    sb.faults.add("create", "configmaps", status=status, times=1)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", configmap("a"))
    assert err.value.status == status and json.loads(err.value.body)["reason"] == reason
    assert core.create_namespaced_config_map("default", configmap("a")).metadata.name == "a"  # used up


def test_429_with_retry_after(sb: sandbox.Sandbox) -> None:
    sb.faults.add("list", "configmaps", status=429, retry_after=7)
    reply = http(sb.url, "GET", "/api/v1/namespaces/default/configmaps")
    assert reply.status == 429 and reply.headers["retry-after"] == "7"
    assert reply.body["reason"] == "TooManyRequests" and reply.body["details"]["retryAfterSeconds"] == 7
    assert http(sb.url, "GET", "/api/v1/namespaces/default/secrets").status == 200  # other resource


def test_fault_matches_name_and_verb(sb: sandbox.Sandbox, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", configmap("a"))
    core.create_namespaced_config_map("default", configmap("b"))
    sb.faults.add("get", "configmaps", "b", status=500)
    assert core.read_namespaced_config_map("a", "default").metadata.name == "a"
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("b", "default")
    core.patch_namespaced_config_map("b", "default", {"data": {"k": "2"}})  # another verb is untouched


def test_fault_on_status_subresource(sb: sandbox.Sandbox) -> None:
    sb.faults.add("patch", "deployments/status", status=503)
    body = {"status": {"replicas": 1}}
    reply = http(sb.url, "PATCH", "/apis/apps/v1/namespaces/default/deployments/x/status", body,
                 content_type="application/merge-patch+json")
    assert reply.status == 503


def test_latency(sb: sandbox.Sandbox) -> None:
    sb.faults.add("list", "secrets", latency=0.3, times=1)
    started = time.monotonic()
    assert http(sb.url, "GET", "/api/v1/namespaces/default/secrets").status == 200
    assert time.monotonic() - started >= 0.3


def test_dropped_connection(sb: sandbox.Sandbox) -> None:
    rule = sb.faults.add("get", "configmaps", drop=True)
    with pytest.raises(httpx.TransportError):
        httpx.get(sb.url + "/api/v1/namespaces/default/configmaps/a", timeout=5)
    sb.faults.remove(rule)
    assert http(sb.url, "GET", "/api/v1/namespaces/default/configmaps/a").status == 404


def test_faults_over_http(sb: sandbox.Sandbox) -> None:
    made = http(sb.url, "POST", "/sandbox/faults", {"verb": "list", "resource": "configmaps", "status": 503})
    assert made.status == 201
    assert [r["id"] for r in http(sb.url, "GET", "/sandbox/faults").body["items"]] == [made.body["id"]]
    assert http(sb.url, "GET", "/api/v1/configmaps").status == 503
    assert http(sb.url, "DELETE", f"/sandbox/faults/{made.body['id']}").status == 200
    assert http(sb.url, "GET", "/api/v1/configmaps").status == 200
    assert http(sb.url, "DELETE", "/sandbox/faults/nope").status == 404
    http(sb.url, "POST", "/sandbox/faults", {"status": 500, "times": 2})
    assert http(sb.url, "DELETE", "/sandbox/faults").status == 200
    assert sb.faults.rules() == []


@pytest.mark.parametrize("rule", [{"verb": "explode", "status": 500}, {"status": 200}, {"resource": "x"},
                                  {"status": "500"}, {"colour": "red", "status": 500}, {"status": 500, "times": 0}])
def test_bad_fault_rules_are_400(sb: sandbox.Sandbox, rule: dict[str, object]) -> None:
    reply = http(sb.url, "POST", "/sandbox/faults", rule)
    assert reply.status == 400 and reply.body["kind"] == "Status"


def test_request_log_order_and_summary(sb: sandbox.Sandbox, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    sb.requests.clear()
    core.create_namespaced_secret("default", {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})
    core.patch_namespaced_secret("s", "default", {"metadata": {"labels": {"a": "b"}}})
    core.read_namespaced_secret("s", "default")
    core.delete_namespaced_secret("s", "default")
    records = sb.requests.records()
    assert [(r.verb, r.path) for r in records] == [
        ("create", "/api/v1/namespaces/default/secrets"),
        ("patch", "/api/v1/namespaces/default/secrets/s"),
        ("get", "/api/v1/namespaces/default/secrets/s"),
        ("delete", "/api/v1/namespaces/default/secrets/s"),
    ]
    assert [r.verb for r in sb.requests.writes()] == ["create", "patch", "delete"]
    assert records[0].body_summary.endswith("Secret/s (66 bytes)")
    assert records[1].body_summary.startswith("application/strategic-merge-patch+json Secret/")
    assert all("hunter2" not in r.body_summary for r in records)
    times = [r.time for r in records]
    assert times == sorted(times)
    over_http = http(sb.url, "GET", "/sandbox/requests").body["items"]
    assert [i["verb"] for i in over_http] == ["create", "patch", "get", "delete"]
    assert {"verb", "path", "bodySummary", "time"} == set(over_http[0])
    assert http(sb.url, "DELETE", "/sandbox/requests").status == 200 and sb.requests.records() == []


def test_faulted_requests_are_logged(sb: sandbox.Sandbox) -> None:
    sb.faults.add("create", "configmaps", status=500)
    http(sb.url, "POST", "/api/v1/namespaces/default/configmaps", configmap("a"))
    assert [r.verb for r in sb.requests.records()] == ["create"]


def test_unknown_admin_endpoint(sb: sandbox.Sandbox) -> None:
    assert http(sb.url, "GET", "/sandbox/nothing").status == 404
    assert http(sb.url, "PUT", "/sandbox/faults", {}).status == 405
