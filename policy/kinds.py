"""Which kinds exist and whether each is namespaced, for checks that run without a cluster.

The project gates treat namespaced and cluster-scoped kinds differently (cluster-scoped kinds are denied
unless whitelisted; only namespaced objects are checked against destinations), so an offline check must know
the scope of every kind it sees. :class:`KindTable` answers from, in order of precedence:

1. ``--api-resources FILE``: the output of ``kubectl api-resources`` for the target cluster;
2. CustomResourceDefinitions found among the manifests being checked;
3. a built-in table of the Kubernetes API's own kinds (plus Argo CD's three, for app-of-apps checks).

A kind found nowhere is *unknown*; the gate reports it as a violation rather than guessing (fail closed,
security-cases PROJ-17). The online service answers the same question from cluster discovery instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["BUILTIN_KINDS", "KindLookup", "KindTable", "KindTableError", "group_of"]


def group_of(api_version: str) -> str:
    """``apps/v1`` → ``apps``; ``v1`` → ``""`` (the core group)."""
    return api_version.rpartition("/")[0] if "/" in api_version else ""


_CLUSTER = False
_NAMESPACED = True

#: (group, kind) → namespaced, for the Kubernetes API's built-in kinds (v1.32) and Argo CD's CRDs.
BUILTIN_KINDS: Mapping[tuple[str, str], bool] = {
    ("", "Binding"): _NAMESPACED,
    ("", "ComponentStatus"): _CLUSTER,
    ("", "ConfigMap"): _NAMESPACED,
    ("", "Endpoints"): _NAMESPACED,
    ("", "Event"): _NAMESPACED,
    ("", "LimitRange"): _NAMESPACED,
    ("", "Namespace"): _CLUSTER,
    ("", "Node"): _CLUSTER,
    ("", "PersistentVolume"): _CLUSTER,
    ("", "PersistentVolumeClaim"): _NAMESPACED,
    ("", "Pod"): _NAMESPACED,
    ("", "PodTemplate"): _NAMESPACED,
    ("", "ReplicationController"): _NAMESPACED,
    ("", "ResourceQuota"): _NAMESPACED,
    ("", "Secret"): _NAMESPACED,
    ("", "Service"): _NAMESPACED,
    ("", "ServiceAccount"): _NAMESPACED,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): _CLUSTER,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"): _CLUSTER,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"): _CLUSTER,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): _CLUSTER,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _CLUSTER,
    ("apiregistration.k8s.io", "APIService"): _CLUSTER,
    ("apps", "ControllerRevision"): _NAMESPACED,
    ("apps", "DaemonSet"): _NAMESPACED,
    ("apps", "Deployment"): _NAMESPACED,
    ("apps", "ReplicaSet"): _NAMESPACED,
    ("apps", "StatefulSet"): _NAMESPACED,
    ("authentication.k8s.io", "SelfSubjectReview"): _CLUSTER,
    ("authentication.k8s.io", "TokenReview"): _CLUSTER,
    ("authorization.k8s.io", "LocalSubjectAccessReview"): _NAMESPACED,
    ("authorization.k8s.io", "SelfSubjectAccessReview"): _CLUSTER,
    ("authorization.k8s.io", "SelfSubjectRulesReview"): _CLUSTER,
    ("authorization.k8s.io", "SubjectAccessReview"): _CLUSTER,
    ("autoscaling", "HorizontalPodAutoscaler"): _NAMESPACED,
    ("batch", "CronJob"): _NAMESPACED,
    ("batch", "Job"): _NAMESPACED,
    ("certificates.k8s.io", "CertificateSigningRequest"): _CLUSTER,
    ("coordination.k8s.io", "Lease"): _NAMESPACED,
    ("discovery.k8s.io", "EndpointSlice"): _NAMESPACED,
    ("events.k8s.io", "Event"): _NAMESPACED,
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"): _CLUSTER,
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"): _CLUSTER,
    ("networking.k8s.io", "Ingress"): _NAMESPACED,
    ("networking.k8s.io", "IngressClass"): _CLUSTER,
    ("networking.k8s.io", "NetworkPolicy"): _NAMESPACED,
    ("node.k8s.io", "RuntimeClass"): _CLUSTER,
    ("policy", "PodDisruptionBudget"): _NAMESPACED,
    ("rbac.authorization.k8s.io", "ClusterRole"): _CLUSTER,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _CLUSTER,
    ("rbac.authorization.k8s.io", "Role"): _NAMESPACED,
    ("rbac.authorization.k8s.io", "RoleBinding"): _NAMESPACED,
    ("scheduling.k8s.io", "PriorityClass"): _CLUSTER,
    ("storage.k8s.io", "CSIDriver"): _CLUSTER,
    ("storage.k8s.io", "CSINode"): _CLUSTER,
    ("storage.k8s.io", "CSIStorageCapacity"): _NAMESPACED,
    ("storage.k8s.io", "StorageClass"): _CLUSTER,
    ("storage.k8s.io", "VolumeAttachment"): _CLUSTER,
    ("argoproj.io", "Application"): _NAMESPACED,
    ("argoproj.io", "ApplicationSet"): _NAMESPACED,
    ("argoproj.io", "AppProject"): _NAMESPACED,
}


class KindLookup(Protocol):
    """Anything that answers "is this kind namespaced?": a :class:`KindTable`, or the service's view of a
    cluster's discovery. ``None`` means the kind is unknown."""

    def namespaced(self, group: str, kind: str) -> bool | None: ...


