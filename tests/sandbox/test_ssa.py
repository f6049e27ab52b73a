"""Server-side apply and managedFields, as pure functions (``sandbox.ssa``, ``fieldwalk``, ``fieldset``).

Covers: the fieldsV1 format (members, ``"."``, ``k:``/``v:`` keys, round trip, printed paths);
conflicts with Update and Apply managers and their exact messages; force moving ownership; fields a
manager stops applying being removed, unless shared; associative lists (containers, ports with the
defaulted protocol, finalizers as a set); atomic LabelSelectors; server-managed fields never owned;
before-first-apply; Update records (create, change, removal, no-op, status subresource, reset).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sandbox import fieldset, ssa
from sandbox.patch import PatchError

T0, T1, T2 = "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z"
SEL = {"matchLabels": {"app": "web"}}


def deployment(*, replicas: int | None = 1, labels: dict[str, str] | None = None,
               containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": copy.deepcopy(SEL),
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": containers if containers is not None else [{"name": "nginx", "image": "nginx:1"}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": labels if labels is not None else {"app": "web"}},
        "spec": spec,
    }


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """``{(manager, operation): {printed field paths}}`` from an object's managedFields."""
    out: dict[tuple[str, str], set[str]] = {}
    for entry in obj["metadata"].get("managedFields", []):
        paths = fieldset.from_fields_v1(entry["fieldsV1"])
        out[(entry["manager"], entry["operation"])] = {fieldset.path_string(p) for p in paths}
    return out


def entry(obj: dict[str, Any], manager: str, operation: str) -> dict[str, Any]:
    return next(e for e in obj["metadata"]["managedFields"] if e["manager"] == manager and e["operation"] == operation)


def apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str = "syncwarden", *,
          force: bool = False, now: str = T1) -> dict[str, Any]:
    before = copy.deepcopy(live)
    result = ssa.server_side_apply(live, applied, manager=manager, force=force, now=now)
    assert live == before, "the live object must not be mutated"
    return result


def created_by_kubectl(obj: dict[str, Any]) -> dict[str, Any]:
    return ssa.record_update(None, obj, manager="kubectl-client-side-apply", now=T0)


# ------------------------------------------------------------------------------------------ fieldsV1


def test_fields_v1_format_round_trips() -> None:
    paths = {
        ("f:spec", "f:replicas"),
        ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"nginx"}'),
        ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"nginx"}', "f:image"),
        ("f:metadata", "f:finalizers", 'v:"example.com/x"'),
    }
    tree = fieldset.to_fields_v1(paths)
    assert tree == {
        "f:metadata": {"f:finalizers": {'v:"example.com/x"': {}}},
        "f:spec": {
            "f:replicas": {},
            "f:template": {"f:spec": {"f:containers": {'k:{"name":"nginx"}': {".": {}, "f:image": {}}}}},
        },
    }
    assert fieldset.from_fields_v1(tree) == paths


@pytest.mark.parametrize(
    ("path", "printed"),
    [
        pytest.param(("f:spec", "f:replicas"), ".spec.replicas", id="fields"),
        pytest.param(("f:spec", "f:containers", 'k:{"name":"nginx"}', "f:image"),
                     '.spec.containers[name="nginx"].image', id="string-key"),
        pytest.param(("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}'),
                     '.ports[containerPort=80,protocol="TCP"]', id="multi-key"),
        pytest.param(("f:metadata", "f:finalizers", 'v:"x"'), '.metadata.finalizers[="x"]', id="set-value"),
        pytest.param(("f:metadata", "f:labels", "f:app.kubernetes.io/name"), ".metadata.labels.app.kubernetes.io/name",
                     id="label-with-dots"),
    ],
)
def test_path_strings(path: tuple[str, ...], printed: str) -> None:
    assert fieldset.path_string(path) == printed


@pytest.mark.parametrize(
    "tree",
    [
        pytest.param([], id="not-an-object"),
        pytest.param({"f:spec": 1}, id="leaf-not-an-object"),
        pytest.param({"x:spec": {}}, id="unknown-prefix"),
        pytest.param({"k:notjson": {}}, id="bad-key-json"),
        pytest.param({"f:": {}}, id="empty-field"),
    ],
)
def test_bad_fields_v1_is_rejected(tree: Any) -> None:
    with pytest.raises(ValueError, match="fieldsV1"):
        fieldset.from_fields_v1(tree)


# ------------------------------------------------------------------------------------------ apply


def test_apply_creates_with_one_apply_entry() -> None:
    result = apply(None, deployment(replicas=2), now=T1)
    assert result["spec"]["replicas"] == 2
    assert result["metadata"]["managedFields"] == [{
        "manager": "syncwarden",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": T1,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {'k:{"name":"nginx"}': {".": {}, "f:image": {}, "f:name": {}}}},
                },
            },
        },
    }]


