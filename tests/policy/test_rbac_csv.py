"""policy.rbac_csv: the policy.csv format and its validation (reference §2.3, §2.9; security cases RBAC-01/03).

Covers: Go-CSV-compatible records (quoted commas, leading-space trimming, bare and unterminated quotes),
field counts, line kinds, exact effects, the resource/action vocabulary (patterns included), control
characters and trailing whitespace, invalid glob/regex patterns, line numbers in errors, project role
policies (own subject, scoped resources, object shape, implicit ``projects, get``), ``argocd-rbac-cm``
overlays, the regex-valid built-ins, ``project_from_request`` and ``format_fields`` round trips.
"""

from __future__ import annotations

import pytest

import config
from policy import rbac_csv
from policy.errors import InvalidPolicy


def _one(line: str, mode: str = "glob") -> rbac_csv.PolicyRule:
    parsed = rbac_csv.parse_policy(line, match_mode=mode)
    assert len(parsed.rules) == 1
    return parsed.rules[0]


def test_quoted_comma_and_leading_spaces() -> None:
    rule = _one('p, "role,admin",applications,   get, "*/*", allow')
    assert rule.fields == ("role,admin", "applications", "get", "*/*", "allow")
    assert rule.line == 1


def test_doubled_quote_inside_a_quoted_field() -> None:
    rule = _one('p, "say ""hi""", applications, get, x/y, allow')
    assert rule.subject == 'say "hi"'


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("p, alice, applications, get, x/y", "exactly 6 fields", id="five-fields"),
        pytest.param("p, alice, applications, get, x/y, allow, extra", "exactly 6 fields", id="seven-fields"),
        pytest.param("g, alice", "exactly 3 fields", id="g-two-fields"),
        pytest.param("g, alice, role:a, role:b", "exactly 3 fields", id="g-four-fields"),
        pytest.param("g, , role:a", "member is empty", id="g-empty-member"),
        pytest.param("agh, alice, role:a", "starts with 'p' or 'g'", id="unknown-kind"),
        pytest.param("px, alice, applications, get, x, allow", "starts with 'p' or 'g'", id="px"),
        pytest.param("g2, alice, role:a", "starts with 'p' or 'g'", id="g2"),
        pytest.param("p\talice\tapplications\tget\tx\tallow", "starts with 'p' or 'g'", id="tab-separated"),
        pytest.param("just some text", "starts with 'p' or 'g'", id="plain-text"),
        pytest.param("p, alice, applications, get, x/y, DENY", "exactly 'allow' or 'deny'", id="DENY"),
        pytest.param("p, alice, applications, get, x/y, Allow", "exactly 'allow' or 'deny'", id="Allow"),
        pytest.param('p, alice, applications, get, x/y, " deny "', "' deny '", id="spaced-deny"),
        pytest.param("p, alice, applications, get, x/y, ", "exactly 'allow' or 'deny'", id="empty-effect"),
        pytest.param('p, al"ice, applications, get, x/y, allow', 'bare "', id="bare-quote"),
        pytest.param('p, "alice, applications, get, x/y, allow', "unterminated", id="unterminated-quote"),
        pytest.param('p, "alice" x, applications, get, x/y, allow', "after a closing quote", id="junk-after-quote"),
        pytest.param("p, alice , applications, get, x/y, allow", "trailing whitespace", id="trailing-space"),
        pytest.param('p, "ali\x07ce", applications, get, x/y, allow', "control", id="control-char"),
        pytest.param("p, alice, application, get, x/y, allow", "unknown resource", id="unknown-resource"),
        pytest.param("p, alice, Applications, get, x/y, allow", "unknown resource", id="resource-case"),
        pytest.param("p, alice, applications, Get, x/y, allow", "unknown action", id="action-case"),
        pytest.param("p, alice, logs, sync, x/y, allow", "unknown action", id="action-not-for-resource"),
        pytest.param("p, alice, clusters, update/x, *, allow", "take a path", id="path-on-clusters"),
        pytest.param("p, alice, applications, get/x, x/y, allow", "take a path", id="path-on-get"),
        pytest.param("p, alice, zz*, get, x/y, allow", "unknown resource", id="pattern-matching-nothing"),
        pytest.param("p, alice, applications, get, e[[a*, allow", "not a valid glob", id="bad-glob"),
        pytest.param("p, alice, audit, delete, *, allow", "unknown action", id="audit-delete"),
    ],
)
def test_invalid_lines_are_rejected_with_the_line_number(line: str, message: str) -> None:
    text = "# a comment\n\np, role:ok, applications, get, */*, allow\n" + line + "\n"
    with pytest.raises(InvalidPolicy) as err:
        rbac_csv.parse_policy(text, source="team.csv")
    assert err.value.line == 4
    assert message in str(err.value)
    assert str(err.value).startswith("team.csv line 4: ")


