"""sync.jqpath and jqPathExpressions in the comparison (argocd-sync-semantics §1.12, §3.5).

Aspects: the supported subset (fields, quoted and bracketed keys, ``[]``, ``[n]`` including negative indexes,
``?``, ``select(.path == literal)`` and ``!=``, pipes) deletes exactly the matched fields, list items from
the highest index down; missing paths and type mismatches delete nothing; everything outside the subset,
and the whole object, is refused with the position; in a comparison a matching expression hides an injected
sidecar (Synced) and a non-matching kind does not, and a bad expression is an InvalidSpecError naming it.
"""

from __future__ import annotations

from typing import Any

import pytest

from sync import jqpath
from sync.compare import SyncStatus
from tests.sync.compare_fixtures import application, live, row, run, tracked_by


def doc() -> dict[str, Any]:
    return {
        "metadata": {"annotations": {"a.b/c": "1", "keep": "2"}},
        "spec": {
            "replicas": 3,
            "containers": [
                {"name": "app", "image": "a"},
                {"name": "sidecar", "image": "s"},
                {"name": "sidecar", "image": "s2"},
                {"name": "other"},
            ],
        },
        "webhooks": [{"clientConfig": {"caBundle": "x", "url": "u"}}, {"name": "no-config"}],
        "list": [1, 2, 3],
    }


@pytest.mark.parametrize(
    ("expr", "check"),
    [
        pytest.param(".spec.replicas", lambda d: "replicas" not in d["spec"], id="field"),
        pytest.param(
            '.metadata.annotations."a.b/c"', lambda d: d["metadata"]["annotations"] == {"keep": "2"}, id="quoted-key"
        ),
        pytest.param(
            '.metadata.annotations["a.b/c"]',
            lambda d: d["metadata"]["annotations"] == {"keep": "2"},
            id="bracketed-key",
        ),
        pytest.param(
            '.spec.containers[] | select(.name == "sidecar")',
            lambda d: [c["name"] for c in d["spec"]["containers"]] == ["app", "other"],
            id="select-items",
        ),
        pytest.param(
            '.spec.containers[] | select(.name != "app") | .image',
            lambda d: [c.get("image") for c in d["spec"]["containers"]] == ["a", None, None, None],
            id="select-not-equal-then-field",
        ),
        pytest.param(
            ".spec.containers[] | select(.image == null)",
            lambda d: [c["name"] for c in d["spec"]["containers"]] == ["app", "sidecar", "sidecar"],
            id="select-missing-is-null",
        ),
        pytest.param(
            ".webhooks[]?.clientConfig.caBundle",
            lambda d: d["webhooks"] == [{"clientConfig": {"url": "u"}}, {"name": "no-config"}],
            id="iterate-optional",
        ),
        pytest.param(".list[] | select(. == 2)", lambda d: d["list"] == [1, 3], id="select-scalar-items"),
        pytest.param(".list[0]", lambda d: d["list"] == [2, 3], id="index"),
        pytest.param(".list[-1]", lambda d: d["list"] == [1, 2], id="negative-index"),
        pytest.param(".list[]", lambda d: d["list"] == [], id="all-items"),
        pytest.param(".spec.nothing.deeper", lambda d: d == doc(), id="missing-path"),
        pytest.param(".list.field", lambda d: d == doc(), id="type-mismatch"),
        pytest.param(".list[7]", lambda d: d == doc(), id="index-out-of-range"),
    ],
)
def test_delete(expr: str, check: Any) -> None:
    assert check(jqpath.parse(expr).delete_from(doc()))


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param(".", id="whole-object"),
        pytest.param(".a | length", id="function"),
        pytest.param("del(.a)", id="del"),
        pytest.param(".a[1:2]", id="slice"),
        pytest.param("..", id="recurse"),
        pytest.param(".a, .b", id="comma"),
        pytest.param("select(.a > 1)", id="comparison"),
        pytest.param('.a."unterminated', id="unterminated-string"),
        pytest.param(".a" * 600, id="too-long"),
        pytest.param("", id="empty"),
    ],
)
def test_outside_the_subset(expr: str) -> None:
    with pytest.raises(jqpath.JqSyntaxError, match="at character"):
        jqpath.parse(expr)


def deployment(containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {"template": {"spec": {"containers": containers}}},
    }


APP = [{"name": "app", "image": "a:1"}]
INJECTED = [*APP, {"name": "istio-proxy", "image": "proxy:1"}]
SIDECAR = '.spec.template.spec.containers[] | select(.name == "istio-proxy")'


@pytest.mark.parametrize(
    ("entry", "status"),
    [
        pytest.param(None, SyncStatus.OUT_OF_SYNC, id="no-ignore"),
        pytest.param(
            {"group": "apps", "kind": "Deployment", "jqPathExpressions": [SIDECAR]}, SyncStatus.SYNCED, id="ignored"
        ),
        pytest.param(
            {"group": "apps", "kind": "StatefulSet", "jqPathExpressions": [SIDECAR]},
            SyncStatus.OUT_OF_SYNC,
            id="other-kind",
        ),
    ],
)
def test_jq_ignore_in_a_comparison(entry: dict[str, Any] | None, status: SyncStatus) -> None:
    c = run(
        [deployment(APP)], [live(tracked_by(deployment(INJECTED)))], app=application(ignore=[entry] if entry else None)
    )
    assert row(c, "Deployment", "api").status is status
    assert c.errors == ()


def test_bad_jq_expression_is_named() -> None:
    entry = {"kind": "Deployment", "jsonPointers": ["/spec/replicas"], "jqPathExpressions": [SIDECAR, ".a | keys"]}
    c = run([deployment(APP)], [], app=application(ignore=[entry]))
    assert c.sync_status is SyncStatus.UNKNOWN
    [err] = c.errors
    assert err.type == "InvalidSpecError"
    assert err.message.startswith("spec.ignoreDifferences[0].jqPathExpressions[1]: '.a | keys' is outside")
