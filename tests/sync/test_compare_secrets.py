"""sync.compare and Secret values (security-cases LEAK-01): no clear value in any output of a comparison.

A Secret carries values in ``data`` (base64), ``stringData`` (clear), a ``last-applied-configuration``
annotation holding the whole Secret, and ``managedFields``. For every situation a comparison reports (create,
change, in sync, prune candidate, adoption, another app's Secret, a hook Secret) the rendered outputs —
``to_dict`` as JSON, the unified diffs, the structured items, ``repr`` and the condition messages — contain
neither the clear values nor their base64 forms, while a changed value still shows *as changed*.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from sync.compare import Comparison, SyncStatus
from tests.sync.compare_fixtures import cm, live, row, run, tracked_by

OLD, NEW, OTHER = "hunter2-old-value", "s3cr3t-new-value", "another-clear-value"
CLEAR = [OLD, NEW, OTHER]
FORBIDDEN = CLEAR + [base64.b64encode(v.encode()).decode() for v in CLEAR]


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def secret(password: str | None, *, name: str = "creds", string_data: bool = False, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, **meta}, "type": "Opaque"}
    if password is not None:
        obj["stringData" if string_data else "data"] = (
            {"password": password, "token": OTHER} if string_data else {"password": b64(password), "token": b64(OTHER)}
        )
    return obj


def live_secret(password: str, **kw: Any) -> dict[str, Any]:
    out = live(tracked_by(secret(password, **kw)))
    out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(
        secret(password, string_data=True)
    )
    out["metadata"]["managedFields"] = [
        {
            "manager": "syncwarden",
            "operation": "Apply",
            "fieldsV1": {"f:data": {"f:password": {}, "f:token": {}}, "f:stringData": {"f:password": {}}},
        }
    ]
    return out


def rendered(c: Comparison) -> str:
    parts = [json.dumps(c.to_dict()), repr(c), *(x.message for x in c.conditions)]
    for r in c.resources:
        parts.append(repr(r))
        if r.diff is not None:
            parts.append(r.diff.unified)
            parts.extend(repr(i) for i in r.diff.items)
    return "\n".join(parts)


def assert_no_clear_value(c: Comparison) -> None:
    text = rendered(c)
    for value in FORBIDDEN:
        assert value not in text


@pytest.mark.parametrize("string_data", [False, True], ids=["data", "stringData"])
def test_changed_secret_shows_the_change_masked(string_data: bool) -> None:
    c = run([secret(NEW, string_data=string_data)], [live_secret(OLD)])
    r = row(c, "Secret", "creds")
    assert r.status is SyncStatus.OUT_OF_SYNC
    assert r.diff is not None
    [item] = r.diff.items
    assert (item.op, item.path) == ("change", "/data/password")
    assert item.old != item.new  # *that* it changed is visible
    assert "password" in r.diff.unified
    assert_no_clear_value(c)


def test_secret_in_sync_via_string_data() -> None:
    c = run([secret(OLD, string_data=True)], [live_secret(OLD)])
    assert row(c, "Secret", "creds").status is SyncStatus.SYNCED
    assert_no_clear_value(c)


def test_created_secret() -> None:
    c = run([secret(NEW, string_data=True)], [])
    r = row(c, "Secret", "creds")
    assert r.diff is not None and r.diff.modified and "password" in r.diff.unified
    assert_no_clear_value(c)


def test_prune_candidate_secret() -> None:
    c = run([cm()], [live(tracked_by(cm())), live_secret(OLD)])
    assert row(c, "Secret", "creds").requires_pruning
    assert_no_clear_value(c)


def test_adopted_secret() -> None:
    untracked = live_secret(OLD)
    del untracked["metadata"]["annotations"]["syncwarden.io/tracking-id"]
    c = run([secret(NEW)], [untracked])
    assert row(c, "Secret", "creds").status is SyncStatus.OUT_OF_SYNC
    assert_no_clear_value(c)


def test_other_apps_secret() -> None:
    theirs = live(tracked_by(secret(OLD), instance="other"))
    c = run([secret(NEW)], [theirs])
    assert row(c, "Secret", "creds").shared_with == "other"
    assert_no_clear_value(c)


def test_hook_secret() -> None:
    hook = secret(NEW, name="pre", annotations={"argocd.argoproj.io/hook": "PreSync"})
    c = run([hook], [live(tracked_by(secret(OLD, name="pre", annotations={"argocd.argoproj.io/hook": "PreSync"})))])
    assert row(c, "Secret", "pre").hook
    assert_no_clear_value(c)


def test_targets_keep_clear_values_for_the_engine_but_not_in_repr() -> None:
    c = run([secret(NEW)], [])
    assert c.targets[0]["data"]["password"] == b64(NEW)
    assert b64(NEW) not in repr(c)