def test_regex_mode_rejects_an_invalid_regex() -> None:
    with pytest.raises(InvalidPolicy, match="invalid regular expression"):
        rbac_csv.parse_policy("p, alice, applications, get, (a, allow", match_mode="regex")


def test_lookaround_is_not_re2() -> None:
    with pytest.raises(InvalidPolicy, match="line 1"):
        rbac_csv.parse_policy("p, alice, applications, get, (?!x).*, allow", match_mode="regex")


@pytest.mark.parametrize(
    "line",
    [
        "p, alice, applications, update/*, p/*, allow",
        "p, alice, applications, delete/*/Pod/*, p/*, allow",
        "p, alice, applications, action/apps/Deployment/restart, p/*, allow",
        "p, alice, *, *, *, deny",
        'p, alice, "{logs,exec}", *, p/*, allow',
        "p, alice, audit, export, *, allow",
        "p, alice, write-repositories, create, *, allow",
        "p, alice, extensions, invoke, httpbin, allow",
        "p, , applications, get, p/*, allow",
        "p, alice, certificates, get, , allow",
        "p, alice, applications, get, https://github.com/*, allow",
    ],
)
def test_valid_lines(line: str) -> None:
    assert len(rbac_csv.parse_policy(line).rules) == 1


def test_unknown_match_mode_is_rejected() -> None:
    with pytest.raises(InvalidPolicy, match="unknown match mode"):
        rbac_csv.normalize_match_mode("Regex")
    assert rbac_csv.normalize_match_mode("") == "glob"
    assert rbac_csv.normalize_match_mode(None) == "glob"


def test_crlf_lines_and_comments() -> None:
    parsed = rbac_csv.parse_policy("# c\r\np, a, applications, get, x/y, allow\r\n\r\ng, b, a\r\n")
    assert [r.line for r in parsed.rules] == [2]
    assert [(g.member, g.role, g.line) for g in parsed.groupings] == [("b", "a", 4)]


def test_format_fields_round_trips() -> None:
    fields = ["p", "role,admin", 'say "hi"', "get", " lead", "allow"]
    line = rbac_csv.format_fields(fields)
    assert rbac_csv._split_record(line) == fields


def test_builtin_is_regex_valid_after_translation() -> None:
    text = rbac_csv.regex_builtin(config.read_asset("builtin-policy.csv"))
    parsed = rbac_csv.parse_policy(text, match_mode="regex")
    assert ("role:readonly", "applications", "get", ".*/.*", "allow") in {r.fields for r in parsed.rules}
    assert len(parsed.rules) == len(rbac_csv.parse_policy(config.read_asset("builtin-policy.csv")).rules)


