"""Discovery index logic, fed by a dict of discovery documents (the fetch seam; the sandbox-backed
tests in test_kube.py cover the same through the real client).

Covers: preferred versions; lookup of non-preferred versions; subresources skipped; a miss refreshes
once, at most once per ``min_refresh_seconds`` of the injected clock; ``invalidate``; a failing group
version is skipped; ``served`` lists only listable+watchable types.
"""

from __future__ import annotations

from typing import Any

import pytest

from sync.cluster import Unavailable, UnknownKind
from sync.cluster_discovery import Discovery


def _docs() -> dict[str, Any]:
    return {
        "/api": {"versions": ["v1"]},
        "/api/v1": {
            "resources": [
                {"name": "configmaps", "kind": "ConfigMap", "namespaced": True, "verbs": ["get", "list", "watch"]},
                {"name": "namespaces", "kind": "Namespace", "namespaced": False, "verbs": ["get", "list", "watch"]},
                {"name": "namespaces/status", "kind": "Namespace", "namespaced": False, "verbs": ["get"]},
                {"name": "bindings", "kind": "Binding", "namespaced": True, "verbs": ["create"]},
            ]
        },
        "/apis": {
            "groups": [
                {
                    "name": "autoscaling",
                    "preferredVersion": {"version": "v2"},
                    "versions": [{"version": "v2"}, {"version": "v1"}],
                },
                {"name": "broken.example.com", "preferredVersion": {"version": "v1"}, "versions": [{"version": "v1"}]},
            ]
        },
        "/apis/autoscaling/v2": {
            "resources": [
                {
                    "name": "horizontalpodautoscalers",
                    "kind": "HorizontalPodAutoscaler",
                    "namespaced": True,
                    "verbs": ["list", "watch"],
                }
            ]
        },
        "/apis/autoscaling/v1": {
            "resources": [
                {
                    "name": "horizontalpodautoscalers",
                    "kind": "HorizontalPodAutoscaler",
                    "namespaced": True,
                    "verbs": ["list", "watch"],
                },
                {"name": "legacythings", "kind": "LegacyThing", "namespaced": False, "verbs": ["list", "watch"]},
            ]
        },
    }


class Server:
    def __init__(self) -> None:
        self.docs = _docs()
        self.fetches: list[str] = []
        self.now = 0.0

    def fetch(self, path: str) -> Any:
        self.fetches.append(path)
        if path not in self.docs:
            raise Unavailable(f"GET {path}: 503", status=503)
        return self.docs[path]

    def clock(self) -> float:
        return self.now


def test_lookups() -> None:
    srv = Server()
    disc = Discovery(srv.fetch, clock=srv.clock)
    hpa = disc.resource_for("autoscaling/v1", "HorizontalPodAutoscaler")
    assert (hpa.group, hpa.version, hpa.plural, hpa.namespaced) == (
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        True,
    )
    assert disc.resource_for_group_kind("autoscaling", "HorizontalPodAutoscaler").version == "v2"
    assert disc.resource_for_group_kind("autoscaling", "LegacyThing").version == "v1"  # only there
    assert disc.is_namespaced("", "ConfigMap")
    assert not disc.is_namespaced("", "Namespace")
    assert disc.resource_for("v1", "Namespace").plural == "namespaces"  # not the status subresource
    served = {(i.group, i.kind) for i in disc.served()}
    assert ("", "Binding") not in served
    assert ("autoscaling", "HorizontalPodAutoscaler") in served
    assert disc.refreshes == 1


def test_miss_refreshes_once_then_unknown_kind() -> None:
    srv = Server()
    disc = Discovery(srv.fetch, clock=srv.clock, min_refresh_seconds=5.0)
    disc.resource_for("v1", "ConfigMap")
    with pytest.raises(UnknownKind, match="example.com/v1/Widget"):
        disc.resource_for("example.com/v1", "Widget")
    assert disc.refreshes == 1  # too soon after the first load: no refresh
    srv.now = 10.0
    srv.docs["/apis"]["groups"].append(
        {"name": "example.com", "preferredVersion": {"version": "v1"}, "versions": [{"version": "v1"}]}
    )
    srv.docs["/apis/example.com/v1"] = {
        "resources": [{"name": "widgets", "kind": "Widget", "namespaced": True, "verbs": ["list", "watch"]}]
    }
    assert disc.resource_for("example.com/v1", "Widget").plural == "widgets"
    assert disc.refreshes == 2


def test_invalidate_forces_a_rebuild() -> None:
    srv = Server()
    disc = Discovery(srv.fetch, clock=srv.clock)
    disc.served()
    count = len(srv.fetches)
    disc.served()
    assert len(srv.fetches) == count  # cached
    disc.invalidate()
    disc.served()
    assert len(srv.fetches) == 2 * count


def test_incomplete_api_version() -> None:
    disc = Discovery(Server().fetch)
    with pytest.raises(UnknownKind, match="incomplete"):
        disc.resource_for("", "ConfigMap")


def test_failing_group_version_is_skipped() -> None:
    srv = Server()
    disc = Discovery(srv.fetch, clock=srv.clock)
    assert disc.is_namespaced("", "ConfigMap")
    assert "/apis/broken.example.com/v1" in srv.fetches


def test_failing_root_propagates() -> None:
    srv = Server()
    del srv.docs["/apis"]
    with pytest.raises(Unavailable):
        Discovery(srv.fetch).served()
