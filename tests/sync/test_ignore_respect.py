"""sync.ignore_respect, pure: the target RespectIgnoreDifferences writes (reference §4.12).

Covers: an ignored field takes its live value, or is dropped when live has none; entries match by group/kind
globs and name like the comparison's; list items matched by merge key (the other items and fields keep Git's
values), a whole ignored item kept, a field of an item Git does not have left out, positional list items put
back in place; ``status`` and the server's metadata never copied; the input target is not changed.
"""

from __future__ import annotations

import copy
from typing import Any

from sync.application import IgnoreDifference
from sync.ignore_respect import respect_ignored
from sync.models import ResourceKey

KEY = ResourceKey("apps", "Deployment", "team-a", "web")


def _deploy(replicas: int, containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team-a", **extra.pop("metadata", {})},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": containers}}, **extra},
    }


TARGET = _deploy(1, [{"name": "app", "image": "app:2"}, {"name": "proxy", "image": "proxy:1"}], args=["a", "b", "c"])
LIVE = _deploy(
    5,
    [{"name": "proxy", "image": "proxy:9"}, {"name": "app", "image": "app:1"}, {"name": "mesh", "image": "mesh:3"}],
    args=["a", "B", "c"],
    metadata={"uid": "u-1", "resourceVersion": "42", "labels": {"team": "a"}},
)
LIVE["status"] = {"replicas": 5}


def _entry(**fields: Any) -> IgnoreDifference:
    values = {"group": "apps", "kind": "Deployment", **fields}
    for name in ("json_pointers", "jq_path_expressions", "managed_fields_managers"):
        values[name] = tuple(values.get(name, ()))
    return IgnoreDifference(**values)


def _containers(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["name"], c["image"]) for c in obj["spec"]["template"]["spec"]["containers"]]


def test_an_ignored_field_takes_its_live_value_and_nothing_else_changes() -> None:
    before = copy.deepcopy(TARGET)
    out = respect_ignored(TARGET, LIVE, [_entry(json_pointers=["/spec/replicas", "/status"])], KEY)
    assert out["spec"]["replicas"] == 5
    assert "status" not in out and out["metadata"] == TARGET["metadata"]
    assert _containers(out) == _containers(TARGET) and out["spec"]["args"] == ["a", "b", "c"]
    assert before == TARGET  # the input is not changed


def test_entries_that_do_not_match_the_resource_change_nothing() -> None:
    entries = [_entry(kind="StatefulSet", json_pointers=["/spec/replicas"]),
               _entry(name="other", json_pointers=["/spec/replicas"]),
               _entry(group="", json_pointers=["/spec/replicas"])]
    assert respect_ignored(TARGET, LIVE, entries, KEY) == TARGET
    assert respect_ignored(TARGET, LIVE, [_entry(group="app*", kind="*", json_pointers=["/spec/replicas"])],
                           KEY)["spec"]["replicas"] == 5


def test_an_ignored_field_the_live_object_lacks_is_not_written() -> None:
    live = copy.deepcopy(LIVE)
    del live["spec"]["replicas"]
    out = respect_ignored(TARGET, live, [_entry(json_pointers=["/spec/replicas"])], KEY)
    assert "replicas" not in out["spec"]


def test_list_items_are_matched_by_their_merge_key() -> None:
    image = '.spec.template.spec.containers[] | select(.name == "app") | .image'
    out = respect_ignored(TARGET, LIVE, [_entry(jq_path_expressions=[image])], KEY)
    assert _containers(out) == [("app", "app:1"), ("proxy", "proxy:1")]

    whole = '.spec.template.spec.containers[] | select(.name == "mesh")'  # injected by a mutating webhook
    out = respect_ignored(TARGET, LIVE, [_entry(jq_path_expressions=[whole])], KEY)
    assert _containers(out) == [("app", "app:2"), ("proxy", "proxy:1"), ("mesh", "mesh:3")]

    mesh_image = '.spec.template.spec.containers[] | select(.name == "mesh") | .image'
    out = respect_ignored(TARGET, LIVE, [_entry(jq_path_expressions=[mesh_image])], KEY)
    assert _containers(out) == _containers(TARGET)  # never half a container


def test_a_positional_list_item_goes_back_in_its_place() -> None:
    out = respect_ignored(TARGET, LIVE, [_entry(json_pointers=["/spec/args/1"])], KEY)
    assert out["spec"]["args"] == ["a", "B", "c"]


def test_server_metadata_is_never_copied() -> None:
    out = respect_ignored(TARGET, LIVE, [_entry(json_pointers=["/metadata"])], KEY)
    assert out["metadata"] == {"name": "web", "namespace": "team-a", "labels": {"team": "a"}}


def test_fields_owned_by_a_trusted_manager_take_their_live_values() -> None:
    live = copy.deepcopy(LIVE)
    live["metadata"]["managedFields"] = [
        {"manager": "hpa", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        {"manager": "syncwarden", "operation": "Apply", "fieldsV1": {"f:spec": {"f:args": {}}}},
    ]
    out = respect_ignored(TARGET, live, [_entry(managed_fields_managers=["hpa"])], KEY)
    assert out["spec"]["replicas"] == 5 and out["spec"]["args"] == ["a", "b", "c"]