def test_classic_conflict_with_client_side_apply_on_replicas() -> None:
    live = created_by_kubectl(deployment(replicas=1))
    with pytest.raises(ssa.ApplyConflict) as caught:
        apply(live, deployment(replicas=3))
    assert str(caught.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )
    assert caught.value.conflicts == [("kubectl-client-side-apply", ".spec.replicas")]
    assert caught.value.causes == [{
        "reason": "FieldManagerConflict",
        "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
        "field": ".spec.replicas",
    }]


def test_force_moves_ownership() -> None:
    live = created_by_kubectl(deployment(replicas=1))
    result = apply(live, deployment(replicas=3), force=True)
    assert result["spec"]["replicas"] == 3
    owners = managers(result)
    assert ".spec.replicas" in owners[("syncwarden", "Apply")]
    assert ".spec.replicas" not in owners[("kubectl-client-side-apply", "Update")]
    # Fields applied with the value already there are shared, not taken.
    assert ".spec.template.spec.containers[name=\"nginx\"].image" in owners[("kubectl-client-side-apply", "Update")]
    # Once owned, re-applying the new value is not a conflict any more.
    again = apply(result, deployment(replicas=5))
    assert again["spec"]["replicas"] == 5


def test_same_value_is_shared_not_a_conflict() -> None:
    live = created_by_kubectl(deployment(replicas=1))
    result = apply(live, deployment(replicas=1))
    owners = managers(result)
    assert ".spec.replicas" in owners[("syncwarden", "Apply")]
    assert ".spec.replicas" in owners[("kubectl-client-side-apply", "Update")]


def test_conflict_with_another_applier_names_it_without_api_version() -> None:
    live = apply(None, deployment(replicas=1), manager="helm")
    with pytest.raises(ssa.ApplyConflict) as caught:
        apply(live, deployment(replicas=2))
    assert str(caught.value) == 'Apply failed with 1 conflict: conflict with "helm": .spec.replicas'


def test_several_conflicts_are_grouped_per_manager() -> None:
    live = created_by_kubectl(deployment(replicas=1, labels={"app": "web"}))
    live = ssa.record_update(live, {**live, "metadata": {**live["metadata"], "labels": {"app": "web", "team": "a"}}},
                             manager="kubectl-label", now=T0)
    with pytest.raises(ssa.ApplyConflict) as caught:
        apply(live, deployment(replicas=2, labels={"app": "web", "team": "b"}))
    assert str(caught.value) == (
        "Apply failed with 2 conflicts: "
        'conflicts with "kubectl-client-side-apply" using apps/v1:\n- .spec.replicas\n'
        'conflicts with "kubectl-label" using apps/v1:\n- .metadata.labels.team'
    )
    assert sorted(caught.value.conflicts) == [
        ("kubectl-client-side-apply", ".spec.replicas"), ("kubectl-label", ".metadata.labels.team")]


