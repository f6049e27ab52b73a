"""sync.health: the per-kind rules of argocd-sync-semantics §6 and the app aggregation of §2.2."""

from __future__ import annotations

from typing import Any

import pytest

from sync.health import Health, aggregate, assess, worst


def dep(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, gen: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "generation": gen},
        "spec": {"replicas": 2, **(spec or {})},
        "status": {"observedGeneration": 1, **(status or {})},
    }


READY = {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(dep(status=READY), Health.HEALTHY, id="deploy-ready"),
        pytest.param(dep({"paused": True}, READY), Health.SUSPENDED, id="deploy-paused"),
        pytest.param(dep(status=READY, gen=2), Health.PROGRESSING, id="deploy-generation-not-observed"),
        pytest.param(dep(status={**READY, "updatedReplicas": 1}), Health.PROGRESSING, id="deploy-updating"),
        pytest.param(dep(status={**READY, "replicas": 3}), Health.PROGRESSING, id="deploy-old-pods-terminating"),
        pytest.param(dep(status={**READY, "availableReplicas": 1}), Health.PROGRESSING, id="deploy-not-available"),
        pytest.param(
            dep(status={**READY, "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}),
            Health.DEGRADED,
            id="deploy-deadline",
        ),
        pytest.param({**dep(status=READY), "apiVersion": "apps/v1beta1"}, Health.UNKNOWN, id="deploy-old-version"),
        pytest.param(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"generation": 1},
                "spec": {"replicas": 1},
                "status": {"observedGeneration": 1, "readyReplicas": 1, "currentRevision": "a", "updateRevision": "a"},
            },
            Health.HEALTHY,
            id="sts-ready",
        ),
        pytest.param(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"generation": 1},
                "spec": {"replicas": 1},
                "status": {"observedGeneration": 1, "readyReplicas": 1, "currentRevision": "a", "updateRevision": "b"},
            },
            Health.PROGRESSING,
            id="sts-revision-rolling",
        ),
        pytest.param(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"generation": 1},
                "spec": {"replicas": 1, "updateStrategy": {"type": "OnDelete"}},
                "status": {"observedGeneration": 1, "readyReplicas": 1, "currentRevision": "a", "updateRevision": "b"},
            },
            Health.HEALTHY,
            id="sts-ondelete",
        ),
        pytest.param(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"generation": 1},
                "spec": {},
                "status": {"observedGeneration": 0},
            },
            Health.PROGRESSING,
            id="sts-never-observed",
        ),
        pytest.param(
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"generation": 1},
                "status": {
                    "observedGeneration": 1,
                    "desiredNumberScheduled": 3,
                    "updatedNumberScheduled": 3,
                    "numberAvailable": 2,
                },
            },
            Health.PROGRESSING,
            id="ds-unavailable",
        ),
        pytest.param(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {"generation": 1},
                "spec": {"replicas": 1},
                "status": {
                    "observedGeneration": 1,
                    "conditions": [{"type": "ReplicaFailure", "status": "True", "message": "quota"}],
                },
            },
            Health.DEGRADED,
            id="rs-failure",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Pod", "spec": {}, "status": {"phase": "Pending"}},
            Health.PROGRESSING,
            id="pod-pending",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "spec": {},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            },
            Health.HEALTHY,
            id="pod-ready",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "spec": {},
                "status": {
                    "phase": "Pending",
                    "containerStatuses": [
                        {"name": "c", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no image"}}}
                    ],
                },
            },
            Health.DEGRADED,
            id="pod-backoff",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "spec": {"restartPolicy": "Never"},
                "status": {
                    "phase": "Pending",
                    "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "ImagePullBackOff"}}}],
                },
            },
            Health.PROGRESSING,
            id="pod-never-backoff-stays-progressing",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "spec": {"restartPolicy": "Never"},
                "status": {
                    "phase": "Failed",
                    "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 3}}}],
                },
            },
            Health.DEGRADED,
            id="pod-failed",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Service", "spec": {"type": "ClusterIP"}}, Health.HEALTHY, id="svc-clusterip"
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}},
            Health.PROGRESSING,
            id="svc-lb-pending",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "spec": {"type": "LoadBalancer"},
                "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
            },
            Health.HEALTHY,
            id="svc-lb-ready",
        ),
        pytest.param({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress"}, Health.PROGRESSING, id="ing-pending"),
        pytest.param(
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}},
            Health.HEALTHY,
            id="pvc-bound",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Lost"}},
            Health.DEGRADED,
            id="pvc-lost",
        ),
        pytest.param({"apiVersion": "v1", "kind": "PersistentVolumeClaim"}, Health.UNKNOWN, id="pvc-no-phase"),
        pytest.param({"apiVersion": "batch/v1", "kind": "Job", "status": {}}, Health.PROGRESSING, id="job-running"),
        pytest.param(
            {"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": [{"type": "Complete"}]}},
            Health.HEALTHY,
            id="job-complete",
        ),
        pytest.param(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "status": {"conditions": [{"type": "Failed", "message": "BackoffLimitExceeded"}]},
            },
            Health.DEGRADED,
            id="job-failed",
        ),
        pytest.param(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "status": {"conditions": [{"type": "Suspended", "status": "True"}]},
            },
            Health.SUSPENDED,
            id="job-suspended",
        ),
        pytest.param(
            {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {}},
            Health.PROGRESSING,
            id="hpa-v1-no-annotation",
        ),
        pytest.param(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "status": {"conditions": [{"type": "AbleToScale", "status": "True"}]},
            },
            Health.HEALTHY,
            id="hpa-v2-able",
        ),
        pytest.param(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "status": {"conditions": [{"type": "ScalingActive", "reason": "FailedGetResourceMetric"}]},
            },
            Health.DEGRADED,
            id="hpa-v2-metrics",
        ),
        pytest.param(
            {"apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler"}, Health.UNKNOWN, id="hpa-v2beta2"
        ),
        pytest.param(
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "status": {"conditions": [{"type": "Available", "status": "True"}]},
            },
            Health.HEALTHY,
            id="apiservice-available",
        ),
        pytest.param(
            {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService"},
            Health.PROGRESSING,
            id="apiservice-waiting",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}},
            Health.PROGRESSING,
            id="pending-deletion",
        ),
    ],
)
def test_health_by_kind(obj: dict[str, Any], expected: Health) -> None:
    result = assess(obj)
    assert result is not None
    assert result.status == expected, result.message


