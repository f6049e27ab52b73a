"""sync.tracking: the tracking id and who owns an object (argocd-sync-semantics §0, §3.3).

Aspects: the app instance name (control-plane namespace or ``<ns>_<app>``); format and strict parse of the id
(names with colons; every malformed shape is untracked); ownership per method, top-level only, and the
cluster layer's selector agreeing with it; stamping per method (CRDs untouched, cluster-scoped objects carry
the destination namespace, a manifest cannot claim another app's id, 63-character label truncation); the
self-reference check (copies with a cloned id, cluster-scoped objects, API group upgrades, label method);
migration normalisation from label to annotation tracking.
"""

from __future__ import annotations

from typing import Any

import pytest

from config.settings import SyncSettings
from sync import tracking
from sync.tracking import Tracking, TrackingId, format_id, instance_name, owner_of, parse_id

ANN = "syncwarden.io/tracking-id"
LBL = "app.kubernetes.io/instance"


def obj(
    kind: str = "ConfigMap", api: str = "v1", name: str = "cfg", ns: str | None = "web", **meta: Any
) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, **meta}
    if ns is not None:
        m["namespace"] = ns
    return {"apiVersion": api, "kind": kind, "metadata": m}


@pytest.mark.parametrize(
    ("app", "app_ns", "expected"),
    [
        pytest.param("guestbook", "syncwarden", "guestbook", id="control-plane-namespace"),
        pytest.param("guestbook", "", "guestbook", id="no-namespace"),
        pytest.param("guestbook", "team-a", "team-a_guestbook", id="other-namespace"),
    ],
)
def test_instance_name(app: str, app_ns: str, expected: str) -> None:
    assert instance_name(app, app_ns, control_plane_namespace="syncwarden") == expected
    assert Tracking().instance(app, app_ns) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("gb:apps/Deployment:web/api", TrackingId("gb", "apps", "Deployment", "web", "api"), id="valid"),
        pytest.param("gb:/ConfigMap:web/cfg", TrackingId("gb", "", "ConfigMap", "web", "cfg"), id="core-group"),
        pytest.param("gb:/Namespace:/ns1", TrackingId("gb", "", "Namespace", "", "ns1"), id="cluster-scoped-no-dest"),
        pytest.param(
            "gb:rbac.authorization.k8s.io/ClusterRole:web/system:controller:x",
            TrackingId("gb", "rbac.authorization.k8s.io", "ClusterRole", "web", "system:controller:x"),
            id="name-with-colons",
        ),
        pytest.param(
            "team-a_gb:/ConfigMap:web/cfg",
            TrackingId("team-a_gb", "", "ConfigMap", "web", "cfg"),
            id="namespaced-instance",
        ),
        pytest.param("gb", None, id="no-separators"),
        pytest.param("gb:apps/Deployment", None, id="two-parts"),
        pytest.param("gb:Deployment:web/api", None, id="no-slash-in-group-kind"),
        pytest.param("gb:apps/v1/Deployment:web/api", None, id="two-slashes-in-group-kind"),
        pytest.param("gb:apps/Deployment:api", None, id="no-slash-in-namespace-name"),
        pytest.param("gb:apps/Deployment:a/b/c", None, id="two-slashes-in-namespace-name"),
        pytest.param(":apps/Deployment:web/api", None, id="empty-instance"),
        pytest.param("gb:apps/:web/api", None, id="empty-kind"),
        pytest.param("gb:apps/Deployment:web/", None, id="empty-name"),
        pytest.param("gb :apps/Deployment:web/api", None, id="whitespace"),
        pytest.param("", None, id="empty"),
        pytest.param(42, None, id="not-a-string"),
    ],
)
def test_parse_id(value: object, expected: TrackingId | None) -> None:
    assert parse_id(value) == expected
    if expected is not None:
        assert str(expected) == value  # format and parse are inverse


def test_format_id() -> None:
    assert format_id("gb", group="apps", kind="Deployment", namespace="web", name="api") == "gb:apps/Deployment:web/api"


@pytest.mark.parametrize(
    ("method", "annotations", "labels", "owner_refs", "expected"),
    [
        pytest.param("annotation", {ANN: "gb:/ConfigMap:web/cfg"}, {}, False, "gb", id="annotation"),
        pytest.param("annotation", {ANN: "gb:ConfigMap:web/cfg"}, {}, False, None, id="annotation-malformed"),
        pytest.param("annotation", {}, {LBL: "gb"}, False, None, id="annotation-ignores-label"),
        pytest.param("annotation", {ANN: "gb:/ConfigMap:web/cfg"}, {}, True, None, id="owned-by-a-parent"),
        pytest.param("label", {}, {LBL: "gb"}, False, "gb", id="label"),
        pytest.param("label", {ANN: "gb:/ConfigMap:web/cfg"}, {}, False, None, id="label-ignores-annotation"),
        pytest.param("label", {}, {LBL: ""}, False, None, id="label-empty"),
        pytest.param(
            "annotation+label",
            {ANN: "gb:/ConfigMap:web/cfg"},
            {LBL: "other"},
            False,
            "gb",
            id="annotation+label-reads-annotation",
        ),
        pytest.param("annotation+label", {}, {LBL: "gb"}, False, None, id="annotation+label-label-alone"),
    ],
)
def test_owner_of(
    method: tracking.TrackingMethod,
    annotations: dict[str, str],
    labels: dict[str, str],
    owner_refs: bool,
    expected: str | None,
) -> None:
    extra: dict[str, Any] = {"annotations": annotations, "labels": labels}
    if owner_refs:
        extra["ownerReferences"] = [{"uid": "p"}]
    o = obj(**extra)
    t = Tracking(method=method)
    assert t.owner_of(o) == expected
    # the cluster layer's selector (used by list_managed and the cache) agrees
    assert t.selector().app_of(o) == expected
    assert t.selector("gb").matches(o) is (expected == "gb")


def test_owner_with_parent_is_still_a_claim() -> None:
    o = obj(annotations={ANN: "other:/ConfigMap:web/cfg"}, ownerReferences=[{"uid": "p"}])
    assert owner_of(o) is None
    assert owner_of(o, top_level_only=False) == "other"


def test_selector_keys_per_method() -> None:
    assert Tracking(method="label").selector("gb").label_selector() == f"{LBL}=gb"
    assert Tracking(method="annotation").selector("gb").label_selector() is None
    assert Tracking(method="annotation").selector().key == ANN


def test_from_settings() -> None:
    settings = SyncSettings(
        tracking_method="label", tracking_key="x.io/id", instance_label_key="x.io/app", control_plane_namespace="cp"
    )
    t = Tracking.from_settings(settings)
    assert (t.method, t.annotation_key, t.label_key, t.control_plane_namespace) == (
        "label",
        "x.io/id",
        "x.io/app",
        "cp",
    )
    assert t.instance("a", "cp") == "a"
    assert t.instance("a", "syncwarden") == "syncwarden_a"


# -- stamping ----------------------------------------------------------------------------------------------


def test_stamp_annotation() -> None:
    src = obj(annotations={"keep": "me"})
    out = Tracking().stamp(src, instance="gb", destination_namespace="web")
    assert out["metadata"]["annotations"] == {"keep": "me", ANN: "gb:/ConfigMap:web/cfg"}
    assert "labels" not in out["metadata"]
    assert src["metadata"]["annotations"] == {"keep": "me"}  # the input is not mutated


def test_stamp_cluster_scoped_carries_destination_namespace() -> None:
    out = Tracking().stamp(obj("Namespace", ns=None, name="web"), instance="gb", destination_namespace="web")
    assert out["metadata"]["annotations"][ANN] == "gb:/Namespace:web/web"
    assert "namespace" not in out["metadata"]


def test_stamp_overwrites_a_claim_from_git() -> None:
    src = obj(annotations={ANN: "other:/ConfigMap:web/cfg"}, labels={LBL: "other"})
    out = Tracking(method="annotation+label").stamp(src, instance="gb", destination_namespace="web")
    assert out["metadata"]["annotations"][ANN] == "gb:/ConfigMap:web/cfg"
    assert out["metadata"]["labels"][LBL] == "gb"


def test_stamp_label_only() -> None:
    out = Tracking(method="label").stamp(obj(), instance="gb", destination_namespace="web")
    assert out["metadata"]["labels"] == {LBL: "gb"}
    assert "annotations" not in out["metadata"]


def test_stamp_long_instance_label() -> None:
    long = "a" * 60 + "_-.bbbb"
    both = Tracking(method="annotation+label").stamp(obj(), instance=long, destination_namespace="web")
    assert both["metadata"]["labels"][LBL] == "a" * 60  # cut to 63, trailing "_-." stripped
    assert both["metadata"]["annotations"][ANN].startswith(long + ":")
    label_only = Tracking(method="label").stamp(obj(), instance=long, destination_namespace="web")
    assert label_only["metadata"]["labels"][LBL] == long  # not truncated: apply fails visibly


def test_stamp_skips_crds() -> None:
    crd = obj("CustomResourceDefinition", api="apiextensions.k8s.io/v1", ns=None, name="w.example.com")
    assert Tracking(method="annotation+label").stamp(crd, instance="gb", destination_namespace="web") == crd


