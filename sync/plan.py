"""Plan a sync: pair desired objects with live ones and order the work into phases and waves.

Pure (``argocd-sync-semantics.md`` §3.4, §4.2–§4.4, §4.8). The engine executes a plan step by step, where a
step is one (phase, wave); this module only decides *what* and *in which order*:

* targets are paired with live objects by resource key (the API version is not part of the key);
* every remaining live object is a prune candidate (its task has no target);
* hooks run in their phases, with a deterministic name when they only have ``generateName``;
* sort key: (phase, wave, kind rank, name); a Namespace or CRD that would sort after the first object needing
  it is moved right before that object and adopts its phase and wave;
* prune waves run in reverse; ``PruneLast`` moves a prune after every Sync-phase wave.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sync import hooks
from sync.hooks import DeletePolicy, Phase
from sync.models import ResourceKey, group_of

__all__ = ["KIND_ORDER", "Plan", "Task", "build_plan", "key_of", "order_tasks", "take_live"]

#: Argo CD's kind order: these kinds first, in this order; every other kind after them.
KIND_ORDER = (
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget",
    "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
    "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
    "IngressClass", "Ingress", "APIService",
)  # fmt: skip
_RANK = {kind: i for i, kind in enumerate(KIND_ORDER)}

Obj = Mapping[str, Any]
#: (group, kind) → namespaced? (None when the cluster does not know the kind)
ScopeLookup = Callable[[str, str], bool | None]


def key_of(obj: Obj, *, namespace: str | None = None) -> ResourceKey:
    meta = obj.get("metadata") or {}
    return ResourceKey(
        group=group_of(str(obj.get("apiVersion", ""))),
        kind=str(obj.get("kind", "")),
        namespace=str(meta.get("namespace") or "") if namespace is None else namespace,
        name=str(meta.get("name") or ""),
    )


@dataclass(frozen=True)
class Task:
    key: ResourceKey
    phase: Phase
    wave: int
    target: dict[str, Any] | None
    live: Obj | None
    hook: bool = False
    delete_policies: frozenset[DeletePolicy] = frozenset()
    prune_last: bool = False

    @property
    def is_prune(self) -> bool:
        return self.target is None

    @property
    def step(self) -> tuple[int, int]:
        return (self.phase.order, self.wave)

    def sort_key(self) -> tuple[int, int, int, str]:
        return (self.phase.order, self.wave, _RANK.get(self.key.kind, len(KIND_ORDER)), self.key.name)


@dataclass(frozen=True)
class Plan:
    tasks: tuple[Task, ...]
    #: warnings for the app's conditions (repeated keys, garbage hooks)
    warnings: tuple[str, ...] = ()

    def steps(self) -> list[tuple[tuple[int, int], list[Task]]]:
        """Tasks grouped by (phase, wave), in order; SyncFail hooks are not part of the normal steps."""
        groups: dict[tuple[int, int], list[Task]] = {}
        for task in self.tasks:
            if task.phase is Phase.SYNC_FAIL:
                continue
            groups.setdefault(task.step, []).append(task)
        return list(groups.items())

    def sync_fail_hooks(self) -> list[Task]:
        return [t for t in self.tasks if t.phase is Phase.SYNC_FAIL]


def _hook_name(obj: Obj, phase: Phase, revision: str, started_unix: int) -> str:
    meta = obj.get("metadata") or {}
    if meta.get("name"):
        return str(meta["name"])
    suffix = f"{revision[:7]}-{phase.value}-{started_unix}".lower()
    return f"{meta.get('generateName', '')}{suffix}"


def _with_namespace(obj: Obj, namespace: str) -> dict[str, Any]:
    out = dict(obj)
    out["metadata"] = {**(obj.get("metadata") or {}), "namespace": namespace}
    return out


def build_plan(
    targets: Sequence[Obj],
    live: Iterable[Obj],
    *,
    destination_namespace: str,
    namespaced: ScopeLookup,
    revision: str = "",
    started_unix: int = 0,
    prune_last: bool = False,
    skip_hooks: bool = False,
    selected: Callable[[ResourceKey], bool] | None = None,
) -> Plan:
    """Pair, create tasks, and order them. ``live`` are the app's managed live objects (self-referencing ones)."""
    warnings: list[str] = []
    live_by_key: dict[ResourceKey, Obj] = {}
    for obj in live:
        live_by_key[key_of(obj)] = obj

    resources: dict[ResourceKey, dict[str, Any]] = {}
    hook_objs: list[dict[str, Any]] = []
    for raw in targets:
        obj = dict(raw)
        if hooks.is_skipped(obj):
            # never applied, never pruned: consume its live twin so it is not a prune candidate
            live_by_key.pop(key_of(obj, namespace=_target_namespace(obj, destination_namespace, namespaced)), None)
            continue
        if hooks.is_hook(obj):
            if hooks.is_garbage_hook(obj):
                warnings.append(f"hook {key_of(obj)} has no recognised hook type and is ignored")
            elif hooks.hook_phases(obj):
                hook_objs.append(obj)
            continue
        scope_ns = _target_namespace(obj, destination_namespace, namespaced)
        if scope_ns != (obj.get("metadata") or {}).get("namespace", ""):
            obj = _with_namespace(obj, scope_ns) if scope_ns else obj
        key = key_of(obj, namespace=scope_ns)
        if key in resources:
            warnings.append(f"resource {key} appeared more than once among the app's resources; the last one wins")
        resources[key] = obj

    tasks: list[Task] = []
    for key, obj in resources.items():
        if selected is not None and not selected(key):
            live_by_key.pop(key, None)
            continue
        live_obj = take_live(live_by_key, key, namespaced)
        tasks.append(Task(key, Phase.SYNC, hooks.wave_of(obj), obj, live_obj))

    for key, live_obj in live_by_key.items():
        if hooks.is_hook(live_obj) or (selected is not None and not selected(key)):
            continue  # live hooks from earlier syncs are never pruned
        last = prune_last or hooks.sync_options(live_obj).get("PruneLast") == "true"
        tasks.append(Task(key, Phase.SYNC, hooks.wave_of(live_obj), None, live_obj, prune_last=last))

    if not skip_hooks:
        for obj in hook_objs:
            for phase in hooks.hook_phases(obj):
                named = dict(obj)
                name = _hook_name(obj, phase, revision, started_unix)
                named["metadata"] = {**(obj.get("metadata") or {}), "name": name}
                scope_ns = _target_namespace(named, destination_namespace, namespaced)
                if scope_ns:
                    named = _with_namespace(named, scope_ns)
                tasks.append(
                    Task(
                        key_of(named, namespace=scope_ns),
                        phase,
                        hooks.wave_of(obj),
                        named,
                        None,
                        hook=True,
                        delete_policies=hooks.delete_policies(obj),
                    )
                )
    return Plan(tuple(order_tasks(tasks)), tuple(warnings))


