"""Project roles (reference §2.9, §3.1; §6 items 9, 10, 11, 60; security case RBAC-03) and the runtime policy.

Covers: role-name and group-name rules, role-policy validation (subject, resource, action, object, effect,
field count, duplicates after whitespace normalisation), hostile strings (commas, quotes, newlines, Unicode
line separators, bidi marks, brackets) that must never change what a policy line means — checked by parsing
``runtime_policy_csv`` back with the RBAC parser, also for generated group names — and role round-trips.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy import rbac_csv, roles
from policy.errors import InvalidProject
from policy.project import AppProject


def project(*role_list: dict[str, Any], name: str = "my-proj") -> AppProject:
    return AppProject.from_dict({"roles": list(role_list)}, name=name)


def policy_error(policy: str, *, project_name: str = "my-proj") -> InvalidProject:
    with pytest.raises(InvalidProject) as info:
        project({"name": "my-role", "policies": ["p, proj:my-proj:my-role, logs, get, my-proj/*, allow", policy]},
                name=project_name)
    return info.value


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, id=n) for n in ("a", "ci", "my-role", "my_role", "Role1", "a-b_c9")],
)
def test_item9_valid_role_names(name: str) -> None:
    assert project({"name": name}).role(name) is not None


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("-a", id="leading-dash"),
        pytest.param("a_", id="trailing-underscore"),
        pytest.param("my role", id="space"),
        pytest.param("a:b", id="colon-would-break-subject"),
        pytest.param("a,b", id="comma"),
        pytest.param("a\nb", id="newline"),
        pytest.param('a"', id="quote"),
        pytest.param("a[0]", id="brackets"),
    ],
)
def test_item9_invalid_role_names(name: str) -> None:
    with pytest.raises(InvalidProject) as info:
        project({"name": name})
    assert info.value.field == "roles[0].name"


def test_role_name_required_and_unique() -> None:
    with pytest.raises(InvalidProject, match=r"roles\[0\]\.name: is required"):
        project({"policies": []})
    with pytest.raises(InvalidProject, match=r"roles\[1\]\.name: duplicate role 'ci'"):
        project({"name": "ci"}, {"name": "ci"})


@pytest.mark.parametrize(
    "group",
    [
        pytest.param("my:group", id="item9-colon"),
        pytest.param('"foo,bar,baz"', id="item9-quoted-commas"),
        pytest.param('"cn=admins,ou=groups,dc=example,dc=org"', id="ldap-dn"),
        pytest.param("user@example.com", id="email"),
        pytest.param("team a", id="inner-space"),
        pytest.param('"solo"', id="quoted-without-comma"),
    ],
)
def test_valid_groups(group: str) -> None:
    assert roles.validate_group_name(group) is None
    assert project({"name": "r", "groups": [group]}).role("r") is not None


@pytest.mark.parametrize(
    "group",
    [
        pytest.param(" my:group", id="item9-leading-space"),
        pytest.param('  "foo" ', id="item9-spaces-around-quotes"),
        pytest.param("foo,bar", id="item9-unquoted-comma"),
        pytest.param("evil, role:admin", id="injection-extra-field"),
        pytest.param("", id="empty"),
        pytest.param('""', id="empty-quoted"),
        pytest.param('" x"', id="space-inside-quotes"),
        pytest.param('"a"b"', id="inner-quote"),
        pytest.param('a"b', id="bare-quote"),
        pytest.param("a\tb", id="tab"),
        pytest.param("a\nb", id="newline"),
        pytest.param("a\rb", id="carriage-return"),
        pytest.param("a\u2028b", id="unicode-line-separator"),
        pytest.param("a\u0085b", id="next-line"),
        pytest.param("admin\u202e", id="bidi-override"),
        pytest.param("team[0]", id="square-brackets"),
        pytest.param("team (prod)", id="parentheses"),
        pytest.param('"x, y)"', id="quoted-paren"),
    ],
)
def test_invalid_groups(group: str) -> None:
    assert roles.validate_group_name(group) is not None
    with pytest.raises(InvalidProject) as info:
        project({"name": "r", "groups": ["ok", group]})
    assert info.value.field == "roles[0].groups[1]"


def test_duplicate_group() -> None:
    with pytest.raises(InvalidProject, match="duplicate group"):
        project({"name": "r", "groups": ["a", "a"]})


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param("p, proj:my-proj:my-role, applications, get, my-proj/*, allow", id="star"),
        pytest.param("p, proj:my-proj:my-role, applications, sync, my-proj/app, deny", id="deny"),
        pytest.param("p, proj:my-proj:my-role, applications, get, my-proj/ns/app, allow", id="namespaced-app"),
        pytest.param("p, proj:my-proj:my-role, applications, *, my-proj/*/*, allow", id="star-star"),
        pytest.param("p, proj:my-proj:my-role, applications, update/*/Pod/*, my-proj/*, allow", id="item10-update"),
        pytest.param("p, proj:my-proj:my-role, applications, action/apps/Deployment/restart, my-proj/*, allow",
                     id="item10-action"),
        pytest.param("p, proj:my-proj:my-role, applications, delete//Pod/ns/name, my-proj/*, allow", id="delete-core"),
        pytest.param("p,proj:my-proj:my-role,applications,get,my-proj/x,allow", id="no-spaces"),
        pytest.param("p ,  proj:my-proj:my-role , exec,  create , my-proj/x , allow", id="extra-spaces"),
        pytest.param("p, proj:my-proj:my-role, applicationsets, get, my-proj/*, allow", id="applicationsets"),
        pytest.param("p, proj:my-proj:my-role, repositories, get, my-proj/*, allow", id="repositories"),
        pytest.param("p, proj:my-proj:my-role, clusters, get, my-proj/*, allow", id="clusters"),
    ],
)
def test_valid_policies(policy: str) -> None:
    p = project({"name": "my-role", "policies": [policy]})
    assert p.role("my-role") is not None


INVALID = [
    pytest.param("p, proj:other:my-role, applications, get, my-proj/*, allow", "subject", id="item10-other-project"),
    pytest.param("p, proj:my-proj:other, applications, get, my-proj/*, allow", "subject", id="rbac03-other-role"),
    pytest.param("p, role:admin, applications, get, my-proj/*, allow", "subject", id="global-role-subject"),
    pytest.param("p, proj:my-proj:my-role, applications, get, other/*, allow", "object", id="item10-other-object"),
    pytest.param("p, proj:my-proj:my-role, applications, get, my-proj/, allow", "object", id="item10-empty-segment"),
    pytest.param("p, proj:my-proj:my-role, applications, get, my-proj/a/b/c, allow", "object", id="too-deep"),
    pytest.param("p, proj:my-proj:my-role, repositories, get, my-proj/https://github.com/*, allow", "object",
                 id="url-object"),
    pytest.param("p, proj:my-proj:my-role, applications, get, *, allow", "object", id="bare-star-object"),
    pytest.param("p, proj:my-proj:my-role, projects, get, my-proj, allow", "resource", id="item10-projects"),
    pytest.param("p, proj:my-proj:my-role, clusterz, get, my-proj/*, allow", "resource", id="unknown-resource"),
    pytest.param("p, proj:my-proj:my-role, *, get, my-proj/*, allow", "resource", id="star-resource"),
    pytest.param("p, proj:my-proj:my-role, accounts, update, my-proj/*, allow", "resource", id="accounts"),
    pytest.param("p, proj:my-proj:my-role, applications, actionfoo, my-proj/*, allow", "action", id="item11-actionfoo"),
    pytest.param("p, proj:my-proj:my-role, applications, , my-proj/*, allow", "action", id="item11-empty-action"),
    pytest.param("p, proj:my-proj:my-role, applications, action/, my-proj/*, allow", "action", id="bare-prefix"),
    pytest.param("p, proj:my-proj:my-role, applications, get/update/x, my-proj/*, allow", "action",
                 id="item60-substring-action-stricter-than-argo"),
    pytest.param("p, proj:my-proj:my-role, applications, get, my-proj/*, DENY", "effect", id="rbac01-effect-case"),
    pytest.param("p, proj:my-proj:my-role, applications, get, my-proj/*, Allow", "effect", id="rbac01-allow-case"),
    pytest.param("p, proj:my-proj:my-role, applications, get, my-proj/*", "6 comma", id="five-fields"),
    pytest.param("p, proj:my-proj:my-role, applications, get, my-proj/*, allow, x", "6 comma", id="seven-fields"),
    pytest.param("g, proj:my-proj:my-role, applications, get, my-proj/*, allow", "start with 'p'", id="not-p"),
    pytest.param("p, proj:my-proj:my-role, applications, get, my-proj/*, allow\ng, evil, role:admin", "newline",
                 id="newline-injection"),
    pytest.param("p, proj:my-proj:my-role, applications, action/x\u2028g, my-proj/*, allow", "newline",
                 id="unicode-line-separator-injection"),
    pytest.param('p, proj:my-proj:my-role, applications, "get", my-proj/*, allow', "contains", id="quote"),
    pytest.param('p, proj:my-proj:my-role, applications, "get, my-proj/*", allow, x', "6 comma",
                 id="quoted-comma-is-no-escape"),
    pytest.param("p, proj:my-proj:my-role, applications, action/a[0], my-proj/*, allow", "contains", id="bracket"),
    pytest.param("p, proj:my-proj:my-role, applications, action/a(b), my-proj/*, allow", "contains", id="paren"),
    pytest.param("p, proj:my-proj:my-role, applications, action/a b, my-proj/*, allow", "contains", id="inner-space"),
    pytest.param("p, proj:my-proj:my-role, applications, get\t, my-proj/*, allow", "newline", id="tab"),
]


@pytest.mark.parametrize(("policy", "fragment"), INVALID)
def test_invalid_policies(policy: str, fragment: str) -> None:
    error = policy_error(policy)
    assert error.field == "roles[0].policies[1]"
    assert fragment in error.detail


def test_item10_dot_in_project_name_is_literal() -> None:
    with pytest.raises(InvalidProject, match="object"):
        project({"name": "r", "policies": ["p, proj:my.proj:r, applications, get, myxproj/*, allow"]},
                name="my.proj")
    assert project({"name": "r", "policies": ["p, proj:my.proj:r, applications, get, my.proj/*, allow"]},
                   name="my.proj")


def test_duplicate_policies_after_normalisation() -> None:
    error = policy_error("p,proj:my-proj:my-role,logs,get,my-proj/*,allow")
    assert "duplicate policy" in error.detail


def test_runtime_policy_csv_text() -> None:
    p = project(
        {"name": "ci", "policies": ["p,proj:my-proj:ci,applications,sync,my-proj/*,allow",
                                    "p, proj:my-proj:ci , applications , get , my-proj/* , allow"],
         "groups": ["ci-bots", '"cn=ci,dc=example"']},
        {"name": "viewer"},
    )
    assert p.runtime_policy_csv() == "\n".join([
        "p, proj:my-proj:ci, projects, get, my-proj, allow",
        "p, proj:my-proj:ci, applications, sync, my-proj/*, allow",
        "p, proj:my-proj:ci, applications, get, my-proj/*, allow",
        "g, ci-bots, proj:my-proj:ci",
        'g, "cn=ci,dc=example", proj:my-proj:ci',
        "p, proj:my-proj:viewer, projects, get, my-proj, allow",
    ])
    assert AppProject.from_dict({}, name="p").runtime_policy_csv() == ""


def test_runtime_policy_parses_back_to_exactly_the_intended_lines() -> None:
    p = project({"name": "ci", "policies": ["p, proj:my-proj:ci, applications, sync, my-proj/*, deny"],
                 "groups": ['"cn=ci,ou=x,dc=y"', "dev@example.com", "it's-me"]})
    parsed = rbac_csv.parse_project_policy("my-proj", p.runtime_policy_csv())
    assert {(g.member, g.role) for g in parsed.groupings} == {
        ("cn=ci,ou=x,dc=y", "proj:my-proj:ci"), ("dev@example.com", "proj:my-proj:ci"),
        ("it's-me", "proj:my-proj:ci")}
    assert {r.fields for r in parsed.rules} == {
        ("proj:my-proj:ci", "projects", "get", "my-proj", "allow"),
        ("proj:my-proj:ci", "applications", "sync", "my-proj/*", "deny"),
    }


HOSTILE = st.text(alphabet=st.sampled_from(list('abz:@._- ,"[]()#\'\n\r\t\u2028\u202e\\')), min_size=0, max_size=12)


@settings(max_examples=300, deadline=None)
@given(group=HOSTILE)
def test_an_accepted_group_binds_exactly_itself(group: str) -> None:
    """Whatever a group name holds, if it is accepted it yields one ``g`` line binding exactly that group."""
    if roles.validate_group_name(group) is not None:
        with pytest.raises(InvalidProject):
            project({"name": "r", "groups": [group]})
        return
    p = project({"name": "r", "groups": [group]})
    parsed = rbac_csv.parse_project_policy("my-proj", p.runtime_policy_csv())
    expected = group[1:-1] if group.startswith('"') and group.endswith('"') and len(group) >= 2 else group
    assert [(g.member, g.role) for g in parsed.groupings] == [(expected, "proj:my-proj:r")]
    assert {r.fields for r in parsed.rules} == {("proj:my-proj:r", "projects", "get", "my-proj", "allow")}
    assert len(p.runtime_policy_csv().splitlines()) == 2


@settings(max_examples=300, deadline=None)
@given(action=HOSTILE)
def test_an_accepted_action_stays_one_field(action: str) -> None:
    policy = f"p, proj:my-proj:r, applications, action/{action}, my-proj/*, allow"
    if roles.validate_policy("my-proj", "r", policy) is not None:
        return
    p = project({"name": "r", "policies": [policy]})
    parsed = rbac_csv.parse_project_policy("my-proj", p.runtime_policy_csv())
    assert {r.fields for r in parsed.rules} == {
        ("proj:my-proj:r", "projects", "get", "my-proj", "allow"),
        ("proj:my-proj:r", "applications", f"action/{action.strip(' ')}", "my-proj/*", "allow"),
    }
    assert not parsed.groupings


def test_role_round_trip_keeps_explicit_empty_lists() -> None:
    data = [{"name": "a", "policies": [], "groups": [], "jwtTokens": []}, {"name": "b", "description": ""}]
    p = AppProject.from_dict({"roles": data}, name="p")
    assert p.to_dict() == {"roles": data}
    assert p.roles[0].policies == () and p.roles[1].policies == ()


def test_normalized_policies_and_subject() -> None:
    role = project({"name": "r", "policies": ["p,proj:my-proj:r,logs,get,my-proj/*,allow"]}).roles[0]
    assert role.normalized_policies == ("p, proj:my-proj:r, logs, get, my-proj/*, allow",)
    assert role.policies == ("p,proj:my-proj:r,logs,get,my-proj/*,allow",)
    assert role.subject("my-proj") == "proj:my-proj:r"


def test_role_fields_type_errors() -> None:
    with pytest.raises(InvalidProject, match=r"roles\[0\]\.policies: must be a list"):
        project({"name": "r", "policies": "p, x"})
    with pytest.raises(InvalidProject, match=r"roles\[0\]\.groups\[0\]: must be a string"):
        project({"name": "r", "groups": [1]})
    with pytest.raises(InvalidProject, match=r"roles\[0\]\.jwtTokens\[0\]\.id: must be a string"):
        project({"name": "r", "jwtTokens": [{"iat": 1, "id": 5}]})
    with pytest.raises(InvalidProject, match=r"roles\[0\]\.scopes: unknown field"):
        project({"name": "r", "scopes": []})


def test_whole_runtime_policy_must_load_in_the_rbac_engine() -> None:
    """Argo CD also loads the concatenated role policies; an action the resource does not have is refused
    by the RBAC parser, and the error still names the offending policy."""
    with pytest.raises(InvalidProject) as info:
        project({"name": "r", "policies": ["p, proj:my-proj:r, applications, get, my-proj/*, allow",
                                           "p, proj:my-proj:r, logs, sync, my-proj/*, allow"]})
    assert info.value.field == "roles[0].policies[1]"
    assert "sync" in info.value.detail


def test_runtime_policy_lines_name_their_source() -> None:
    p = project({"name": "a", "policies": ["p, proj:my-proj:a, logs, get, my-proj/*, allow"], "groups": ["g1"]})
    assert [where for _, where in roles.runtime_policy_lines(p.name, p.roles)] == [
        "roles[0].name", "roles[0].policies[0]", "roles[0].groups[0]"]


def test_item21_normalize_jwt_tokens_merges_spec_and_status_by_id() -> None:
    p = AppProject.from_dict({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "my-proj"},
        "spec": {"roles": [
            {"name": "ci", "jwtTokens": [{"iat": 100}, {"iat": 300, "id": "b", "exp": 400}]},
            {"name": "viewer"},
        ]},
        "status": {"jwtTokensByRole": {
            "ci": {"items": [{"iat": 200, "id": "a"}, {"iat": 299, "id": "b"}]},
            "gone": {"items": [{"iat": 1, "id": "x"}]},
        }},
    })
    n = p.normalize_jwt_tokens()
    expected = (roles.JWTToken(300, 400, "b"), roles.JWTToken(200, None, "a"), roles.JWTToken(100, None, "100"))
    ci = n.role("ci")
    assert ci is not None and ci.jwt_tokens == expected
    assert n.tokens("ci") == expected
    assert n.tokens("viewer") == ()
    assert n.jwt_tokens_by_role is not None and "gone" not in n.jwt_tokens_by_role
    assert n.to_dict()["status"]["jwtTokensByRole"]["ci"]["items"][0] == {"iat": 300, "exp": 400, "id": "b"}
    assert AppProject.from_dict(n.to_dict()) == n
