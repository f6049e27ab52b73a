"""sync.diff: server-side-apply comparison, normalisation, ignoreDifferences, managedFields ownership, masking.

Aspects: server-populated and defaulted fields are not differences; a changed field is; a field removed from Git
is a difference only when syncwarden owned it; merge-keyed lists compare by key; ignoreDifferences pointers and
trusted managers; Secret stringData folding and masking (no clear value in items or the unified diff)."""

from __future__ import annotations

import base64
import copy
from typing import Any

from sync.diff import DiffItem, IgnoreRule, diff, mask_secret, normalize, owned_paths


def deployment(replicas: int = 2, image: str = "web:1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team-a", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "web", "image": image}]}},
        },
    }


def as_live(obj: dict[str, Any], owned: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    live = copy.deepcopy(obj)
    live["metadata"].update(
        uid="u-1", resourceVersion="42", generation=3, creationTimestamp="2026-01-01T00:00:00Z",
        managedFields=[{"manager": "syncwarden", "operation": "Apply", "fieldsV1": owned or {}}],
    )  # fmt: skip
    live["status"] = {"readyReplicas": 2}
    live["spec"]["progressDeadlineSeconds"] = 600  # a server default
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    live["spec"].update(extra)
    return live


def test_server_populated_and_defaulted_fields_are_not_differences() -> None:
    result = diff(deployment(), as_live(deployment()))
    assert not result.modified
    assert result.items == ()
    assert result.unified == ""


def test_a_changed_field_is_modified_and_explained() -> None:
    result = diff(deployment(replicas=3), as_live(deployment()))
    assert result.modified
    assert result.items == (DiffItem("change", "/spec/replicas", 2, 3),)
    assert "-  replicas: 2" in result.unified and "+  replicas: 3" in result.unified


def test_containers_compare_by_name() -> None:
    result = diff(deployment(image="web:2"), as_live(deployment()))
    assert [i.path for i in result.items] == ["/spec/template/spec/containers/0/image"]


def test_removed_field_counts_only_when_syncwarden_owned_it() -> None:
    desired = deployment()
    owned = {"f:spec": {"f:paused": {}, "f:replicas": {}}}
    live = as_live(deployment(), owned, paused=True)
    result = diff(desired, live)
    assert result.items == (DiffItem("remove", "/spec/paused", True, None),)
    live_not_owned = as_live(deployment(), {"f:spec": {"f:replicas": {}}}, paused=True)
    assert not diff(desired, live_not_owned).modified


def test_owned_paths_reads_fields_v1_with_associative_keys() -> None:
    live = as_live(deployment(), {"f:spec": {"f:template": {"f:spec": {"f:containers": {
        'k:{"name":"web"}': {".": {}, "f:image": {}}}}}}})  # fmt: skip
    assert owned_paths(live, "syncwarden") == [("spec", "template", "spec", "containers", 0, "image")]
    assert owned_paths(live, "kubectl") == []


def test_ignore_differences_json_pointers() -> None:
    rule = IgnoreRule(json_pointers=("/spec/replicas",))
    assert not diff(deployment(replicas=5), as_live(deployment()), rules=[rule]).modified


def test_managed_fields_managers_are_trusted() -> None:
    live = as_live(deployment(replicas=7))
    live["metadata"]["managedFields"].append({"manager": "hpa-controller", "fieldsV1": {"f:spec": {"f:replicas": {}}}})
    assert diff(deployment(replicas=2), live).modified
    assert not diff(
        deployment(replicas=2), live, rules=[IgnoreRule(managed_fields_managers=("hpa-controller",))]
    ).modified


def test_status_is_ignored_by_default_but_can_be_compared() -> None:
    desired = {**deployment(), "status": {"readyReplicas": 9}}
    assert not diff(desired, as_live(deployment())).modified
    assert diff(desired, as_live(deployment()), ignore_status=False).modified


def test_create_and_extraneous() -> None:
    created = diff(deployment(), None)
    assert created.modified and created.items[0].op == "add"
    assert not diff(None, as_live(deployment())).modified


def secret(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": data}


def test_secret_string_data_is_folded_into_data() -> None:
    desired = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"pw": "hunter2"}}
    folded = normalize(desired)
    assert folded["data"] == {"pw": base64.b64encode(b"hunter2").decode()}
    live = secret(pw=base64.b64encode(b"hunter2").decode())
    assert not diff(desired, live).modified


def test_secret_values_never_appear_in_a_diff() -> None:
    old, new = base64.b64encode(b"hunter2").decode(), base64.b64encode(b"correct-horse").decode()
    live = secret(pw=old, same="c2FtZQ==")
    live["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": f'{{"data":{{"pw":"{old}"}}}}'
    }
    result = diff(secret(pw=new, same="c2FtZQ=="), live)
    assert result.modified
    text = repr(result.items) + result.unified
    for clear in (old, new, "c2FtZQ==", "hunter2"):
        assert clear not in text
    assert "++++++++" in result.unified
    created = diff(secret(pw=new), None)
    assert new not in repr(created.items) + created.unified


def test_mask_secret_keeps_equal_values_equal_and_different_values_different() -> None:
    a, b = mask_secret(secret(x="AAAA", y="BBBB"), secret(x="AAAA", y="CCCC"))
    assert a is not None and b is not None
    assert a["data"]["x"] == b["data"]["x"]
    assert a["data"]["y"] != b["data"]["y"]
    assert mask_secret(deployment())[0] == deployment()
