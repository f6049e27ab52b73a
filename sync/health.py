"""Health of live objects, per kind, and of an app (``shared/reference/argocd-sync-semantics.md`` §2.2, §6).

Pure functions over plain object dicts: a dispatch table from (group, kind) to one small check each, as
gitops-engine's ``pkg/health`` does. Kinds without a check have *no* health (``None``): they neither degrade
the app nor hold up a sync wave. A check that fails on malformed data yields ``Unknown`` with the message.

Who calls this: the comparison (resource and app health), and the sync engine (waiting for a wave to become
healthy, deciding whether a hook succeeded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = ["Health", "HealthStatus", "aggregate", "assess", "worst"]


class Health(str, Enum):
    HEALTHY = "Healthy"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"


#: Best to worst; an app takes the worst status of its resources.
_ORDER = {h: i for i, h in enumerate(Health)}


def worst(*states: Health) -> Health:
    return max(states, key=_ORDER.__getitem__, default=Health.HEALTHY)


@dataclass(frozen=True, slots=True)
class HealthStatus:
    status: Health
    message: str = ""


Obj = Mapping[str, Any]
_Check = Callable[[Obj], HealthStatus]

IGNORE_HEALTHCHECK = "argocd.argoproj.io/ignore-healthcheck"
IGNORE_RESTART_POLICY = "argocd.argoproj.io/ignore-restart-policy"
HOOK_FINALIZER = "argocd.argoproj.io/hook-finalizer"


def _m(obj: Obj, *path: str) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _conditions(obj: Obj) -> list[Mapping[str, Any]]:
    conds = _m(obj, "status", "conditions")
    return [c for c in conds if isinstance(c, Mapping)] if isinstance(conds, list) else []


def _generation_pending(obj: Obj) -> bool:
    return _int(_m(obj, "metadata", "generation")) > _int(_m(obj, "status", "observedGeneration"))


def _deployment(obj: Obj) -> HealthStatus:
    if _m(obj, "spec", "paused") is True:
        return HealthStatus(Health.SUSPENDED, "Deployment is paused")
    if _generation_pending(obj):
        return HealthStatus(Health.PROGRESSING,
            "Waiting for rollout to finish: observed deployment "
            "generation less than desired generation"
        )
    for cond in _conditions(obj):
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return HealthStatus(Health.DEGRADED,
                f"Deployment {_m(obj, 'metadata', 'name')!r} "
                "exceeded its progress deadline"
            )
    replicas = _m(obj, "spec", "replicas")
    updated = _int(_m(obj, "status", "updatedReplicas"))
    if isinstance(replicas, int) and updated < replicas:
        return HealthStatus(Health.PROGRESSING,
            f"Waiting for rollout to finish: {updated} out of "
            f"{replicas} new replicas have been updated..."
        )
    total = _int(_m(obj, "status", "replicas"))
    if total > updated:
        return HealthStatus(Health.PROGRESSING,
            f"Waiting for rollout to finish: {total - updated} old "
            "replicas are pending termination..."
        )
    available = _int(_m(obj, "status", "availableReplicas"))
    if available < updated:
        return HealthStatus(Health.PROGRESSING,
            f"Waiting for rollout to finish: {available} of "
            f"{updated} updated replicas are available..."
        )
    return HealthStatus(Health.HEALTHY)


def _statefulset(obj: Obj) -> HealthStatus:
    observed = _int(_m(obj, "status", "observedGeneration"))
    if observed == 0 or _generation_pending(obj):
        return HealthStatus(Health.PROGRESSING, "Waiting for statefulset spec update to be observed...")
    replicas = _m(obj, "spec", "replicas")
    ready = _int(_m(obj, "status", "readyReplicas"))
    if isinstance(replicas, int) and ready < replicas:
        return HealthStatus(Health.PROGRESSING, f"Waiting for {replicas - ready} pods to be ready...")
    strategy = _m(obj, "spec", "updateStrategy")
    if isinstance(strategy, Mapping):
        rolling = strategy.get("rollingUpdate")
        if strategy.get("type") == "RollingUpdate" and isinstance(rolling, Mapping):
            partition = rolling.get("partition")
            updated = _int(_m(obj, "status", "updatedReplicas"))
            if isinstance(replicas, int) and isinstance(partition, int) and updated < replicas - partition:
                return HealthStatus(Health.PROGRESSING,
                    f"Waiting for partitioned roll out to finish: {updated} out of "
                    f"{replicas - partition} new pods have been updated..."
                )
            return HealthStatus(Health.HEALTHY,
                f"partitioned roll out complete: {updated} new "
                "pods have been updated..."
            )
        if strategy.get("type") == "OnDelete":
            return HealthStatus(Health.HEALTHY, "statefulset has OnDelete update strategy")
    if _m(obj, "status", "updateRevision") != _m(obj, "status", "currentRevision"):
        return HealthStatus(Health.PROGRESSING, "waiting for statefulset rolling update to complete")
    return HealthStatus(Health.HEALTHY, "statefulset rolling update complete")


def _daemonset(obj: Obj) -> HealthStatus:
    if _generation_pending(obj):
        return HealthStatus(Health.PROGRESSING,
            "Waiting for rollout to finish: observed daemon set "
            "generation less than desired generation"
        )
    if _m(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return HealthStatus(Health.HEALTHY, "daemon set has OnDelete update strategy")
    desired = _int(_m(obj, "status", "desiredNumberScheduled"))
    updated = _int(_m(obj, "status", "updatedNumberScheduled"))
    if updated < desired:
        return HealthStatus(Health.PROGRESSING,
            f"Waiting for daemon set rollout to finish: {updated} out of "
            f"{desired} new pods have been updated..."
        )
    available = _int(_m(obj, "status", "numberAvailable"))
    if available < desired:
        return HealthStatus(Health.PROGRESSING,
            f"Waiting for daemon set rollout to finish: {available} of "
            f"{desired} updated pods are available..."
        )
    return HealthStatus(Health.HEALTHY)


def _replicaset(obj: Obj) -> HealthStatus:
    if _generation_pending(obj):
        return HealthStatus(Health.PROGRESSING,
            "Waiting for rollout to finish: observed replica set "
            "generation less than desired generation"
        )
    for cond in _conditions(obj):
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return HealthStatus(Health.DEGRADED, str(cond.get("message", "")))
    replicas = _m(obj, "spec", "replicas")
    available = _int(_m(obj, "status", "availableReplicas"))
    if isinstance(replicas, int) and available < replicas:
        return HealthStatus(Health.PROGRESSING,
            f"Waiting for rollout to finish: {available} out of "
            f"{replicas} new replicas are available..."
        )
    return HealthStatus(Health.HEALTHY)


def _is_hook(obj: Obj) -> bool:
    annotations = _m(obj, "metadata", "annotations")
    if not isinstance(annotations, Mapping):
        return False
    return "argocd.argoproj.io/hook" in annotations or "helm.sh/hook" in annotations


def _pod(obj: Obj) -> HealthStatus:
    annotations = _m(obj, "metadata", "annotations")
    ignore_policy = isinstance(annotations, Mapping) and annotations.get(IGNORE_RESTART_POLICY) == "true"
    policy = _m(obj, "spec", "restartPolicy") or "Always"
    long_running = policy == "Always" or (ignore_policy and not _is_hook(obj))
    statuses = [s for s in (_m(obj, "status", "containerStatuses") or []) if isinstance(s, Mapping)]
    init_statuses = [s for s in (_m(obj, "status", "initContainerStatuses") or []) if isinstance(s, Mapping)]
    if long_running:
        messages = []
        for s in statuses:
            waiting = _m(s, "state", "waiting")
            reason = waiting.get("reason", "") if isinstance(waiting, Mapping) else ""
            if isinstance(reason, str) and (reason.startswith("Err") or reason.endswith(("Error", "BackOff"))):
                messages.append(str(waiting.get("message") or reason) if isinstance(waiting, Mapping) else reason)
        if messages:
            return HealthStatus(Health.DEGRADED, "; ".join(messages))
    phase = _m(obj, "status", "phase")
    if phase == "Pending":
        return HealthStatus(Health.PROGRESSING, str(_m(obj, "status", "message") or ""))
    if phase == "Succeeded":
        return HealthStatus(Health.HEALTHY, str(_m(obj, "status", "message") or ""))
    if phase == "Failed":
        return HealthStatus(Health.DEGRADED, _pod_failure(obj, init_statuses + statuses))
    if phase == "Running":
        if long_running:
            for cond in _conditions(obj):
                if cond.get("type") == "Ready" and cond.get("status") == "True":
                    return HealthStatus(Health.HEALTHY)
            if any(isinstance(_m(s, "lastState", "terminated"), Mapping) for s in statuses):
                return HealthStatus(Health.DEGRADED, _pod_failure(obj, statuses))
            return HealthStatus(Health.PROGRESSING)
        return HealthStatus(Health.PROGRESSING)
    return HealthStatus(Health.UNKNOWN, str(_m(obj, "status", "message") or ""))


def _pod_failure(obj: Obj, statuses: Iterable[Mapping[str, Any]]) -> str:
    message = _m(obj, "status", "message")
    if isinstance(message, str) and message:
        return message
    for s in statuses:
        term = _m(s, "state", "terminated") or _m(s, "lastState", "terminated")
        if isinstance(term, Mapping):
            if term.get("message"):
                return str(term["message"])
            if term.get("reason") == "OOMKilled":
                return "OOMKilled"
            if _int(term.get("exitCode")):
                return f"container {s.get('name')!r} failed with exit code {term.get('exitCode')}"
    return ""


def _load_balanced(obj: Obj) -> bool:
    ingress = _m(obj, "status", "loadBalancer", "ingress")
    return isinstance(ingress, list) and len(ingress) > 0


def _service(obj: Obj) -> HealthStatus:
    if _m(obj, "spec", "type") == "LoadBalancer" and not _load_balanced(obj):
        return HealthStatus(Health.PROGRESSING, "Waiting for the load balancer to be assigned")
    return HealthStatus(Health.HEALTHY)


def _ingress(obj: Obj) -> HealthStatus:
    return HealthStatus(Health.HEALTHY) if _load_balanced(obj) else HealthStatus(Health.PROGRESSING)


def _pvc(obj: Obj) -> HealthStatus:
    phase = _m(obj, "status", "phase")
    return {
        "Bound": HealthStatus(Health.HEALTHY),
        "Pending": HealthStatus(Health.PROGRESSING),
        "Lost": HealthStatus(Health.DEGRADED),
    }.get(phase if isinstance(phase, str) else "", HealthStatus(Health.UNKNOWN))


def _job(obj: Obj) -> HealthStatus:
    failed = complete = suspended = False
    message = ""
    for cond in _conditions(obj):
        kind = cond.get("type")
        if kind == "Failed":
            failed = complete = True
            message = str(cond.get("message", ""))
        elif kind == "Complete":
            complete = True
            message = str(cond.get("message", ""))
        elif kind == "Suspended":
            complete = True
            message = str(cond.get("message", ""))
            suspended = cond.get("status") == "True"
    if not complete:
        return HealthStatus(Health.PROGRESSING, message)
    if failed:
        return HealthStatus(Health.DEGRADED, message)
    if suspended:
        return HealthStatus(Health.SUSPENDED, message)
    return HealthStatus(Health.HEALTHY, message)


_HPA_DEGRADED = {
    ("AbleToScale", "FailedGetScale"),
    ("AbleToScale", "FailedUpdateScale"),
    ("ScalingActive", "FailedGetResourceMetric"),
    ("ScalingActive", "FailedGetObjectMetric"),
    ("ScalingActive", "FailedGetPodsMetric"),
    ("ScalingActive", "FailedGetExternalMetric"),
    ("ScalingActive", "FailedComputeMetricsReplicas"),
    ("ScalingActive", "InvalidSelector"),
}


def _hpa(obj: Obj) -> HealthStatus:
    version = str(obj.get("apiVersion", ""))
    if version == "autoscaling/v1":
        from config import yamlsafe  # JSON in an annotation; parsed with the same safe loader

        raw = _m(obj, "metadata", "annotations", "autoscaling.alpha.kubernetes.io/conditions")
        if not isinstance(raw, str) or not raw.strip():
            return HealthStatus(Health.PROGRESSING, "Waiting to Autoscale")
        parsed = yamlsafe.loads_json(raw, source="autoscaling.alpha.kubernetes.io/conditions")
        conditions = [c for c in parsed if isinstance(c, Mapping)] if isinstance(parsed, list) else []
    elif version == "autoscaling/v2":
        conditions = _conditions(obj)
    else:
        return HealthStatus(Health.UNKNOWN, f"health of HorizontalPodAutoscaler {version} is not known")
    for cond in conditions:
        if (cond.get("type"), cond.get("reason")) in _HPA_DEGRADED:
            return HealthStatus(Health.DEGRADED, str(cond.get("message", "")))
    for cond in conditions:
        if cond.get("type") in ("AbleToScale", "ScalingLimited") and cond.get("status") == "True":
            return HealthStatus(Health.HEALTHY, str(cond.get("message", "")))
    return HealthStatus(Health.PROGRESSING, "Waiting to Autoscale")


def _apiservice(obj: Obj) -> HealthStatus:
    for cond in _conditions(obj):
        if cond.get("type") == "Available":
            text = f"{cond.get('reason', '')}: {cond.get('message', '')}"
            return HealthStatus(Health.HEALTHY if cond.get("status") == "True" else Health.PROGRESSING, text)
    return HealthStatus(Health.PROGRESSING, "Waiting to be processed")


def _workflow(obj: Obj) -> HealthStatus:
    phase = _m(obj, "status", "phase") or ""
    if phase in ("", "Pending", "Running"):
        return HealthStatus(Health.PROGRESSING, str(_m(obj, "status", "message") or ""))
    if phase == "Succeeded":
        return HealthStatus(Health.HEALTHY)
    if phase in ("Failed", "Error"):
        return HealthStatus(Health.DEGRADED, str(_m(obj, "status", "message") or ""))
    return HealthStatus(Health.UNKNOWN)


#: (group, kind) → (accepted apiVersions or None for any, check)
_CHECKS: dict[tuple[str, str], tuple[frozenset[str] | None, _Check]] = {
    ("apps", "Deployment"): (frozenset({"apps/v1"}), _deployment),
    ("apps", "StatefulSet"): (frozenset({"apps/v1"}), _statefulset),
    ("apps", "DaemonSet"): (frozenset({"apps/v1"}), _daemonset),
    ("apps", "ReplicaSet"): (frozenset({"apps/v1"}), _replicaset),
    ("", "Pod"): (frozenset({"v1"}), _pod),
    ("", "Service"): (frozenset({"v1"}), _service),
    ("", "PersistentVolumeClaim"): (frozenset({"v1"}), _pvc),
    ("networking.k8s.io", "Ingress"): (None, _ingress),
    ("extensions", "Ingress"): (None, _ingress),
    ("batch", "Job"): (frozenset({"batch/v1"}), _job),
    ("autoscaling", "HorizontalPodAutoscaler"): (None, _hpa),
    ("apiregistration.k8s.io", "APIService"): (
        frozenset({"apiregistration.k8s.io/v1", "apiregistration.k8s.io/v1beta1"}),
        _apiservice,
    ),
    ("argoproj.io", "Workflow"): (None, _workflow),
}


def assess(obj: Obj) -> HealthStatus | None:
    """The health of one live object, or None when its kind has no health check."""
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping) and metadata.get("deletionTimestamp"):
        finalizers = metadata.get("finalizers") or []
        if HOOK_FINALIZER not in finalizers:
            return HealthStatus(Health.PROGRESSING, "Pending deletion")
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    entry = _CHECKS.get((group, str(obj.get("kind", ""))))
    if entry is None:
        return None
    versions, check = entry
    if versions is not None and api_version not in versions:
        return HealthStatus(Health.UNKNOWN, f"health of {obj.get('kind')} {api_version} is not known")
    try:
        return check(obj)
    except (TypeError, ValueError, AttributeError) as exc:  # malformed status: say so, do not crash the reconcile
        return HealthStatus(Health.UNKNOWN, f"cannot assess health: {exc}")


def aggregate(resources: Iterable[tuple[str, Obj | None, bool]]) -> HealthStatus:
    """App health from ``(label, live object or None, is_hook)`` per managed resource (reference §2.2).

    Missing live objects do not degrade the app, but an app with resources none of which exist is Missing;
    hooks and objects annotated ``ignore-healthcheck`` are skipped; kinds without a check (child
    Applications among them) do not count. The message names up to three causes.
    """
    status = Health.HEALTHY
    causes: list[tuple[Health, str]] = []
    non_hooks = 0
    existing = 0
    for label, live, is_hook in resources:
        if is_hook:
            continue
        non_hooks += 1
        if live is None:
            continue
        existing += 1
        annotations = _m(live, "metadata", "annotations")
        if isinstance(annotations, Mapping) and annotations.get(IGNORE_HEALTHCHECK) == "true":
            continue
        health = assess(live)
        if health is None:
            continue
        if health.status != Health.HEALTHY:
            causes.append((health.status, label))
        status = worst(status, health.status)
    if non_hooks and not existing:
        return HealthStatus(Health.MISSING, "no managed resource exists")
    if status == Health.HEALTHY:
        return HealthStatus(status)
    named = [label for h, label in causes if h == status] or [label for _, label in causes]
    message = "Caused by " + ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
    return HealthStatus(status, message)