def test_label_no_longer_applied_is_removed() -> None:
    live = apply(None, deployment(labels={"app": "web", "tier": "front"}))
    result = apply(live, deployment(labels={"app": "web"}))
    assert result["metadata"]["labels"] == {"app": "web"}
    assert ".metadata.labels.tier" not in managers(result)[("syncwarden", "Apply")]


def test_last_label_removed_drops_the_map() -> None:
    live = apply(None, deployment(labels={"tier": "front"}))
    result = apply(live, {k: v for k, v in deployment().items() if k != "metadata"} | {"metadata": {"name": "web"}})
    assert "labels" not in result["metadata"]


def test_field_shared_with_another_manager_is_kept_when_one_stops_applying() -> None:
    live = apply(None, deployment(labels={"app": "web", "tier": "front"}), manager="syncwarden")
    live = apply(live, deployment(labels={"tier": "front"}), manager="other")
    result = apply(live, deployment(labels={"app": "web"}), manager="syncwarden")
    assert result["metadata"]["labels"] == {"app": "web", "tier": "front"}
    owners = managers(result)
    assert ".metadata.labels.tier" not in owners[("syncwarden", "Apply")]
    assert ".metadata.labels.tier" in owners[("other", "Apply")]


def test_field_owned_by_an_updater_is_kept_when_the_applier_stops() -> None:
    live = created_by_kubectl(deployment(replicas=2))
    live = apply(live, deployment(replicas=2))
    result = apply(live, deployment(replicas=None))
    assert result["spec"]["replicas"] == 2
    assert ".spec.replicas" not in managers(result)[("syncwarden", "Apply")]


def test_containers_merge_by_name_and_stale_ones_are_removed() -> None:
    mine = [{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "side:1"}]
    live = apply(None, deployment(containers=mine))
    live = apply(live, deployment(containers=[{"name": "injected", "image": "proxy:1"}]), manager="injector")
    names = [c["name"] for c in live["spec"]["template"]["spec"]["containers"]]
    assert names == ["app", "sidecar", "injected"]
    result = apply(live, deployment(containers=[{"name": "app", "image": "app:2"}]))
    assert result["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "image": "app:2"}, {"name": "injected", "image": "proxy:1"}]


@pytest.mark.parametrize(
    ("live_names", "applied_names", "expected"),
    [
        pytest.param(["a", "b", "c"], ["c", "a"], ["b", "c", "a"], id="shared-items-follow-the-applied-order"),
        pytest.param(["a", "b"], ["a", "new", "b"], ["a", "new", "b"], id="new-item-placed-between-shared"),
        pytest.param(["x", "a"], ["a", "z"], ["x", "a", "z"], id="unapplied-items-keep-their-place"),
    ],
)
def test_associative_list_order(live_names: list[str], applied_names: list[str], expected: list[str]) -> None:
    live = apply(None, deployment(containers=[{"name": n, "image": "i"} for n in live_names]), manager="other")
    result = apply(live, deployment(containers=[{"name": n, "image": "i"} for n in applied_names]))
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == expected


def test_container_ports_are_keyed_with_the_defaulted_protocol() -> None:
    containers = [{"name": "app", "image": "a", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}]
    result = apply(None, deployment(containers=containers))
    owned = managers(result)[("syncwarden", "Apply")]
    base = '.spec.template.spec.containers[name="app"].ports'
    assert f'{base}[containerPort=80,protocol="TCP"]' in owned
    assert f'{base}[containerPort=53,protocol="UDP"].protocol' in owned


def test_service_ports_merge_by_port_and_protocol() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80, "targetPort": 8080}]}}
    live = apply(None, svc, manager="a")
    live = apply(live, {**svc, "spec": {"ports": [{"port": 443}]}}, manager="b")
    assert [p["port"] for p in live["spec"]["ports"]] == [80, 443]


