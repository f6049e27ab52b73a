"""The tracking selector and object keys (argocd-sync-semantics §3.3).

Covers: annotation ids parsed as ``<app>:<group>/<kind>:<ns>/<name>`` (malformed ids are untracked);
label tracking and the server-side label selector it yields; objects with ownerReferences are never
considered; ``key_of`` ignores the version; ``ResourceInfo.path`` for core, grouped, namespaced and
cluster-scoped types; splitting a watch stream into lines as they arrive.
"""

from __future__ import annotations

from typing import Any

import pytest

from sync.cluster import ResourceInfo, TrackingSelector, key_of
from sync.models import ResourceKey


def _obj(
    annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None, **meta: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "prod",
            "annotations": annotations or {},
            "labels": labels or {},
            **meta,
        },
    }


KEY = "syncwarden.io/tracking-id"


@pytest.mark.parametrize(
    ("value", "app"),
    [
        pytest.param("guestbook:apps/Deployment:prod/web", "guestbook", id="valid"),
        pytest.param("guestbook:/ConfigMap:prod/cfg", "guestbook", id="core-group"),
        pytest.param("team_app:/Namespace:/ns1", "team_app", id="cluster-scoped"),
        pytest.param("guestbook", None, id="no-parts"),
        pytest.param("guestbook:apps/Deployment", None, id="two-parts"),
        pytest.param("guestbook:Deployment:prod/web", None, id="no-slash-in-gk"),
        pytest.param("guestbook:apps/Deployment:web", None, id="no-slash-in-nsname"),
        pytest.param(":apps/Deployment:prod/web", None, id="empty-app"),
    ],
)
def test_annotation_tracking(value: str, app: str | None) -> None:
    sel = TrackingSelector(key=KEY, method="annotation")
    assert sel.app_of(_obj({KEY: value})) == app
    assert sel.label_selector() is None
    assert sel.for_app("guestbook").matches(_obj({KEY: value})) is (app == "guestbook")


def test_annotation_plus_label_uses_the_annotation() -> None:
    sel = TrackingSelector(key=KEY, method="annotation+label", app="a")
    assert sel.matches(_obj({KEY: "a:apps/Deployment:prod/web"}, {KEY: "b"}))
    assert not sel.matches(_obj({}, {KEY: "a"}))
    assert sel.label_selector() is None


def test_label_tracking() -> None:
    sel = TrackingSelector(key=KEY, method="label")
    assert sel.label_selector() == KEY
    assert sel.for_app("guestbook").label_selector() == f"{KEY}=guestbook"
    assert sel.app_of(_obj(labels={KEY: "guestbook"})) == "guestbook"
    assert sel.app_of(_obj({KEY: "guestbook:apps/Deployment:prod/web"})) is None


def test_objects_with_owner_references_are_not_considered() -> None:
    sel = TrackingSelector(key=KEY, method="annotation")
    owned = _obj({KEY: "a:apps/Deployment:prod/web"}, ownerReferences=[{"uid": "x"}])
    assert sel.app_of(owned) is None
    assert sel.app_of(_obj({KEY: "a:apps/Deployment:prod/web"})) == "a"


def test_key_of_ignores_version() -> None:
    assert key_of(_obj()) == ResourceKey("apps", "Deployment", "prod", "web")
    assert key_of({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}) == ResourceKey(
        "", "Namespace", "", "x"
    )


def test_resource_info_paths() -> None:
    cm = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
    assert cm.api_version == "v1"
    assert cm.path() == "/api/v1/configmaps"
    assert cm.path(namespace="n", name="c") == "/api/v1/namespaces/n/configmaps/c"
    crb = ResourceInfo("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False)
    assert crb.path(namespace="ignored", name="x") == "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/x"
    assert str(crb) == "rbac.authorization.k8s.io/v1/ClusterRoleBinding"


def test_split_lines_yields_each_complete_line() -> None:
    from sync.cluster import split_lines

    chunks = iter([b'{"a":', b'1}\n{"b"', b":2}\n\n", b'{"c":3}'])
    lines = split_lines(chunks)
    assert next(lines) == '{"a":1}'  # before the later chunks are read
    assert list(lines) == ['{"b":2}', '{"c":3}']
