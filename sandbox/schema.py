"""How the sandbox types the few lists and maps whose merge behaviour is not "replace".

The real API server knows every field's patch strategy (``patchMergeKey``) and list type
(``x-kubernetes-list-type`` / ``-list-map-keys``) from Go struct tags. The sandbox has no OpenAPI
schema, so this module holds a small table for the lists that matter to GitOps tools: the pod spec's
containers, ports, env, volumes and volume mounts, Service ports, and a few metadata lists. Every
other list is atomic (replaced whole), every other JSON object is a granular map.

Callers: ``sandbox.patch`` (strategic merge patch merge keys) and ``sandbox.fieldwalk`` (server-side
apply list keys and atomic maps). Paths here are tuples of *field names only* from the object root;
list positions are skipped, so a container's ports live at
``("spec", "template", "spec", "containers", "ports")``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ListRule", "is_atomic_map", "list_rule", "pod_spec_prefix"]


@dataclass(frozen=True, slots=True)
class ListRule:
    """The merge behaviour of one non-atomic list.

    ``merge_key`` is the strategic-merge-patch key (``None``: a list of scalars merged as a set);
    ``map_keys`` are the server-side-apply list-map keys (empty: ``listType=set`` of scalars);
    ``key_defaults`` fill a key field the item omits, as API defaulting would (``protocol: TCP``).
    """

    merge_key: str | None
    map_keys: tuple[str, ...]
    key_defaults: tuple[tuple[str, str], ...] = ()


_BY_NAME = ListRule("name", ("name",))
_CONTAINER_PORTS = ListRule("containerPort", ("containerPort", "protocol"), (("protocol", "TCP"),))
_SERVICE_PORTS = ListRule("port", ("port", "protocol"), (("protocol", "TCP"),))
_SCALAR_SET = ListRule(None, ())

# Where the pod spec sits, per built-in kind (a CRD's lists are atomic, as without list-type markers).
_POD_SPEC_AT: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")

# Lists inside a pod spec, relative to it. Tolerations, args, command, envFrom stay atomic.
_POD_SPEC_LISTS: dict[tuple[str, ...], ListRule] = {
    ("volumes",): _BY_NAME,
    ("imagePullSecrets",): _BY_NAME,
    ("hostAliases",): ListRule("ip", ("ip",)),
    ("topologySpreadConstraints",): ListRule("topologyKey", ("topologyKey", "whenUnsatisfiable")),
}
for _name in _CONTAINER_LISTS:
    _POD_SPEC_LISTS[(_name,)] = _BY_NAME
    _POD_SPEC_LISTS[(_name, "ports")] = _CONTAINER_PORTS
    _POD_SPEC_LISTS[(_name, "env")] = _BY_NAME
    _POD_SPEC_LISTS[(_name, "volumeMounts")] = ListRule("mountPath", ("mountPath",))
    _POD_SPEC_LISTS[(_name, "volumeDevices")] = ListRule("devicePath", ("devicePath",))

_METADATA_LISTS: dict[tuple[str, ...], ListRule] = {
    ("metadata", "finalizers"): _SCALAR_SET,
    ("metadata", "ownerReferences"): ListRule("uid", ("uid",)),
}

# Kinds whose spec.selector is a LabelSelector (structType=atomic); a Service's selector is a plain map.
_LABEL_SELECTOR_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})
# LabelSelector-typed fields wherever they appear (NetworkPolicy, affinity terms, spread constraints).
_LABEL_SELECTOR_FIELDS = frozenset({"podSelector", "namespaceSelector", "labelSelector"})


# Built-in kinds whose status.conditions is a list keyed by type (patchMergeKey and listType=map).
_CONDITION_KINDS = frozenset({
    "Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "PersistentVolumeClaim",
    "Service", "Namespace", "Node", "HorizontalPodAutoscaler", "PodDisruptionBudget", "CustomResourceDefinition",
})
_BY_TYPE = ListRule("type", ("type",))


def pod_spec_prefix(kind: str) -> tuple[str, ...] | None:
    """Where a built-in kind keeps its pod spec, or ``None`` for kinds without one."""
    return _POD_SPEC_AT.get(kind)


def list_rule(kind: str, names: tuple[str, ...]) -> ListRule | None:
    """The rule for the list at ``names`` in an object of ``kind``; ``None`` means atomic (replace)."""
    found = _METADATA_LISTS.get(names)
    if found is not None:
        return found
    if names == ("status", "conditions") and kind in _CONDITION_KINDS:
        return _BY_TYPE
    if kind == "Service" and names == ("spec", "ports"):
        return _SERVICE_PORTS
    prefix = _POD_SPEC_AT.get(kind)
    if prefix is not None and names[: len(prefix)] == prefix:
        return _POD_SPEC_LISTS.get(names[len(prefix) :])
    return None


def is_atomic_map(kind: str, names: tuple[str, ...]) -> bool:
    """Whether the object at ``names`` is replaced whole by apply (a LabelSelector)."""
    if not names:
        return False
    if names == ("spec", "selector"):
        return kind in _LABEL_SELECTOR_KINDS
    return names[-1] in _LABEL_SELECTOR_FIELDS
