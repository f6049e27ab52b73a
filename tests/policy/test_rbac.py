"""policy.rbac.Authorizer: decisions, explanations and policy lifecycle, on the real model and real pycasbin.

Covers: built-in roles (and their absence), deny wins (RBAC-01), default role (Argo items 25, 36) and the
deny-wins-everywhere difference 3, groups (bound by a g line or ignored), project runtime policies
(loaded only for their own project, replaced atomically, invalid ones rejected keeping the old rows),
project-role confinement (difference 4), regex mode anchored and linear (RBAC-05, difference 6) with working
built-ins (Argo #13127), case sensitivity (RBAC-06), globs crossing ``/`` (Argo items 26, §2.2), rule
explanations, ConfigMap loading, replace_policy atomicity, the decision cache invalidated on change, and
fail-closed evaluation with a log line.
"""

from __future__ import annotations

import logging
import time

import pytest

from policy import rbac_index
from policy.decision import Code
from policy.errors import InvalidPolicy
from policy.rbac import Authorizer

POLICY = """\
p, role:dev, applications, sync, team-a/*, allow
p, role:dev, applications, get, team-a/*, allow
g, alice, role:dev
g, my-org:devs, role:dev
p, my-org:unbound, applications, get, */*, allow
"""


def test_builtin_roles() -> None:
    auth = Authorizer.from_csv("")
    assert auth.enforce("admin", "applications", "sync", "p/app")
    assert auth.enforce("admin", "applications", "get", "p/ns/app")  # */* covers three segments
    assert auth.enforce("admin", "audit", "verify", "")
    assert not auth.enforce("admin", "extensions", "invoke", "x")  # not even admin without a row
    assert not auth.enforce("admin", "accounts", "create", "bob")
    assert auth.enforce("role:readonly", "audit", "get", "anything")
    assert not auth.enforce("role:readonly", "audit", "export", "anything")


def test_without_builtin_even_admin_is_denied() -> None:
    auth = Authorizer.from_csv("", builtin=False)
    decision = auth.enforce("admin", "applications", "get", "p/app")
    assert not decision
    assert decision.violations[0].code == Code.RBAC_DENIED
    assert "no policy allows it" in decision.reason


def test_role_inheritance_and_explanation() -> None:
    auth = Authorizer.from_csv(POLICY)
    decision = auth.enforce("alice", "applications", "sync", "team-a/web")
    assert decision.rule == "p, role:dev, applications, sync, team-a/*, allow (policy.csv line 1)"
    explained = auth.enforce("alice", "applications", "sync", "team-a/web", explain=True)
    assert explained.rule == (
        "p, role:dev, applications, sync, team-a/*, allow (policy.csv line 1); g, alice, role:dev (policy.csv line 3)"
    )
    assert not auth.enforce("alice", "applications", "sync", "team-b/web")
    assert not auth.enforce("alice", "applications", "delete", "team-a/web")


def test_explicit_deny_wins_and_is_named() -> None:
    auth = Authorizer.from_csv(POLICY + "p, alice, applications, sync, team-a/prod, deny\n")
    decision = auth.enforce("alice", "applications", "sync", "team-a/prod")
    assert not decision
    assert decision.rule == "p, alice, applications, sync, team-a/prod, deny (policy.csv line 6)"
    assert "explicitly denied" in decision.reason
    assert auth.enforce("alice", "applications", "sync", "team-a/web")


def test_deny_wins_over_the_default_role() -> None:
    """Difference 3: Argo CD checks the default role first and a user deny cannot remove its allow."""
    text = "p, alice, applications, get, team-a/secret, deny\n"
    auth = Authorizer.from_csv(text, default_role="role:readonly")
    assert auth.enforce("bob", "applications", "get", "team-a/secret")
    assert not auth.enforce("alice", "applications", "get", "team-a/secret")
    assert auth.enforce("alice", "applications", "get", "team-a/other")


def test_deny_on_the_default_role_is_final() -> None:
    text = "p, role:base, applications, get, */*, deny\np, alice, applications, get, */*, allow\n"
    auth = Authorizer.from_csv(text, default_role="role:base", builtin=False)
    assert not auth.enforce("alice", "applications", "get", "p/a")


def test_default_role_naming_a_role_without_rows_grants_nothing() -> None:
    auth = Authorizer.from_csv("", default_role="role:unknown")
    assert not auth.enforce("alice", "applications", "get", "p/a")


def test_groups_need_a_g_line() -> None:
    auth = Authorizer.from_csv(POLICY)
    assert auth.enforce("carol", "applications", "sync", "team-a/web", groups=["my-org:devs"])
    # a p row for a group that no g line binds is ignored for group claims (Argo CD keeps it so)...
    assert not auth.enforce("carol", "applications", "get", "x/y", groups=["my-org:unbound"])
    # ...but the literal subject still matches it, and `unbound_group_grant` flags it for `rbac can`
    assert auth.enforce("my-org:unbound", "applications", "get", "x/y")
    assert auth.unbound_group_grant("my-org:unbound")
    assert not auth.unbound_group_grant("my-org:devs")
    assert not auth.unbound_group_grant("role:dev")