# -- self-reference --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("live", "target", "expected"),
    [
        pytest.param(obj(annotations={ANN: "gb:/ConfigMap:web/cfg"}), None, True, id="extraneous-matching"),
        pytest.param(
            obj(ns="copy", annotations={ANN: "gb:/ConfigMap:web/cfg"}), None, False, id="copied-to-another-namespace"
        ),
        pytest.param(obj(name="cfg2", annotations={ANN: "gb:/ConfigMap:web/cfg"}), None, False, id="renamed-copy"),
        pytest.param(obj("Secret", annotations={ANN: "gb:/ConfigMap:web/cfg"}), None, False, id="other-kind"),
        pytest.param(
            obj("Namespace", ns=None, name="web", annotations={ANN: "gb:/Namespace:web/web"}),
            None,
            True,
            id="cluster-scoped-matches-any-namespace",
        ),
        pytest.param(obj(), None, True, id="no-annotation"),
        pytest.param(
            obj("Ingress", api="extensions/v1beta1", annotations={ANN: "gb:extensions/Ingress:web/cfg"}),
            obj("Ingress", api="extensions/v1beta1"),
            True,
            id="with-target",
        ),
        pytest.param(
            obj("Ingress", api="networking.k8s.io/v1", annotations={ANN: "gb:extensions/Ingress:web/cfg"}),
            obj("Ingress", api="networking.k8s.io/v1"),
            True,
            id="group-upgrade-uses-target-id",
        ),
        pytest.param(None, obj(), True, id="no-live"),
    ],
)
def test_self_reference(live: dict[str, Any] | None, target: dict[str, Any] | None, expected: bool) -> None:
    assert Tracking().is_self_referencing(live, target) is expected


def test_self_reference_label_method_always_passes() -> None:
    copy_ = obj(ns="copy", labels={LBL: "gb"}, annotations={ANN: "gb:/ConfigMap:web/cfg"})
    assert Tracking(method="label").is_self_referencing(copy_, None)


# -- migration --------------------------------------------------------------------------------------------


def test_migrate_label_to_annotation() -> None:
    t = Tracking()
    desired = t.stamp(obj(), instance="gb", destination_namespace="web")
    live = obj(labels={LBL: "gb", "app": "x"})
    migrated = t.migrate(live, desired)
    assert migrated["metadata"]["annotations"][ANN] == "gb:/ConfigMap:web/cfg"
    assert migrated["metadata"]["labels"] == {"app": "x"}  # desired has no instance label: dropped
    assert live["metadata"]["labels"] == {LBL: "gb", "app": "x"}  # input untouched


def test_migrate_keeps_label_desired_has() -> None:
    t = Tracking(method="annotation+label")
    desired = t.stamp(obj(), instance="gb", destination_namespace="web")
    migrated = t.migrate(obj(labels={LBL: "gb"}), desired)
    assert migrated["metadata"]["labels"] == {LBL: "gb"}
    assert migrated["metadata"]["annotations"][ANN] == "gb:/ConfigMap:web/cfg"


@pytest.mark.parametrize(
    ("method", "live"),
    [
        pytest.param(
            "annotation",
            obj(labels={LBL: "gb"}, annotations={ANN: "old:/ConfigMap:web/cfg"}),
            id="differing-annotation-kept",
        ),
        pytest.param("annotation", obj(), id="no-label"),
        pytest.param("label", obj(labels={LBL: "gb"}), id="label-method"),
        pytest.param(
            "annotation", obj("CustomResourceDefinition", api="apiextensions.k8s.io/v1", labels={LBL: "gb"}), id="crd"
        ),
    ],
)
def test_migrate_no_change(method: tracking.TrackingMethod, live: dict[str, Any]) -> None:
    t = Tracking(method=method)
    desired = t.stamp(obj(), instance="gb", destination_namespace="web")
    assert t.migrate(live, desired) == live


def test_with_tracking_of_takes_the_live_claim() -> None:
    t = Tracking(method="annotation+label")
    desired = t.stamp(obj(annotations={"keep": "me"}), instance="gb", destination_namespace="web")
    theirs = obj(annotations={ANN: "other:/ConfigMap:web/cfg"})
    out = t.with_tracking_of(desired, theirs)
    assert out["metadata"]["annotations"] == {"keep": "me", ANN: "other:/ConfigMap:web/cfg"}
    assert "labels" not in out["metadata"]  # the live object has no instance label
    assert desired["metadata"]["labels"] == {LBL: "gb"}  # input untouched