def test_project_from_request() -> None:
    assert rbac_csv.project_from_request("applications", "team-a/web") == "team-a"
    assert rbac_csv.project_from_request("repositories", "team-a/https://git.example/x") == "team-a"
    assert rbac_csv.project_from_request("applications", "no-slash") is None
    assert rbac_csv.project_from_request("projects", "team-a") == "team-a"
    assert rbac_csv.project_from_request("certificates", "a/b") is None
    assert rbac_csv.project_token_project("proj:team-a:ci") == "team-a"
    assert rbac_csv.project_token_project("proj:a:b:c") is None
    assert rbac_csv.project_token_project("role:x") is None


# -- project role policies (reference §2.9, security case RBAC-03) -------------------------------------------


def test_project_policy_adds_the_implicit_projects_get_row() -> None:
    parsed = rbac_csv.parse_project_policy(
        "team-a", "p, proj:team-a:ci, applications, sync, team-a/*, allow\ng, my-org:ci, proj:team-a:deploy"
    )
    implicit = {r.fields for r in parsed.rules if r.resource == "projects"}
    assert implicit == {
        ("proj:team-a:ci", "projects", "get", "team-a", "allow"),
        ("proj:team-a:deploy", "projects", "get", "team-a", "allow"),
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("p, proj:team-b:ci, applications, get, team-a/*, allow", "not a role of project",
                     id="other-project-subject"),
        pytest.param("p, alice, applications, get, team-a/*, allow", "not a role of project", id="plain-subject"),
        pytest.param("p, proj:team-a:ci, applications, get, team-b/*, allow", "must name project",
                     id="other-project-object"),
        pytest.param("p, proj:team-a:ci, applications, get, team-a/, allow", "must name project", id="empty-app"),
        pytest.param("p, proj:team-a:ci, applications, get, team-a/a/b/c, allow", "must name project",
                     id="four-segments"),
        pytest.param("p, proj:team-a:ci, applications, get, *, allow", "must name project", id="star-object"),
        pytest.param("p, proj:team-a:ci, projects, update, team-a, allow", "not allowed in a project role",
                     id="projects-update"),
        pytest.param("p, proj:team-a:ci, accounts, update, team-a/x, allow", "not allowed in a project role",
                     id="accounts"),
        pytest.param("g, my-org:ci, proj:team-b:ci", "not a role of project", id="g-other-project"),
        pytest.param("g, my-org:ci, role:admin", "not a role of project", id="g-global-role"),
    ],
)
def test_project_policy_is_confined_to_its_project(line: str, message: str) -> None:
    with pytest.raises(InvalidPolicy, match=message) as err:
        rbac_csv.parse_project_policy("team-a", "p, proj:team-a:ci, applications, get, team-a/*, allow\n" + line)
    assert err.value.line == 2


def test_project_name_is_literal_in_the_object_check() -> None:
    with pytest.raises(InvalidPolicy):
        rbac_csv.parse_project_policy("a.b", "p, proj:a.b:ci, applications, get, axb/app, allow")
    ok = rbac_csv.parse_project_policy("a.b", "p, proj:a.b:ci, applications, get, a.b/ns/app, allow")
    assert ok.rules[0].obj == "a.b/ns/app"


# -- argocd-rbac-cm -----------------------------------------------------------------------------------------


def test_configmap_overlays_in_key_order() -> None:
    cfg = rbac_csv.configmap_config({
        "policy.z.csv": "g, z, role:z",
        "policy.csv": "g, main, role:m",
        "policy.a.csv": "g, a, role:a",
        "policy.default": "role:readonly",
        "policy.matchMode": "regex",
        "scopes": "[groups]",
    })
    assert [src for src, _ in cfg.segments] == [
        "argocd-rbac-cm policy.csv", "argocd-rbac-cm policy.a.csv", "argocd-rbac-cm policy.z.csv"]
    assert cfg.default_role == "role:readonly"
    assert cfg.match_mode == "regex"


def test_configmap_values_must_be_strings() -> None:
    with pytest.raises(InvalidPolicy, match=r"data.policy.default must be a string"):
        rbac_csv.configmap_config({"policy.default": 3})
