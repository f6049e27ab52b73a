"""Client-side apply helpers: the last-applied annotation and the three-way merge patch.

Covers: server-owned fields never enter the applied configuration; a field removed from the desired
object is deleted only if it was applied before; server and controller additions are left alone;
unchanged fields are not sent; unreadable annotations count as absent.
"""

from __future__ import annotations

import json
from typing import Any

from sync.cluster_patch import LAST_APPLIED, last_applied, three_way_merge_patch, with_last_applied


def _cm(data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n", **meta}, "data": data}


def test_with_last_applied_drops_server_fields() -> None:
    live_like = _cm({"a": "1"}, resourceVersion="7", uid="u", managedFields=[{}])
    live_like["status"] = {"x": 1}
    body = with_last_applied(live_like)
    recorded = json.loads(body["metadata"]["annotations"][LAST_APPLIED])
    assert recorded == _cm({"a": "1"})
    assert "resourceVersion" not in body["metadata"]
    assert last_applied(body) == recorded


def test_removed_field_deleted_only_if_applied_before() -> None:
    original = _cm({"a": "1", "b": "2"})
    desired = with_last_applied(_cm({"a": "1"}))
    live = _cm({"a": "1", "b": "2", "added-by-controller": "x"})
    patch = three_way_merge_patch(original, desired, live)
    assert patch["data"] == {"b": None}
    assert "added-by-controller" not in patch["data"]


def test_changed_and_new_fields_are_set_unchanged_not_sent() -> None:
    original = _cm({"a": "1"})
    desired = _cm({"a": "2", "c": "3"}, labels={"x": "y"})
    live = _cm({"a": "1"}, resourceVersion="5")
    patch = three_way_merge_patch(original, desired, live)
    assert patch == {"metadata": {"labels": {"x": "y"}}, "data": {"a": "2", "c": "3"}}


def test_without_original_nothing_is_deleted() -> None:
    patch = three_way_merge_patch(None, _cm({}), _cm({"a": "1"}))
    assert patch == {}


def test_unreadable_annotation_is_absent() -> None:
    assert last_applied(_cm({}, annotations={LAST_APPLIED: "{not json"})) is None
    assert last_applied(_cm({}, annotations={LAST_APPLIED: "[1]"})) is None
    assert last_applied(_cm({})) is None