def test_kinds_without_a_check_have_no_health() -> None:
    assert assess({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}) is None
    assert assess({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {}}) is None


def test_malformed_status_is_unknown_not_a_crash() -> None:
    result = assess(
        {
            "apiVersion": "autoscaling/v1",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"annotations": {"autoscaling.alpha.kubernetes.io/conditions": "{not json"}},
        }
    )
    assert result is not None and result.status == Health.UNKNOWN


def test_worst_ordering() -> None:
    assert worst(Health.HEALTHY, Health.SUSPENDED) == Health.SUSPENDED
    assert worst(Health.PROGRESSING, Health.DEGRADED, Health.MISSING) == Health.DEGRADED
    assert worst() == Health.HEALTHY


def test_aggregate_takes_the_worst_and_names_causes() -> None:
    ready = dep(status=READY)
    slow = dep(status={**READY, "availableReplicas": 0})
    result = aggregate([("apps/Deployment:ns/a", ready, False), ("apps/Deployment:ns/b", slow, False)])
    assert result.status == Health.PROGRESSING
    assert result.message == "Caused by apps/Deployment:ns/b"


def test_aggregate_missing_rules() -> None:
    ready = dep(status=READY)
    # a missing resource does not degrade the app ...
    assert aggregate([("a", ready, False), ("b", None, False)]).status == Health.HEALTHY
    # ... but an app none of whose resources exist is Missing; hooks do not count
    assert aggregate([("a", None, False), ("hook", ready, True)]).status == Health.MISSING
    assert aggregate([]).status == Health.HEALTHY


def test_aggregate_skips_ignored_and_hooks() -> None:
    slow = dep(status={**READY, "availableReplicas": 0})
    ignored = {
        **slow,
        "metadata": {**slow["metadata"], "annotations": {"argocd.argoproj.io/ignore-healthcheck": "true"}},
    }
    assert (
        aggregate([("a", ignored, False), ("h", slow, True), ("c", dep(status=READY), False)]).status == Health.HEALTHY
    )
