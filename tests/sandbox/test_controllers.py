"""Simulated controllers (``sandbox.controllers.observe``), read back through our real health checks.

Covers, per kind (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, Pod, PVC, LoadBalancer
Service): the status before and after the configured timing and the health ``sync.health`` (the
gitops-engine rules) reads from it; failure annotations; generation bumps; determinism; and
``None`` when nothing changes or the kind has no controller.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from sandbox import controllers
from sandbox.controllers import ControllerTiming
from sync import health

TIMING = ControllerTiming(ready_after_seconds=5.0, job_duration_seconds=10.0)
FAIL = {"sandbox.syncwarden.io/fail": "true"}


def obj(api_version: str, kind: str, spec: dict[str, Any], *, generation: int = 1,
        annotations: dict[str, str] | None = None, status: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "namespace": "default", "uid": "uid-1", "generation": generation}
    if annotations:
        meta["annotations"] = annotations
    out = {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec}
    if status is not None:
        out["status"] = status
    return out


TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "app:1"}]}}


def deployment(replicas: int = 2, **kw: Any) -> dict[str, Any]:
    return obj("apps/v1", "Deployment", {"replicas": replicas, "template": TEMPLATE}, **kw)


def pod(policy: str, **kw: Any) -> dict[str, Any]:
    return obj("v1", "Pod", {"restartPolicy": policy, "containers": [{"name": "main", "image": "busybox"}]}, **kw)


def observed(resource: dict[str, Any], age: float) -> dict[str, Any]:
    status = controllers.observe(resource, age_seconds=age, timing=TIMING)
    assert status is not None
    return {**resource, "status": status}


def health_of(resource: dict[str, Any]) -> str:
    assessed = health.assess(resource)
    assert assessed is not None
    return assessed.status.value


CASES = [
    pytest.param(deployment(), 0.0, "Progressing", id="deployment-before-ready"),
    pytest.param(deployment(), 5.0, "Healthy", id="deployment-ready"),
    pytest.param(deployment(replicas=0), 0.0, "Healthy", id="deployment-zero-replicas"),
    pytest.param(obj("apps/v1", "ReplicaSet", {"replicas": 3, "template": TEMPLATE}), 1.0, "Progressing",
                 id="replicaset-before-ready"),
    pytest.param(obj("apps/v1", "ReplicaSet", {"replicas": 3, "template": TEMPLATE}), 6.0, "Healthy",
                 id="replicaset-ready"),
    pytest.param(obj("apps/v1", "StatefulSet", {"replicas": 2, "template": TEMPLATE}), 1.0, "Progressing",
                 id="statefulset-before-ready"),
    pytest.param(obj("apps/v1", "StatefulSet", {"replicas": 2, "template": TEMPLATE}), 5.0, "Healthy",
                 id="statefulset-ready"),
    pytest.param(obj("apps/v1", "DaemonSet", {"template": TEMPLATE}), 4.9, "Progressing", id="daemonset-before-ready"),
    pytest.param(obj("apps/v1", "DaemonSet", {"template": TEMPLATE}), 5.0, "Healthy", id="daemonset-ready"),
    pytest.param(obj("batch/v1", "Job", {"template": TEMPLATE}), 9.0, "Progressing", id="job-running"),
    pytest.param(obj("batch/v1", "Job", {"template": TEMPLATE}), 10.0, "Healthy", id="job-complete"),
    pytest.param(obj("batch/v1", "Job", {"template": TEMPLATE}, annotations=FAIL), 10.0, "Degraded", id="job-failed"),
    pytest.param(obj("batch/v1", "Job", {"template": TEMPLATE, "suspend": True}), 99.0, "Suspended",
                 id="job-suspended"),
    pytest.param(pod("Always"), 1.0, "Progressing", id="pod-pending"),
    pytest.param(pod("Always"), 5.0, "Healthy", id="pod-running-ready"),
    pytest.param(pod("Always", annotations=FAIL), 5.0, "Degraded", id="pod-crashloop"),
    pytest.param(pod("Never"), 9.0, "Progressing", id="hook-pod-running"),
    pytest.param(pod("Never"), 10.0, "Healthy", id="hook-pod-succeeded"),
    pytest.param(pod("Never", annotations=FAIL), 10.0, "Degraded", id="hook-pod-failed"),
    pytest.param(pod("OnFailure", annotations=FAIL), 10.0, "Degraded", id="onfailure-pod-failed"),
    pytest.param(obj("v1", "PersistentVolumeClaim", {"resources": {"requests": {"storage": "1Gi"}}}), 0.0,
                 "Progressing", id="pvc-pending"),
    pytest.param(obj("v1", "PersistentVolumeClaim", {"resources": {"requests": {"storage": "1Gi"}}}), 5.0,
                 "Healthy", id="pvc-bound"),
    pytest.param(obj("v1", "Service", {"type": "LoadBalancer", "ports": [{"port": 80}]}), 5.0, "Healthy",
                 id="loadbalancer-has-address"),
]


@pytest.mark.parametrize(("resource", "age", "expected"), CASES)
def test_health_reads_the_simulated_status(resource: dict[str, Any], age: float, expected: str) -> None:
    assert health_of(observed(resource, age)) == expected


def test_deployment_status_fields() -> None:
    status = observed(deployment(replicas=3, generation=4), 5.0)["status"]
    assert status["observedGeneration"] == 4
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"], status["availableReplicas"]) == (
        3, 3, 3, 3)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert re.fullmatch(r'ReplicaSet "web-[b-z2-9]{10}" has successfully progressed\.', conditions["Progressing"]["message"])


def test_generation_bump_is_observed_at_once_but_ready_only_later() -> None:
    ready = observed(deployment(generation=1), 60.0)
    bumped = {**ready, "metadata": {**ready["metadata"], "generation": 2}}
    assert health_of(bumped) == "Progressing"  # stale observedGeneration
    fresh = observed(bumped, 0.0)
    assert fresh["status"]["observedGeneration"] == 2
    assert fresh["status"]["availableReplicas"] == 0
    assert health_of(fresh) == "Progressing"
    assert health_of(observed(fresh, 5.0)) == "Healthy"


def test_statefulset_keeps_its_current_revision_until_the_rollout_is_ready() -> None:
    old = observed(obj("apps/v1", "StatefulSet", {"replicas": 1, "template": TEMPLATE}), 10.0)
    revision = old["status"]["currentRevision"]
    assert revision == old["status"]["updateRevision"]
    new_template = {**TEMPLATE, "spec": {"containers": [{"name": "app", "image": "app:2"}]}}
    changed = {**old, "metadata": {**old["metadata"], "generation": 2}, "spec": {"replicas": 1, "template": new_template}}
    rolling = observed(changed, 0.0)["status"]
    assert rolling["currentRevision"] == revision
    assert rolling["updateRevision"] != revision
    done = observed(changed, 5.0)["status"]
    assert done["currentRevision"] == done["updateRevision"] == rolling["updateRevision"]


def test_job_statuses() -> None:
    succeeded = observed(obj("batch/v1", "Job", {"template": TEMPLATE, "completions": 2}), 10.0)["status"]
    assert succeeded["succeeded"] == 2
    assert [c["type"] for c in succeeded["conditions"] if c["status"] == "True"][-1] == "Complete"
    failed = observed(obj("batch/v1", "Job", {"template": TEMPLATE, "backoffLimit": 2}, annotations=FAIL), 10.0)
    assert failed["status"]["failed"] == 3
    assert any(c["type"] == "Failed" and c["status"] == "True" for c in failed["status"]["conditions"])
    assert health.assess(failed) == health.HealthStatus(health.Health.DEGRADED, "Job has reached the specified backoff limit")


def test_a_finished_job_expires_after_its_ttl() -> None:
    job = obj("batch/v1", "Job", {"template": TEMPLATE, "ttlSecondsAfterFinished": 5})
    assert not controllers.ttl_expired(observed(job, 9.0), age_seconds=14.0, timing=TIMING)  # still running
    done = observed(job, 10.0)
    assert not controllers.ttl_expired(done, age_seconds=14.9, timing=TIMING)
    assert controllers.ttl_expired(done, age_seconds=15.0, timing=TIMING)  # finished at 10 s, plus 5 s
    failed = observed(obj("batch/v1", "Job", {"template": TEMPLATE, "ttlSecondsAfterFinished": 0}, annotations=FAIL), 10.0)
    assert controllers.ttl_expired(failed, age_seconds=10.0, timing=TIMING)
    without = observed(obj("batch/v1", "Job", {"template": TEMPLATE}), 10.0)
    assert not controllers.ttl_expired(without, age_seconds=1e9, timing=TIMING)


def test_pod_statuses() -> None:
    running = observed(pod("Always"), 5.0)["status"]
    assert running["phase"] == "Running"
    assert {"type": "Ready", "status": "True"} in running["conditions"]
    assert running["containerStatuses"][0]["ready"] is True
    failed = observed(pod("Never", annotations=FAIL), 10.0)["status"]
    assert failed["phase"] == "Failed"
    assert failed["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1


def test_pvc_binds_with_the_requested_capacity() -> None:
    pvc = obj("v1", "PersistentVolumeClaim", {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "2Gi"}}})
    assert observed(pvc, 5.0)["status"] == {"phase": "Bound", "accessModes": ["ReadWriteMany"], "capacity": {"storage": "2Gi"}}


def test_load_balancer_address_is_deterministic_per_uid() -> None:
    svc = obj("v1", "Service", {"type": "LoadBalancer"})
    assert controllers.observe(svc, age_seconds=1.0, timing=TIMING) == {"loadBalancer": {}}
    first = observed(svc, 5.0)["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert re.fullmatch(r"172\.18\.\d{1,3}\.\d{1,3}", first)
    assert observed(svc, 500.0)["status"]["loadBalancer"]["ingress"][0]["ip"] == first
    other = {**svc, "metadata": {**svc["metadata"], "uid": "uid-2"}}
    assert observed(other, 5.0)["status"]["loadBalancer"]["ingress"][0]["ip"] != first


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param(obj("v1", "Service", {"type": "ClusterIP"}), id="clusterip-service"),
        pytest.param(obj("v1", "ConfigMap", {}), id="kind-without-controller"),
        pytest.param(observed(deployment(), 5.0), id="deployment-already-up-to-date"),
        pytest.param(observed(pod("Never"), 10.0), id="finished-pod"),
    ],
)
def test_nothing_to_change_is_none(resource: dict[str, Any]) -> None:
    assert controllers.observe(resource, age_seconds=50.0, timing=TIMING) is None


def test_unrelated_status_fields_are_kept() -> None:
    status = observed(deployment(status={"collisionCount": 2}), 5.0)["status"]
    assert status["collisionCount"] == 2


def test_default_timing_is_immediate() -> None:
    status = controllers.observe(deployment(), age_seconds=0.0, timing=ControllerTiming())
    assert status is not None
    assert status["availableReplicas"] == 2


def test_template_hash_follows_the_template() -> None:
    same = controllers.template_hash(deployment())
    assert same == controllers.template_hash(deployment(replicas=7))
    changed = deployment()
    changed["spec"]["template"] = {**TEMPLATE, "spec": {"containers": [{"name": "app", "image": "app:2"}]}}
    assert controllers.template_hash(changed) != same