def test_finalizers_are_a_set() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a/x"]}}
    live = apply(None, obj, manager="a")
    live = apply(live, {**obj, "metadata": {"name": "c", "finalizers": ["b/y"]}}, manager="b")
    assert live["metadata"]["finalizers"] == ["a/x", "b/y"]
    assert '.metadata.finalizers[="b/y"]' in managers(live)[("b", "Apply")]


def test_label_selector_is_atomic_and_other_lists_replace() -> None:
    live = apply(None, deployment(), manager="a")
    owned = managers(live)[("a", "Apply")]
    assert ".spec.selector" in owned
    assert ".spec.selector.matchLabels.app" not in owned
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    live = apply(None, {**cm, "spec": {"args": ["a", "b"]}}, manager="x")
    result = apply(live, {**cm, "spec": {"args": ["c"]}}, manager="x")
    assert result["spec"]["args"] == ["c"]


def test_server_managed_fields_are_never_owned() -> None:
    live = created_by_kubectl(deployment())
    live["metadata"].update(uid="u-1", resourceVersion="7", generation=2, creationTimestamp=T0)
    live["status"] = {"replicas": 1}
    applied = deployment()
    applied["metadata"].update(uid="other", resourceVersion="1", generation=9)
    applied["status"] = {"replicas": 99}
    result = apply(live, applied)
    assert result["metadata"]["uid"] == "u-1"
    assert result["metadata"]["resourceVersion"] == "7"
    assert result["metadata"]["generation"] == 2
    assert result["status"] == {"replicas": 1}
    for paths in managers(result).values():
        assert not any(p.startswith((".status", ".apiVersion", ".kind", ".metadata.name", ".metadata.uid",
                                     ".metadata.resourceVersion", ".metadata.generation")) for p in paths)


def test_null_in_the_configuration_removes_the_field_and_owns_it() -> None:
    live = created_by_kubectl(deployment(replicas=4))
    applied = deployment(replicas=None)
    applied["spec"]["paused"] = None
    result = apply(live, applied)
    assert "paused" not in result["spec"]
    assert ".spec.paused" in managers(result)[("syncwarden", "Apply")]


