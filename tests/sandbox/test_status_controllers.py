"""The status subresource (PUT/PATCH /status change only status; main-resource writes ignore status;
create drops a client's status) and the simulated controllers on a deterministic clock: workloads
become available with observedGeneration after ``ready_after_seconds``, a spec change starts the
clock again, Jobs complete or fail when annotated, Pods run, PVCs bind, LoadBalancer Services get an
ingress address; the background timer runs them without ``tick()``; ``POST /sandbox/tick`` too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

import sandbox
from tests.sandbox.helpers import deployment, http


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def slow(clock: Clock) -> Iterator[tuple[sandbox.Sandbox, client.ApiClient]]:
    """A sandbox whose controllers only run on ``tick()`` and take 30 simulated seconds."""
    timing = sandbox.ControllerTiming(ready_after_seconds=30, job_duration_seconds=60)
    with sandbox.Sandbox(timing=timing, clock=clock, tick_interval=3600) as sb, \
            client.ApiClient(client.Configuration(host=sb.url)) as api:
        yield sb, api


def test_status_subresource_changes_only_status(slow: tuple[sandbox.Sandbox, client.ApiClient]) -> None:
    apps = client.AppsV1Api(slow[1])  # controllers idle, so only these writes touch the status
    apps.create_namespaced_deployment("default", deployment("web", replicas=1))
    body: dict[str, Any] = deployment("web", replicas=9)
    body["status"] = {"replicas": 42}
    done = apps.replace_namespaced_deployment_status("web", "default", body)
    assert done.status.replicas == 42 and done.spec.replicas == 1
    main = apps.patch_namespaced_deployment("web", "default", {"status": {"replicas": 1}, "spec": {"replicas": 2}})
    assert main.spec.replicas == 2 and main.status.replicas == 42


def test_create_ignores_client_status(sb: sandbox.Sandbox) -> None:
    body = deployment("web")
    body["status"] = {"replicas": 5}
    reply = http(sb.url, "POST", "/apis/apps/v1/namespaces/default/deployments?fieldManager=t", body)
    assert reply.status == 201 and "status" not in reply.body


def test_deployment_becomes_available_after_the_configured_time(
    slow: tuple[sandbox.Sandbox, client.ApiClient], clock: Clock
) -> None:
    sb, api = slow
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", deployment("web", replicas=3))
    sb.tick()
    early = apps.read_namespaced_deployment("web", "default").status
    assert early.observed_generation == 1 and not early.available_replicas
    clock.advance(31)
    sb.tick()
    ready = apps.read_namespaced_deployment("web", "default")
    assert ready.status.available_replicas == 3 and ready.status.ready_replicas == 3
    assert {c.type: c.status for c in ready.status.conditions}["Available"] == "True"
    assert ready.metadata.generation == 1
    apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 4}})
    sb.tick()
    rolling = apps.read_namespaced_deployment("web", "default").status
    assert rolling.observed_generation == 2 and not rolling.available_replicas
    clock.advance(31)
    sb.tick()
    assert apps.read_namespaced_deployment("web", "default").status.available_replicas == 4


@pytest.mark.parametrize(("kind", "path", "check"), [
    ("StatefulSet", "statefulsets", lambda s: s["readyReplicas"] == 2),
    ("DaemonSet", "daemonsets", lambda s: s["numberAvailable"] == 1),
    ("ReplicaSet", "replicasets", lambda s: s["availableReplicas"] == 2),
])
def test_other_workloads_become_available(
    slow: tuple[sandbox.Sandbox, client.ApiClient], clock: Clock, kind: str, path: str, check: Any
) -> None:
    sb, _ = slow
    body = deployment("w", replicas=2)
    body["kind"] = kind
    url = f"/apis/apps/v1/namespaces/default/{path}"
    assert http(sb.url, "POST", url, body).status == 201
    clock.advance(31)
    sb.tick()
    status = http(sb.url, "GET", f"{url}/w").body["status"]
    assert status["observedGeneration"] == 1 and check(status)


def _job(name: str, *, fail: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if fail:
        meta["annotations"] = {"sandbox.syncwarden.io/fail": "true"}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}


def test_jobs_succeed_or_fail_when_annotated(slow: tuple[sandbox.Sandbox, client.ApiClient], clock: Clock) -> None:
    sb, api = slow
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job("default", _job("ok"))
    batch.create_namespaced_job("default", _job("bad", fail=True))
    sb.tick()
    assert batch.read_namespaced_job("ok", "default").status.active == 1
    clock.advance(61)
    sb.tick()
    ok = batch.read_namespaced_job("ok", "default").status
    bad = batch.read_namespaced_job("bad", "default").status
    assert ok.succeeded == 1 and {c.type for c in ok.conditions} >= {"Complete"}
    assert bad.failed and {c.type for c in bad.conditions} >= {"Failed"}


def test_a_finished_job_goes_after_its_ttl_unless_a_finalizer_holds_it(
    slow: tuple[sandbox.Sandbox, client.ApiClient], clock: Clock
) -> None:
    sb, api = slow
    batch = client.BatchV1Api(api)
    short, held, kept = _job("short"), _job("held"), _job("kept")  # kept: no TTL
    held["metadata"]["finalizers"] = ["argocd.argoproj.io/hook-finalizer"]
    short["spec"]["ttlSecondsAfterFinished"] = held["spec"]["ttlSecondsAfterFinished"] = 30
    for body in (short, held, kept):
        batch.create_namespaced_job("default", body)
    clock.advance(61)
    sb.tick()  # finished now: the TTL starts
    assert {j.metadata.name for j in batch.list_namespaced_job("default").items} == {"short", "held", "kept"}
    clock.advance(30)
    sb.tick()
    assert {j.metadata.name for j in batch.list_namespaced_job("default").items} == {"held", "kept"}
    terminating = batch.read_namespaced_job("held", "default")
    assert terminating.metadata.deletion_timestamp is not None
    assert terminating.status.succeeded == 1  # its result can still be read
    batch.patch_namespaced_job("held", "default", {"metadata": {"finalizers": None}})
    assert {j.metadata.name for j in batch.list_namespaced_job("default").items} == {"kept"}


def test_pods_pvcs_and_load_balancers(slow: tuple[sandbox.Sandbox, client.ApiClient], clock: Clock) -> None:
    sb, api = slow
    core = client.CoreV1Api(api)
    core.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "nginx"}]}})
    core.create_namespaced_persistent_volume_claim("default", {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    core.create_namespaced_service("default", {"metadata": {"name": "lb"}, "spec": {
        "type": "LoadBalancer", "ports": [{"port": 80}]}})
    sb.tick()
    assert core.read_namespaced_pod("p", "default").status.phase == "Pending"
    assert core.read_namespaced_persistent_volume_claim("data", "default").status.phase == "Pending"
    clock.advance(31)
    sb.tick()
    assert core.read_namespaced_pod("p", "default").status.phase == "Running"
    assert core.read_namespaced_persistent_volume_claim("data", "default").status.phase == "Bound"
    ingress = core.read_namespaced_service("lb", "default").status.load_balancer.ingress
    assert ingress and ingress[0].ip


def test_controller_writes_are_watchable_and_owned(
    slow: tuple[sandbox.Sandbox, client.ApiClient], clock: Clock
) -> None:
    sb, api = slow
    apps = client.AppsV1Api(api)
    made = apps.create_namespaced_deployment("default", deployment("web"))
    clock.advance(31)
    sb.tick()
    after = apps.read_namespaced_deployment("web", "default")
    assert int(after.metadata.resource_version) > int(made.metadata.resource_version)
    managers = {(m.manager, m.subresource) for m in after.metadata.managed_fields}
    assert ("sandbox-controller-manager", "status") in managers
    rv = after.metadata.resource_version
    sb.tick()  # nothing new to report: no write
    assert apps.read_namespaced_deployment("web", "default").metadata.resource_version == rv


def test_background_timer_runs_controllers(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment("default", deployment("web", replicas=2))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = apps.read_namespaced_deployment("web", "default").status
        if status is not None and status.available_replicas == 2:
            break
        time.sleep(0.05)
    assert status is not None and status.available_replicas == 2


def test_tick_over_http(slow: tuple[sandbox.Sandbox, client.ApiClient], clock: Clock) -> None:
    sb, api = slow
    client.AppsV1Api(api).create_namespaced_deployment("default", deployment("web"))
    clock.advance(31)
    assert http(sb.url, "POST", "/sandbox/tick").status == 200
    assert client.AppsV1Api(api).read_namespaced_deployment("web", "default").status.available_replicas == 1