def test_a_deny_on_a_group_defeats_the_users_allow() -> None:
    """Difference 3 again: Argo CD evaluates the user and each group separately, first allow wins."""
    text = POLICY + "p, my-org:contractors, applications, sync, team-a/prod, deny\ng, my-org:contractors, role:none\n"
    auth = Authorizer.from_csv(text)
    assert auth.enforce("alice", "applications", "sync", "team-a/prod")
    assert not auth.enforce("alice", "applications", "sync", "team-a/prod", groups=["my-org:contractors"])


def test_case_sensitive_everywhere() -> None:
    auth = Authorizer.from_csv(POLICY)
    assert not auth.enforce("Alice", "applications", "sync", "team-a/web")
    assert not auth.enforce("alice", "applications", "sync", "Team-a/web")
    assert not auth.enforce("alice", "Applications", "sync", "team-a/web")
    assert not auth.enforce("alice", "applications", "Sync", "team-a/web")


def test_glob_objects_cross_slashes_and_match_urls() -> None:
    auth = Authorizer.from_csv("p, alice, repositories, get, foo/*, allow\np, bob, applications, get, dev*, allow\n")
    assert auth.enforce("alice", "repositories", "get", "foo/https://github.com/argoproj/argo-cd.git")
    assert auth.enforce("bob", "applications", "get", "dev-prod/app")  # security-cases B.1 item 3


def test_a_literal_star_subject_is_not_a_wildcard() -> None:
    auth = Authorizer.from_csv("p, *, applications, get, */*, allow\n", builtin=False)
    assert not auth.enforce("alice", "applications", "get", "p/a")
    assert auth.enforce("*", "applications", "get", "p/a")


# -- project policies and project roles ---------------------------------------------------------------------

PROJECT_A = """\
p, proj:team-a:ci, applications, sync, team-a/*, allow
p, proj:team-a:ci, applications, delete, team-a/*, deny
g, my-org:ci, proj:team-a:ci
"""


def test_project_policy_applies_only_to_its_own_project() -> None:
    auth = Authorizer.from_csv("")
    auth.load_project_policy("team-a", PROJECT_A)
    assert auth.enforce("proj:team-a:ci", "applications", "sync", "team-a/web")
    assert auth.enforce("proj:team-a:ci", "projects", "get", "team-a")  # the implicit row
    assert auth.enforce("dave", "applications", "sync", "team-a/web", groups=["my-org:ci"])
    assert not auth.enforce("dave", "applications", "sync", "team-b/web", groups=["my-org:ci"])
    auth.remove_project_policy("team-a")
    assert not auth.enforce("proj:team-a:ci", "applications", "sync", "team-a/web")


def test_project_role_is_confined_to_its_project() -> None:
    """Difference 4: global rows naming proj:p:r and the default role do not reach other projects."""
    text = "p, proj:team-a:ci, applications, get, team-b/*, allow\np, proj:team-a:ci, clusters, get, *, allow\n"
    auth = Authorizer.from_csv(text, default_role="role:readonly")
    auth.load_project_policy("team-a", PROJECT_A)
    other = auth.enforce("proj:team-a:ci", "applications", "get", "team-b/web")
    assert not other
    assert "may only act on its own project 'team-a'" in other.reason
    assert not auth.enforce("proj:team-a:ci", "clusters", "get", "https://kubernetes.default.svc")
    assert not auth.enforce("proj:team-a:ci", "projects", "get", "team-b")
    # inside its own project the default role still applies, and deny still wins
    assert auth.enforce("proj:team-a:ci", "applications", "get", "team-a/web")
    assert not auth.enforce("proj:team-a:ci", "applications", "delete", "team-a/web")
    # the project role's deny binds that role only, not other callers
    assert auth.enforce("admin", "applications", "delete", "team-a/web")


def test_invalid_project_policy_keeps_the_previous_rows() -> None:
    auth = Authorizer.from_csv("")
    auth.load_project_policy("team-a", PROJECT_A)
    with pytest.raises(InvalidPolicy, match="not a role of project") as err:
        auth.load_project_policy("team-a", "p, proj:team-b:ci, applications, sync, team-b/*, allow\n")
    assert err.value.line == 1
    assert auth.enforce("proj:team-a:ci", "applications", "sync", "team-a/web")
    auth.load_project_policy("team-a", "p, proj:team-a:ci, applications, get, team-a/*, allow\n")
    assert not auth.enforce("proj:team-a:ci", "applications", "sync", "team-a/web")
    assert auth.enforce("proj:team-a:ci", "applications", "get", "team-a/web")


# -- regex mode ---------------------------------------------------------------------------------------------