def test_empty_object_values_are_owned_leaves() -> None:
    applied = deployment()
    applied["spec"]["template"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    owned = managers(apply(None, applied))[("syncwarden", "Apply")]
    assert '.spec.template.spec.volumes[name="data"].emptyDir' in owned


def test_noop_apply_keeps_the_entry_time() -> None:
    live = apply(None, deployment(), now=T1)
    again = apply(live, deployment(), now=T2)
    assert again == live
    assert entry(again, "syncwarden", "Apply")["time"] == T1
    changed = apply(live, deployment(replicas=9), now=T2)
    assert entry(changed, "syncwarden", "Apply")["time"] == T2


def test_object_without_managed_fields_gets_before_first_apply() -> None:
    live = deployment(replicas=1)
    with pytest.raises(ssa.ApplyConflict) as caught:
        apply(live, deployment(replicas=2))
    assert caught.value.conflicts == [("before-first-apply", ".spec.replicas")]
    result = apply(live, deployment(replicas=1))
    assert ".spec.replicas" in managers(result)[("before-first-apply", "Update")]


@pytest.mark.parametrize(
    ("applied", "message"),
    [
        pytest.param({"kind": "Deployment", "metadata": {"name": "x"}}, "apiVersion and kind", id="no-apiVersion"),
        pytest.param(deployment(containers=[{"image": "nameless"}]), "omits key field 'name'", id="container-without-name"),
        pytest.param(deployment(containers=["nginx"]), "must be objects",  # type: ignore[list-item]
                     id="container-not-an-object"),
    ],
)
def test_malformed_configuration_is_a_patch_error(applied: dict[str, Any], message: str) -> None:
    with pytest.raises(PatchError) as caught:
        apply(None, applied)
    assert message in str(caught.value)


# ------------------------------------------------------------------------------------------ update


def test_create_records_an_update_entry_like_the_api_server() -> None:
    created = created_by_kubectl(deployment(replicas=1))
    row = entry(created, "kubectl-client-side-apply", "Update")
    assert row["apiVersion"] == "apps/v1"
    assert row["time"] == T0
    assert row["fieldsType"] == "FieldsV1"
    fields = row["fieldsV1"]
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert "." not in fields["f:spec"]
    assert "." not in fields["f:spec"]["f:template"]
    assert fields["f:spec"]["f:replicas"] == {}


def test_update_takes_changed_fields_from_the_applier() -> None:
    live = apply(None, deployment(replicas=2))
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    scaled = ssa.record_update(live, scaled, manager="kubectl", now=T2)
    owners = managers(scaled)
    assert owners[("kubectl", "Update")] == {".spec.replicas"}
    assert ".spec.replicas" not in owners[("syncwarden", "Apply")]
    with pytest.raises(ssa.ApplyConflict, match='conflict with "kubectl" using apps/v1: .spec.replicas'):
        apply(scaled, deployment(replicas=2))


def test_update_without_changes_leaves_managed_fields_alone() -> None:
    live = apply(None, deployment(), now=T1)
    same = ssa.record_update(live, copy.deepcopy(live), manager="kubectl", now=T2)
    assert same["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_update_that_removes_a_field_drops_it_from_every_manager() -> None:
    live = apply(None, deployment(labels={"app": "web", "tier": "front"}))
    edited = copy.deepcopy(live)
    del edited["metadata"]["labels"]["tier"]
    result = ssa.record_update(live, edited, manager="kubectl-edit", now=T2)
    assert ".metadata.labels.tier" not in managers(result)[("syncwarden", "Apply")]
    assert ("kubectl-edit", "Update") not in managers(result)


def test_status_updates_are_tracked_only_on_the_status_subresource() -> None:
    live = apply(None, deployment())
    with_status = copy.deepcopy(live)
    with_status["status"] = {"replicas": 1, "readyReplicas": 1}
    main = ssa.record_update(live, with_status, manager="controller", now=T2)
    assert ("controller", "Update") not in managers(main)
    sub = ssa.record_update(live, with_status, manager="controller", now=T2, subresource="status")
    row = entry(sub, "controller", "Update")
    assert row["subresource"] == "status"
    assert managers(sub)[("controller", "Update")] == {".status.replicas", ".status.readyReplicas"}
    ready = copy.deepcopy(sub)
    ready["status"]["conditions"] = [{"type": "Available", "status": "True"}]
    ready = ssa.record_update(sub, ready, manager="controller", now=T2, subresource="status")
    assert '.status.conditions[type="Available"].status' in managers(ready)[("controller", "Update")]


def test_apply_to_the_status_subresource_owns_and_changes_status_only() -> None:
    live = apply(None, deployment(replicas=1))
    applied = deployment(replicas=7)
    applied["status"] = {"replicas": 1}
    result = ssa.server_side_apply(live, applied, manager="ctl", force=False, now=T2, subresource="status")
    assert result["spec"]["replicas"] == 1
    assert result["status"] == {"replicas": 1}
    row = entry(result, "ctl", "Apply")
    assert row["subresource"] == "status"
    assert managers(result)[("ctl", "Apply")] == {".status.replicas"}


def test_request_managed_fields_are_honoured_and_can_be_reset() -> None:
    live = apply(None, deployment())
    reset = copy.deepcopy(live)
    reset["metadata"]["managedFields"] = [{}]
    assert "managedFields" not in ssa.record_update(live, reset, manager="x", now=T2)["metadata"]
    garbage = copy.deepcopy(live)
    garbage["metadata"]["managedFields"] = [{"manager": "m", "operation": "Explode"}]
    kept = ssa.record_update(live, garbage, manager="x", now=T2)
    assert kept["metadata"]["managedFields"] == live["metadata"]["managedFields"]
