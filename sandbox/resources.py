"""The resource types the sandbox serves and the discovery documents that describe them.

Built-in types come from a fixed table; CustomResourceDefinitions add types while they exist. Clients
find everything through discovery (``/api``, ``/apis``, ``/apis/<group>/<version>``), so the kind,
scope, verbs, short names and singular name given here are what kubectl and the official client see.
Used by ``sandbox.server`` (routing and discovery) and ``sandbox.verbs`` (scope and subresources).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUILTIN", "Registry", "ResourceType", "types_from_crd"]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One served resource: ``deployments`` in ``apps/v1`` is kind Deployment, namespaced."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    has_status: bool = True
    verbs: tuple[str, ...] = ALL_VERBS
    categories: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps`` (or ``configmaps`` for the core group), as error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery_entries(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.has_status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        return entries


def _t(
    gv: str, kind: str, plural: str, *, ns: bool = True, short: tuple[str, ...] = (), status: bool = True
) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(group, version, kind, plural, kind.lower(), ns, short, status)


BUILTIN: tuple[ResourceType, ...] = (
    _t("v1", "Namespace", "namespaces", ns=False, short=("ns",)),
    _t("v1", "ConfigMap", "configmaps", short=("cm",), status=False),
    _t("v1", "Secret", "secrets", status=False),
    _t("v1", "Service", "services", short=("svc",)),
    _t("v1", "ServiceAccount", "serviceaccounts", short=("sa",), status=False),
    _t("v1", "Pod", "pods", short=("po",)),
    _t("v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",)),
    _t("v1", "Event", "events", short=("ev",), status=False),
    _t("apps/v1", "Deployment", "deployments", short=("deploy",)),
    _t("apps/v1", "StatefulSet", "statefulsets", short=("sts",)),
    _t("apps/v1", "DaemonSet", "daemonsets", short=("ds",)),
    _t("apps/v1", "ReplicaSet", "replicasets", short=("rs",)),
    _t("batch/v1", "Job", "jobs"),
    _t("batch/v1", "CronJob", "cronjobs", short=("cj",)),
    _t("networking.k8s.io/v1", "Ingress", "ingresses", short=("ing",)),
    _t("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", short=("netpol",), status=False),
    _t("rbac.authorization.k8s.io/v1", "Role", "roles", status=False),
    _t("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", status=False),
    _t("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", ns=False, status=False),
    _t("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", ns=False, status=False),
    _t(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        ns=False,
        short=("crd", "crds"),
    ),
    _t("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",)),
    _t("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",)),
    _t("coordination.k8s.io/v1", "Lease", "leases", status=False),
)


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves (one per served version).

    Raises ``ValueError`` naming the field when the definition lacks what serving needs.
    """
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        raise ValueError("spec: Required value")
    group = spec.get("group")
    names = spec.get("names")
    if not isinstance(group, str) or not group:
        raise ValueError("spec.group: Required value")
    if not isinstance(names, dict) or not isinstance(names.get("plural"), str) or not names.get("kind"):
        raise ValueError("spec.names: plural and kind are required")
    plural = str(names["plural"])
    kind = str(names["kind"])
    singular = str(names.get("singular") or kind.lower())
    short = tuple(str(s) for s in names.get("shortNames") or ())
    categories = tuple(str(c) for c in names.get("categories") or ())
    scope = spec.get("scope", "Namespaced")
    if scope not in ("Namespaced", "Cluster"):
        raise ValueError(f"spec.scope: Unsupported value: {scope!r}: supported values: Namespaced, Cluster")
    if crd.get("metadata", {}).get("name") != f"{plural}.{group}":
        raise ValueError(f"metadata.name: Invalid value: must be spec.names.plural+'.'+spec.group ({plural}.{group})")
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        raise ValueError("spec.versions: Required value")
    out = []
    for index, version in enumerate(versions):
        if not isinstance(version, dict) or not isinstance(version.get("name"), str):
            raise ValueError(f"spec.versions[{index}].name: Required value")
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        out.append(
            ResourceType(
                group,
                version["name"],
                kind,
                plural,
                singular,
                scope == "Namespaced",
                short,
                has_status="status" in subresources,
                categories=categories,
            )
        )
    return out


class Registry:
    """Every served type, indexed for routing (group, version, plural) and for bodies (apiVersion, kind).

    Thread-safe: CRD writes change it while other requests read it.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._crds: dict[str, list[ResourceType]] = {}
        for rtype in BUILTIN:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for rtype in self._types.values():
                if rtype.group == group and rtype.version == version and rtype.kind == kind:
                    return rtype
        return None

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def add_crd(self, name: str, types: list[ResourceType]) -> None:
        with self._lock:
            self.remove_crd(name)
            self._crds[name] = types
            for rtype in types:
                self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def remove_crd(self, name: str) -> list[ResourceType]:
        with self._lock:
            types = self._crds.pop(name, [])
            for rtype in types:
                self._types.pop((rtype.group, rtype.version, rtype.plural), None)
            return types

    # ---- discovery documents -------------------------------------------------------------------

    def groups(self) -> dict[str, list[str]]:
        """Group name to its versions, in a stable order (built-ins first, then CRDs)."""
        out: dict[str, list[str]] = {}
        with self._lock:
            for rtype in self._types.values():
                versions = out.setdefault(rtype.group, [])
                if rtype.version not in versions:
                    versions.append(rtype.version)
        return out

    def api_versions(self, server_address: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        }

    def group_document(self, group: str) -> dict[str, Any] | None:
        versions = self.groups().get(group)
        if not group or not versions:
            return None
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }

    def group_list(self) -> dict[str, Any]:
        groups = []
        for group in self.groups():
            document = self.group_document(group)
            if document is not None:
                del document["kind"], document["apiVersion"]
                groups.append(document)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        with self._lock:
            types = [t for t in self._types.values() if t.group == group and t.version == version]
        if not types:
            return None
        resources: list[dict[str, Any]] = []
        for rtype in types:
            resources.extend(rtype.discovery_entries())
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }
