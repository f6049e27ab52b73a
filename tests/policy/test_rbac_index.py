"""policy.rbac_index: the bucketing that makes decisions fast must never change an answer.

Covers: which heads a pattern fixes (glob and regex, quantifiers, alternation, escapes), role closures with
cycles, overlays (a project's rows and g lines on top of the global index, the base left untouched), the
merged-rows memo staying bounded by the policy (never by callers' subjects), and concurrent readers while
the policy is swapped.
"""

from __future__ import annotations

import threading

import pytest

from policy import rbac_csv
from policy.decision import Code
from policy.rbac import Authorizer
from policy.rbac_index import PolicyIndex, pattern_head


@pytest.mark.parametrize(
    ("pattern", "mode", "head"),
    [
        pytest.param("get", "glob", "get", id="literal"),
        pytest.param("update/*", "glob", "update", id="glob-path"),
        pytest.param("team-a/*", "glob", "team-a", id="glob-project"),
        pytest.param("team-a*", "glob", None, id="glob-prefix-without-slash"),
        pytest.param("*", "glob", None, id="glob-star"),
        pytest.param("{a,b}/x", "glob", None, id="glob-braces"),
        pytest.param("a\\*b/x", "glob", None, id="glob-escape"),
        pytest.param("p?/web", "glob", None, id="glob-question"),
        pytest.param("team-a/.*", "regex", "team-a", id="regex-path"),
        pytest.param("team-a", "regex", "team-a", id="regex-literal"),
        pytest.param("team-ab?/x", "regex", None, id="regex-optional-char"),
        pytest.param("ab*/x", "regex", None, id="regex-star-quantifier"),
        pytest.param("a/b|c/d", "regex", None, id="regex-alternation"),
        pytest.param("a/b{2}", "regex", "a", id="regex-brace-after-slash"),
        pytest.param("^a/b", "regex", None, id="regex-anchor"),
    ],
)
def test_pattern_head(pattern: str, mode: str, head: str | None) -> None:
    assert pattern_head(pattern, mode) == head


def _index(text: str, mode: str = "glob", base: PolicyIndex | None = None) -> PolicyIndex:
    return PolicyIndex(rbac_csv.parse_policy(text, match_mode=mode), match_mode=mode, base=base)


def test_closure_with_a_cycle() -> None:
    index = _index("g, a, b\ng, b, c\ng, c, a\n")
    assert set(index.closure("a")) == {"a", "b", "c"}
    assert index.closure("nobody") == ("nobody",)
    assert index.is_bound("a")
    assert not index.is_bound("nobody")


def test_overlay_adds_rows_and_edges_without_touching_the_base() -> None:
    base = _index("p, role:dev, applications, get, team-a/*, allow\ng, alice, role:dev\n")
    overlay = _index("p, proj:team-a:ci, applications, sync, team-a/*, allow\ng, org:ci, proj:team-a:ci\n", base=base)
    allow, deny = overlay.decide(["org:ci"], "applications", "sync", "team-a/web")
    assert allow is not None
    assert deny is None
    assert overlay.decide(["alice"], "applications", "get", "team-a/web")[0] is not None
    assert base.decide(["org:ci"], "applications", "sync", "team-a/web") == (None, None)
    assert not base.is_bound("org:ci")


def test_merged_rows_memo_is_bounded_by_the_policy() -> None:
    index = _index("p, role:dev, applications, get, */*, allow\ng, alice, role:dev\n")
    for i in range(1000):
        index.decide([f"stranger-{i}"], "applications", "get", "a/b")
    assert all(not name.startswith("stranger-") for name in index._merged)


def test_readers_never_fail_while_the_policy_is_swapped() -> None:
    old = "p, alice, applications, get, */*, allow\n"
    new = "p, alice, applications, get, */*, deny\np, bob, applications, get, */*, allow\n"
    auth = Authorizer.from_csv(old, builtin=False, cache_size=0)
    codes: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            for sub in ("alice", "bob"):
                decision = auth.enforce(sub, "applications", "get", "p/a")
                codes.extend(v.code for v in decision.violations)
                codes.append("allowed" if decision.allowed else "")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(200):
            auth.replace_policy(new if i % 2 == 0 else old)
    finally:
        stop.set()
        reader.join()
    assert "allowed" in codes
    assert Code.POLICY_ERROR not in codes
    assert auth.enforce("alice", "applications", "get", "p/a").allowed  # the last swap installed `old`