def test_regex_mode_is_anchored() -> None:
    auth = Authorizer.from_csv("p, alice, applications, get, dev, allow\n", match_mode="regex", builtin=False)
    assert auth.enforce("alice", "applications", "get", "dev")
    assert not auth.enforce("alice", "applications", "get", "prod-dev-x")  # Argo CD's search would allow
    ref_argo = auth.reference_enforcer(argo_regex=True)
    assert ref_argo.enforce("alice", "applications", "get", "prod-dev-x")


def test_regex_mode_keeps_the_builtin_roles_working() -> None:
    """Difference 6 / Argo CD #13127: the built-ins are translated, so admin still works in regex mode."""
    auth = Authorizer.from_csv("p, alice, applications, get, team-(a|b)/.*, allow\n", match_mode="regex")
    assert auth.enforce("admin", "applications", "sync", "team-a/web")
    assert auth.enforce("alice", "applications", "get", "team-b/web")
    assert not auth.enforce("alice", "applications", "get", "team-c/web")


def test_regex_mode_has_no_catastrophic_backtracking() -> None:
    auth = Authorizer.from_csv("p, alice, applications, get, (a+)+$, allow\n", match_mode="regex", builtin=False)
    start = time.perf_counter()
    assert not auth.enforce("alice", "applications", "get", "a" * 30 + "!")
    assert time.perf_counter() - start < 1.0  # a backtracking engine takes minutes here


def test_regex_fast_path_agrees_with_re2() -> None:
    from policy import patterns

    for pattern in [".*/.*", "team-a/.*", "a.*b", "update/.*"]:
        fast = rbac_index.compile_pattern(pattern, "regex")
        for value in ["x/y", "team-a/web", "ab", "a/b", "update/x", "", "team-a", "xab"]:
            assert bool(fast(value)) == patterns.regex_fullmatch(pattern, value), (pattern, value)


# -- lifecycle ----------------------------------------------------------------------------------------------


def test_replace_policy_is_atomic_and_invalidates_the_cache() -> None:
    auth = Authorizer.from_csv(POLICY)
    assert auth.enforce("alice", "applications", "sync", "team-a/web")  # now cached
    with pytest.raises(InvalidPolicy, match="line 2"):
        auth.replace_policy("g, alice, role:dev\np, role:dev, applications, sync, team-a/*, Allow\n")
    assert auth.enforce("alice", "applications", "sync", "team-a/web")  # old policy still live
    auth.replace_policy("g, alice, role:dev\n")
    assert not auth.enforce("alice", "applications", "sync", "team-a/web")  # cache dropped with the old policy
    auth.replace_policy("", default_role="role:readonly")
    assert auth.default_role == "role:readonly"
    assert auth.enforce("alice", "applications", "get", "x/y")


def test_replace_policy_revalidates_project_policies_in_the_new_mode() -> None:
    auth = Authorizer.from_csv("")
    auth.load_project_policy("team-a", "p, proj:team-a:ci, applications, get, team-a/**, allow\n")
    with pytest.raises(InvalidPolicy, match="project team-a policy line 1"):
        auth.replace_policy("", match_mode="regex")  # `team-a/**` is a glob but not a valid RE2 regex
    assert auth.match_mode == "glob"
    assert auth.enforce("proj:team-a:ci", "applications", "get", "team-a/web")


def test_from_configmap() -> None:
    auth = Authorizer.from_configmap({
        "policy.csv": "g, alice, role:dev\n",
        "policy.team.csv": "p, role:dev, applications, get, team-a/.*, allow\n",
        "policy.default": "role:none",
        "policy.matchMode": "regex",
    })
    assert auth.match_mode == "regex"
    decision = auth.enforce("alice", "applications", "get", "team-a/web")
    assert decision.rule == "p, role:dev, applications, get, team-a/.*, allow (argocd-rbac-cm policy.team.csv line 1)"
    with pytest.raises(InvalidPolicy, match="argocd-rbac-cm policy.csv line 1"):
        Authorizer.from_configmap({"policy.csv": "p, a, b\n"})


def test_fail_closed_with_a_log_line(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    auth = Authorizer.from_csv(POLICY, cache_size=0)

    def broken(*_: object) -> None:
        raise RuntimeError("index corrupted")

    monkeypatch.setattr(rbac_index.PolicyIndex, "decide", broken)
    with caplog.at_level(logging.ERROR, logger="policy.rbac"):
        decision = auth.enforce("alice", "applications", "sync", "team-a/web")
    assert not decision
    assert decision.violations[0].code == Code.POLICY_ERROR
    assert any("RBAC evaluation failed" in r.getMessage() and "RuntimeError" in r.getMessage()
               for r in caplog.records)


def test_warnings_for_roles_without_rows() -> None:
    auth = Authorizer.from_csv("g, alice, role:ghost\ng, bob, role:admin\n")
    assert auth.warnings() == ["policy.csv line 1: role 'role:ghost' has no p rows, so 'alice' gains nothing from it"]