def take_live(live_by_key: dict[ResourceKey, Obj], key: ResourceKey, namespaced: ScopeLookup) -> Obj | None:
    """Consume the live object paired with a target's key (§3.4): the exact key, and when the kind's scope is
    unknown, the cluster-scoped key too. Shared by :func:`build_plan` and :mod:`sync.compare`."""
    live_obj = live_by_key.pop(key, None)
    if live_obj is None and namespaced(key.group, key.kind) is None:
        live_obj = live_by_key.pop(replace(key, namespace=""), None)
    return live_obj


def _target_namespace(obj: Obj, destination_namespace: str, namespaced: ScopeLookup) -> str:
    meta = obj.get("metadata") or {}
    scope = namespaced(group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind", "")))
    if scope is False:
        return ""
    return str(meta.get("namespace") or destination_namespace)


def _reverse_prune_waves(tasks: list[Task]) -> list[Task]:
    waves = sorted({t.wave for t in tasks if t.is_prune})
    mirror = dict(zip(waves, reversed(waves), strict=True))
    return [replace(t, wave=mirror[t.wave]) if t.is_prune else t for t in tasks]


def _apply_prune_last(tasks: list[Task]) -> list[Task]:
    if not any(t.is_prune and t.prune_last for t in tasks):
        return tasks
    last = max([0, *(t.wave for t in tasks if t.phase is Phase.SYNC and not (t.is_prune and t.prune_last))]) + 1
    return [replace(t, wave=last) if t.is_prune and t.prune_last else t for t in tasks]


def order_tasks(tasks: Iterable[Task]) -> list[Task]:
    ordered = sorted(_apply_prune_last(_reverse_prune_waves(list(tasks))), key=Task.sort_key)
    ordered = _bubble(ordered, _namespace_needed_by)
    return _bubble(ordered, _crd_needed_by)


def _namespace_needed_by(dependency: Task, task: Task) -> bool:
    return (
        dependency.key.kind == "Namespace"
        and dependency.key.group == ""
        and task.target is not None
        and task.key.namespace == dependency.key.name
    )


def _crd_needed_by(dependency: Task, task: Task) -> bool:
    if dependency.key.kind != "CustomResourceDefinition" or dependency.target is None or task.target is None:
        return False
    spec = dependency.target.get("spec") or {}
    names = spec.get("names") or {}
    return bool(task.key.group == spec.get("group") and task.key.kind == names.get("kind"))


def _bubble(tasks: list[Task], needed_by: Callable[[Task, Task], bool]) -> list[Task]:
    """Move each dependency (with a target) before the first task that needs it, adopting its phase and wave."""
    out = list(tasks)
    for dep in [t for t in tasks if t.target is not None]:
        index = out.index(dep)
        for j, task in enumerate(out[:index]):
            if task is not dep and needed_by(dep, task):
                out.pop(index)
                out.insert(j, replace(dep, phase=task.phase, wave=task.wave))
                break
    return out
