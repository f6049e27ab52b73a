"""Builders shared by the comparison tests: an app, objects, their live twins, and a scope lookup."""

from __future__ import annotations

import copy
from typing import Any

from config.settings import SyncSettings
from sync.application import Application
from sync.compare import Comparison, compare
from sync.models import ResourceKey

ANN = "syncwarden.io/tracking-id"
LBL = "app.kubernetes.io/instance"

SCOPES: dict[tuple[str, str], bool] = {
    ("", "ConfigMap"): True,
    ("", "Secret"): True,
    ("", "Service"): True,
    ("", "Pod"): True,
    ("", "Namespace"): False,
    ("apps", "Deployment"): True,
    ("batch", "Job"): True,
    ("rbac.authorization.k8s.io", "ClusterRole"): False,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): False,
    ("argoproj.io", "Application"): True,
}


def scope(group: str, kind: str) -> bool | None:
    return SCOPES.get((group, kind))


def application(
    name: str = "gb", dest_ns: str = "web", ignore: list[dict[str, Any]] | None = None, namespace: str = "syncwarden"
) -> Application:
    spec: dict[str, Any] = {
        "project": "default",
        "source": {"repoURL": "https://git.example.com/gb.git", "path": ".", "targetRevision": "main"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": dest_ns},
    }
    if ignore:
        spec["ignoreDifferences"] = ignore
    return Application.from_dict(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def cm(name: str = "cfg", ns: str | None = None, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, **meta}
    if ns is not None:
        m["namespace"] = ns
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": m, "data": data if data is not None else {"k": "v"}}


def tracked_by(obj: dict[str, Any], instance: str = "gb", ns: str = "web") -> dict[str, Any]:
    """``obj`` as written by app ``instance`` (tracking annotation stamped, namespace defaulted)."""
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    group = out["apiVersion"].rpartition("/")[0] if "/" in out["apiVersion"] else ""
    if SCOPES.get((group, out["kind"]), True) and not meta.get("namespace"):
        meta["namespace"] = ns
    id_ns = meta.get("namespace") or ns
    meta.setdefault("annotations", {})[ANN] = f"{instance}:{group}/{out['kind']}:{id_ns}/{meta['name']}"
    return out


_UID = [0]


def live(obj: dict[str, Any], **status: Any) -> dict[str, Any]:
    """What the API server would hand back for ``obj``: server metadata added."""
    out = copy.deepcopy(obj)
    _UID[0] += 1
    out["metadata"].update(uid=f"uid-{_UID[0]}", resourceVersion="7", creationTimestamp="2026-01-01T00:00:00Z")
    if status:
        out["status"] = status
    return out


def run(
    manifests: list[dict[str, Any]],
    live_objs: list[dict[str, Any]],
    *,
    app: Application | None = None,
    permitted: Any = None,
    fetch: Any = None,
    settings: SyncSettings | None = None,
) -> Comparison:
    return compare(
        app or application(),
        manifests,
        live_objs,
        namespaced=scope,
        permitted=permitted or (lambda _obj: True),
        settings=settings or SyncSettings(),
        fetch=fetch,
    )


def row(comparison: Comparison, kind: str, name: str) -> Any:
    found = [r for r in comparison.resources if r.key.kind == kind and r.key.name == name]
    assert len(found) == 1, [r.key for r in comparison.resources]
    return found[0]


def key(kind: str, name: str, ns: str = "web", group: str = "") -> ResourceKey:
    return ResourceKey(group, kind, ns, name)
