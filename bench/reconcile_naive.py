"""The naive reconcile loop ``bench/reconcile.py`` compares against: what a first implementation would do.

Per app: one ``git ls-remote`` of its repository (no sharing between apps), the app's YAML parsed with
PyYAML's pure-Python ``SafeLoader``, one GET per desired object, and a generic recursive deep diff of desired
against live (server-populated metadata and the tracking annotation set aside first). It is given its files
from the working tree rather than a clone per app, which only flatters it.

Who calls this: ``bench/reconcile.py`` only. Figures are printed there, never asserted.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any

import yaml  # the naive baseline only; syncwarden itself parses through config.yamlsafe

from bench.reconcile_setup import GIT_ENV, BenchApp
from sync import kube
from sync.cluster import NotFound
from sync.models import ResourceKey

_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")


def deep_diff(left: Any, right: Any, path: str = "") -> list[str]:
    """Every path where ``left`` and ``right`` differ (dicts by key, lists by index, leaves by value)."""
    if isinstance(left, dict) and isinstance(right, dict):
        out: list[str] = []
        for key in sorted(set(left) | set(right), key=str):
            if key not in left or key not in right:
                out.append(f"{path}/{key}")
            else:
                out.extend(deep_diff(left[key], right[key], f"{path}/{key}"))
        return out
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return [path or "/"]
        return [p for i, (a, b) in enumerate(zip(left, right, strict=True)) for p in deep_diff(a, b, f"{path}/{i}")]
    return [] if left == right else [path or "/"]


def _comparable(live: dict[str, Any], tracking_key: str) -> dict[str, Any]:
    out = dict(live)
    meta = dict(out.get("metadata") or {})
    for name in _SERVER_FIELDS:
        meta.pop(name, None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != tracking_key}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def naive_pass(apps: Sequence[BenchApp], cluster: kube.KubeCluster, *, tracking_key: str) -> dict[str, str]:
    """One naive pass; returns each app's sync status (Synced/OutOfSync)."""
    status: dict[str, str] = {}
    for app in apps:
        listing = subprocess.run(["git", "ls-remote", "--", f"file://{app.repo}", "refs/heads/main"],
                                 env=GIT_ENV, check=True, capture_output=True, text=True).stdout
        if not listing.strip():
            raise RuntimeError(f"{app.name}: branch main not found")
        text = (app.repo / app.path / "all.yaml").read_text()
        desired = [d for d in yaml.load_all(text, Loader=yaml.SafeLoader) if d]
        out_of_sync = False
        for obj in desired:
            meta = obj["metadata"]
            try:
                live = cluster.get(ResourceKey("", obj["kind"], meta.get("namespace", ""), meta["name"]))
            except NotFound:
                out_of_sync = True
                continue
            if deep_diff(obj, _comparable(live, tracking_key)):
                out_of_sync = True
        status[app.name] = "OutOfSync" if out_of_sync else "Synced"
    return status
