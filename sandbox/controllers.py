"""Simulated Kubernetes controllers: the status a real cluster would report, as pure functions.

The sandbox runs no kubelet and no controller manager, yet health assessment (gitops-engine's rules,
``shared/reference/argocd-sync-semantics.md`` §6) and sync waves wait on what those controllers write.
:func:`observe` computes that status from the object and its age, deterministically: the same
object, age and :class:`ControllerTiming` always give the same status, so tests see the same
sequence of states on every run.

Callers: ``sandbox.app`` (its controller tick), passing the seconds since the object's spec last
changed (creation or generation bump) and writing the returned status through the status path.

What each kind reports once ready (and before, "not ready"):

* Deployment, ReplicaSet, StatefulSet, DaemonSet: observedGeneration = generation at once; ready and
  available replicas only after ``ready_after_seconds`` (conditions, revisions as the real controllers).
* Job: active until ``job_duration_seconds``, then ``Complete`` (or ``Failed`` when annotated
  ``sandbox.syncwarden.io/fail: "true"``); a suspended Job reports ``Suspended``. A finished Job with
  ``spec.ttlSecondsAfterFinished`` is deleted that many seconds after it finished (:func:`ttl_expired`; the
  TTL-after-finished controller), so a finalizer on it (Argo CD's hook finalizer) keeps it Terminating.
* Pod: ``restartPolicy: Always`` pods are Pending, then Running and Ready after ``ready_after_seconds``
  (annotated to fail: CrashLoopBackOff); run-to-completion pods run for ``job_duration_seconds`` and
  then Succeed (annotated to fail: Failed with exit code 1).
* PersistentVolumeClaim: Pending, then Bound. Service of type LoadBalancer: an ingress IP
  ``172.18.x.y`` derived from the uid (or namespace/name), so it is stable across restarts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["FAIL_ANNOTATION", "ControllerTiming", "load_balancer_ip", "observe", "template_hash", "ttl_expired"]

FAIL_ANNOTATION = "sandbox.syncwarden.io/fail"

# The simulated cluster has one schedulable node, so a DaemonSet wants exactly one pod.
NODE_COUNT = 1

# Kubernetes' rand.SafeEncodeString alphabet (no vowels, no look-alikes), used in pod-template hashes.
_SAFE_ALPHABET = "bcdfghjkmnpqrstvwxz2456789"


@dataclass(frozen=True)
class ControllerTiming:
    """How long the simulated controllers take; all zero means "immediately" (the default)."""

    ready_after_seconds: float = 0.0
    """Seconds after a spec change (creation or generation bump) before workloads report their pods
    ready and available, long-running Pods Running and Ready, PVCs Bound and LoadBalancer Services
    an address. Until then they report progressing status."""

    job_duration_seconds: float = 0.0
    """Seconds a Job, or a Pod with ``restartPolicy`` Never/OnFailure, runs before it completes
    (or fails, when annotated ``sandbox.syncwarden.io/fail: "true"``)."""


def observe(obj: dict[str, Any], *, age_seconds: float, timing: ControllerTiming) -> dict[str, Any] | None:
    """The new ``status`` of ``obj`` at ``age_seconds`` since its last spec change, or ``None`` when
    the controllers would not change it (unknown kind, or the status is already up to date)."""
    handler = _HANDLERS.get(str(obj.get("kind", "")))
    if handler is None:
        return None
    old = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    assert isinstance(old, dict)
    computed = handler(obj, age_seconds, timing)
    if computed is None:
        return None
    status = {**old, **computed}
    return None if status == old else status


def ttl_expired(obj: dict[str, Any], *, age_seconds: float, timing: ControllerTiming) -> bool:
    """Whether the TTL-after-finished controller deletes ``obj`` now: a Job whose status says it finished
    (``Complete`` or ``Failed``) and whose ``ttlSecondsAfterFinished`` has passed since it finished, at
    ``job_duration_seconds`` of age."""
    if obj.get("kind") != "Job":
        return False
    ttl = _spec(obj).get("ttlSecondsAfterFinished")
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
        return False
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    conditions = status.get("conditions") if isinstance(status, dict) else None
    finished = any(
        isinstance(c, dict) and c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (conditions if isinstance(conditions, list) else [])
    )
    return finished and age_seconds >= timing.job_duration_seconds + ttl


# ----------------------------------------------------------------------------------------- helpers


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _generation(obj: dict[str, Any]) -> int:
    generation = _meta(obj).get("generation")
    return generation if isinstance(generation, int) and generation > 0 else 1


def _replicas(obj: dict[str, Any]) -> int:
    replicas = _spec(obj).get("replicas", 1)
    return replicas if isinstance(replicas, int) and replicas >= 0 else 1


def _fails(obj: dict[str, Any]) -> bool:
    annotations = _meta(obj).get("annotations")
    return isinstance(annotations, dict) and annotations.get(FAIL_ANNOTATION) == "true"


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def template_hash(obj: dict[str, Any]) -> str:
    """A stable 10-character hash of the pod template, like ``pod-template-hash``."""
    template = _spec(obj).get("template", {})
    digest = _digest(json.dumps(template, sort_keys=True, separators=(",", ":")))
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in digest[:10])


def load_balancer_ip(obj: dict[str, Any]) -> str:
    """The simulated LoadBalancer address: ``172.18.x.y`` from the uid, else namespace/name."""
    meta = _meta(obj)
    seed = str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}")
    digest = _digest(seed)
    return f"172.18.{digest[0]}.{1 + digest[1] % 254}"


def _condition(kind: str, status: bool, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": "True" if status else "False", "reason": reason, "message": message}


# ---------------------------------------------------------------------------------------- workloads


def _deployment(obj: dict[str, Any], age: float, timing: ControllerTiming) -> dict[str, Any] | None:
    name, replicas = _meta(obj).get("name", ""), _replicas(obj)
    rs_name = f"{name}-{template_hash(obj)}"
    ready = age >= timing.ready_after_seconds
    count = replicas if ready else 0
    status: dict[str, Any] = {
        "observedGeneration": _generation(obj),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": count,
        "availableReplicas": count,
        "unavailableReplicas": replicas - count,
    }
    if ready:
        status["conditions"] = [
            _condition("Available", True, "MinimumReplicasAvailable", "Deployment has minimum availability."),
            _condition("Progressing", True, "NewReplicaSetAvailable",
                       f'ReplicaSet "{rs_name}" has successfully progressed.'),
        ]
    else:
        status["conditions"] = [
            _condition("Available", False, "MinimumReplicasUnavailable",
                       "Deployment does not have minimum availability."),
            _condition("Progressing", True, "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.'),
        ]
    return status


def _replicaset(obj: dict[str, Any], age: float, timing: ControllerTiming) -> dict[str, Any] | None:
    replicas = _replicas(obj)
    count = replicas if age >= timing.ready_after_seconds else 0
    return {
        "observedGeneration": _generation(obj),
        "replicas": replicas,
        "fullyLabeledReplicas": replicas,
        "readyReplicas": count,
        "availableReplicas": count,
    }


def _statefulset(obj: dict[str, Any], age: float, timing: ControllerTiming) -> dict[str, Any] | None:
    replicas = _replicas(obj)
    revision = f"{_meta(obj).get('name', '')}-{template_hash(obj)}"
    ready = age >= timing.ready_after_seconds
    previous = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    assert isinstance(previous, dict)
    count = replicas if ready else 0
    return {
        "observedGeneration": _generation(obj),
        "replicas": replicas,
        "readyReplicas": count,
        "availableReplicas": count,
        "currentReplicas": replicas if ready else 0,
        "updatedReplicas": replicas if ready else 0,
        "currentRevision": revision if ready else previous.get("currentRevision", revision),
        "updateRevision": revision,
        "collisionCount": 0,
    }


def _daemonset(obj: dict[str, Any], age: float, timing: ControllerTiming) -> dict[str, Any] | None:
    count = NODE_COUNT if age >= timing.ready_after_seconds else 0
    return {
        "observedGeneration": _generation(obj),
        "desiredNumberScheduled": NODE_COUNT,
        "currentNumberScheduled": NODE_COUNT,
        "numberMisscheduled": 0,
        "updatedNumberScheduled": NODE_COUNT,
        "numberReady": count,
        "numberAvailable": count,
        "numberUnavailable": NODE_COUNT - count,
    }


def _job(obj: dict[str, Any], age: float, timing: ControllerTiming) -> dict[str, Any] | None:
    spec = _spec(obj)
    if spec.get("suspend") is True:
        return {"active": 0, "conditions": [_condition("Suspended", True, "JobSuspended", "Job suspended")]}
    completions = spec.get("completions", 1)
    completions = completions if isinstance(completions, int) and completions > 0 else 1
    if age < timing.job_duration_seconds:
        return {"active": 1, "ready": 1 if age >= timing.ready_after_seconds else 0}
    if _fails(obj):
        backoff = spec.get("backoffLimit", 6)
        failed = (backoff if isinstance(backoff, int) and backoff >= 0 else 6) + 1
        message = "Job has reached the specified backoff limit"
        return {
            "active": 0,
            "ready": 0,
            "failed": failed,
            "conditions": [
                _condition("FailureTarget", True, "BackoffLimitExceeded", message),
                _condition("Failed", True, "BackoffLimitExceeded", message),
            ],
        }
    message = "Reached expected number of succeeded pods"
    return {
        "active": 0,
        "ready": 0,
        "succeeded": completions,
        "conditions": [
            _condition("SuccessCriteriaMet", True, "CompletionsReached", message),
            _condition("Complete", True, "CompletionsReached", message),
        ],
    }


# ------------------------------------------------------------------------------------------- pods


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    containers = _spec(obj).get("containers")
    if not isinstance(containers, list):
        return []
    return [c for c in containers if isinstance(c, dict)]


def _container_status(container: dict[str, Any], state: dict[str, Any], ready: bool, restarts: int) -> dict[str, Any]:
    return {
        "name": container.get("name", ""),
        "image": container.get("image", ""),
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "started": "running" in state,
        "state": state,
    }


def _pod_conditions(ready: bool) -> list[dict[str, str]]:
    reason = "" if ready else "ContainersNotReady"
    out = [{"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"}]
    for kind in ("ContainersReady", "Ready"):
        condition = {"type": kind, "status": "True" if ready else "False"}
        if reason:
            condition["reason"] = reason
        out.append(condition)
    return out


def _pod(obj: dict[str, Any], age: float, timing: ControllerTiming) -> dict[str, Any] | None:
    meta = _meta(obj)
    seed = _digest(str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}"))
    base = {"hostIP": "172.18.0.2", "podIP": f"10.244.0.{1 + seed[0] % 254}", "qosClass": "BestEffort"}
    containers = _containers(obj)
    policy = _spec(obj).get("restartPolicy", "Always")
    if policy == "Always":
        if age < timing.ready_after_seconds:
            waiting = {"waiting": {"reason": "ContainerCreating"}}
            statuses = [_container_status(c, waiting, False, 0) for c in containers]
            return {**base, "phase": "Pending", "conditions": _pod_conditions(False), "containerStatuses": statuses}
        if _fails(obj):
            crash = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}}
            statuses = [_container_status(c, crash, False, 1) for c in containers]
            return {**base, "phase": "Running", "conditions": _pod_conditions(False), "containerStatuses": statuses}
        running: dict[str, Any] = {"running": {}}
        statuses = [_container_status(c, running, True, 0) for c in containers]
        return {**base, "phase": "Running", "conditions": _pod_conditions(True), "containerStatuses": statuses}
    if age < timing.job_duration_seconds:
        running = {"running": {}}
        statuses = [_container_status(c, running, True, 0) for c in containers]
        return {**base, "phase": "Running", "conditions": _pod_conditions(True), "containerStatuses": statuses}
    failed = _fails(obj)
    terminated = {"terminated": {"exitCode": 1 if failed else 0, "reason": "Error" if failed else "Completed"}}
    statuses = [_container_status(c, terminated, False, 0) for c in containers]
    conditions = _pod_conditions(False)
    for condition in conditions[2:]:
        condition["reason"] = "PodFailed" if failed else "PodCompleted"
    return {
        **base,
        "phase": "Failed" if failed else "Succeeded",
        "conditions": conditions,
        "containerStatuses": statuses,
    }


# ------------------------------------------------------------------------------- storage, services


def _pvc(obj: dict[str, Any], age: float, timing: ControllerTiming) -> dict[str, Any] | None:
    if age < timing.ready_after_seconds:
        return {"phase": "Pending"}
    spec = _spec(obj)
    status: dict[str, Any] = {"phase": "Bound", "accessModes": spec.get("accessModes", ["ReadWriteOnce"])}
    resources = spec.get("resources")
    requests = resources.get("requests") if isinstance(resources, dict) else None
    if isinstance(requests, dict) and "storage" in requests:
        status["capacity"] = {"storage": requests["storage"]}
    return status


def _service(obj: dict[str, Any], age: float, timing: ControllerTiming) -> dict[str, Any] | None:
    if _spec(obj).get("type") != "LoadBalancer":
        return None
    if age < timing.ready_after_seconds:
        return {"loadBalancer": {}}
    return {"loadBalancer": {"ingress": [{"ip": load_balancer_ip(obj), "ipMode": "VIP"}]}}


_Handler = Callable[[dict[str, Any], float, ControllerTiming], "dict[str, Any] | None"]

_HANDLERS: dict[str, _Handler] = {
    "Deployment": _deployment,
    "ReplicaSet": _replicaset,
    "StatefulSet": _statefulset,
    "DaemonSet": _daemonset,
    "Job": _job,
    "Pod": _pod,
    "PersistentVolumeClaim": _pvc,
    "Service": _service,
}