class KindTableError(ValueError):
    """An ``api-resources`` file or a CRD that cannot be read; the message names the source and line."""


@dataclass(frozen=True, slots=True)
class KindTable:
    """An immutable (group, kind) → namespaced lookup. Build with :meth:`builtin` and the ``with_*`` methods."""

    entries: Mapping[tuple[str, str], bool]
    origin: Mapping[tuple[str, str], str]

    @classmethod
    def builtin(cls) -> KindTable:
        return cls(dict(BUILTIN_KINDS), dict.fromkeys(BUILTIN_KINDS, "built-in table"))

    def namespaced(self, group: str, kind: str) -> bool | None:
        """True/False when known, None when the kind is unknown."""
        return self.entries.get((group, kind))

    def source_of(self, group: str, kind: str) -> str | None:
        return self.origin.get((group, kind))

    def with_entries(self, entries: Iterable[tuple[str, str, bool, str]]) -> KindTable:
        """A new table where ``(group, kind, namespaced, origin)`` entries override existing ones."""
        table = dict(self.entries)
        origin = dict(self.origin)
        for group, kind, namespaced, where in entries:
            table[(group, kind)] = namespaced
            origin[(group, kind)] = where
        return KindTable(table, origin)

    def with_crds(self, objects: Iterable[tuple[Mapping[str, Any], str]]) -> KindTable:
        """Add the kinds defined by CustomResourceDefinitions among ``(object, where)`` pairs."""
        found: list[tuple[str, str, bool, str]] = []
        for obj, where in objects:
            if obj.get("kind") != "CustomResourceDefinition" or group_of(str(obj.get("apiVersion", ""))) != (
                "apiextensions.k8s.io"
            ):
                continue
            spec = obj.get("spec")
            names = spec.get("names") if isinstance(spec, Mapping) else None
            group = spec.get("group") if isinstance(spec, Mapping) else None
            kind = names.get("kind") if isinstance(names, Mapping) else None
            scope = spec.get("scope") if isinstance(spec, Mapping) else None
            if not isinstance(group, str) or not isinstance(kind, str) or scope not in ("Namespaced", "Cluster"):
                raise KindTableError(
                    f"{where}: a CustomResourceDefinition needs string spec.group and spec.names.kind and "
                    "spec.scope Namespaced or Cluster"
                )
            found.append((group, kind, scope == "Namespaced", f"CRD in {where}"))
        return self.with_entries(found)

    def with_api_resources(self, text: str, *, source: str) -> KindTable:
        """Add the kinds listed by ``kubectl api-resources`` (default or ``-o wide`` output)."""
        return self.with_entries(parse_api_resources(text, source=source))


def parse_api_resources(text: str, *, source: str) -> list[tuple[str, str, bool, str]]:
    """Parse ``kubectl api-resources`` output. Columns are found from the header's positions, because the
    SHORTNAMES column is often blank and splitting on whitespace would shift the others."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise KindTableError(f"{source}: empty; expected the output of `kubectl api-resources`")
    header = lines[0]
    needed = ("APIVERSION", "NAMESPACED", "KIND")
    starts: dict[str, int] = {}
    for name in (*needed, "NAME", "SHORTNAMES", "VERBS", "CATEGORIES"):
        pos = _column(header, name)
        if pos is not None:
            starts[name] = pos
    missing = [name for name in needed if name not in starts]
    if missing:
        raise KindTableError(f"{source} line 1: header lacks column(s) {', '.join(missing)}")
    order = sorted(starts.items(), key=lambda item: item[1])
    out: list[tuple[str, str, bool, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        cells: dict[str, str] = {}
        for i, (name, start) in enumerate(order):
            end = order[i + 1][1] if i + 1 < len(order) else None
            cells[name] = line[start:end].strip()
        api_version, namespaced, kind = cells["APIVERSION"], cells["NAMESPACED"], cells["KIND"]
        if namespaced not in ("true", "false") or not kind or not api_version or " " in kind:
            raise KindTableError(f"{source} line {number}: expected APIVERSION, NAMESPACED true/false and KIND")
        out.append((group_of(api_version), kind, namespaced == "true", f"{source} line {number}"))
    return out


def _column(header: str, name: str) -> int | None:
    """Start of a whole-word column title in the header (NAME must not match inside SHORTNAMES)."""
    start = 0
    while True:
        pos = header.find(name, start)
        if pos < 0:
            return None
        before_ok = pos == 0 or header[pos - 1] == " "
        after = pos + len(name)
        after_ok = after == len(header) or header[after] == " "
        if before_ok and after_ok:
            return pos
        start = pos + 1
