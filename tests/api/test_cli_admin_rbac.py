"""``syncwarden admin rbac can|validate|test``, driven through the real Typer app on real files.

Covers: Yes/No and exit codes 0/1, invalid input exit 2 (Argo CD uses 1), resource aliases and the
empty/``*`` → ``*/*`` rule, ``--default-role``, ``--no-use-builtin-policy``, ``--strict``/``--no-strict``,
``-q``, ``--explain`` naming the rule and the g line, ``--group``, the unbound-group warning, raw CSV and
argocd-rbac-cm ConfigMap files (overlays, policy.default, regex matchMode), ``validate`` (valid, invalid
with the line, empty, warnings) and ``test`` with YAML and CSV case tables (every mismatch reported, exit 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import cli

POLICY = """\
p, role:dev, applications, sync, team-a/*, allow
p, role:dev, applications, get, team-a/*, allow
g, alice, role:dev
p, alice, applications, sync, team-a/prod, deny
p, my-org:team, applications, get, */*, allow
"""

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-rbac-cm
data:
  policy.default: role:readonly
  policy.matchMode: regex
  policy.csv: |
    g, alice, role:dev
  policy.team.csv: |
    p, role:dev, applications, sync, team-(a|b)/.*, allow
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.csv"
    path.write_text(POLICY)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["admin", "rbac", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "code", "out"),
    [
        pytest.param(["alice", "sync", "app", "team-a/web"], 0, "Yes\n", id="allowed-via-role"),
        pytest.param(["alice", "sync", "app", "team-b/web"], 1, "No\n", id="other-project"),
        pytest.param(["alice", "sync", "applications", "team-a/prod"], 1, "No\n", id="deny-wins"),
        pytest.param(["alice", "get", "apps"], 1, "No\n", id="empty-object-is-star-star"),
        pytest.param(["alice", "get", "apps", "--default-role", "role:readonly"], 0, "Yes\n", id="default-role"),
        pytest.param(["admin", "get", "logs", ""], 0, "Yes\n", id="logs-empty-object"),
        pytest.param(["admin", "get", "logs", "*"], 0, "Yes\n", id="logs-star-object"),
        pytest.param(["admin", "get", "logs", "--no-use-builtin-policy"], 1, "No\n", id="no-builtin"),
        pytest.param(["admin", "create", "proj", "p1"], 0, "Yes\n", id="proj-alias"),
        pytest.param(["admin", "update", "cert"], 0, "Yes\n", id="cert-alias-empty-object"),
        pytest.param(["bob", "sync", "app", "team-a/web", "--group", "org:x"], 1, "No\n", id="unbound-group"),
    ],
)
def test_can(policy_file: Path, args: list[str], code: int, out: str) -> None:
    exit_code, stdout, _ = run("can", *args, "--policy-file", str(policy_file))
    assert (exit_code, stdout) == (code, out)


def test_can_quiet_prints_nothing(policy_file: Path) -> None:
    assert run("can", "alice", "sync", "app", "team-a/web", "-q", "--policy-file", str(policy_file)) == (0, "", "")
    assert run("can", "alice", "sync", "app", "team-b/web", "-q", "--policy-file", str(policy_file)) == (1, "", "")


def test_can_explain_names_the_rule(policy_file: Path) -> None:
    code, out, _ = run("can", "alice", "sync", "app", "team-a/web", "--explain", "--policy-file", str(policy_file))
    assert code == 0
    assert out.splitlines() == [
        "Yes",
        f"allowed by p, role:dev, applications, sync, team-a/*, allow ({policy_file} line 1); "
        f"g, alice, role:dev ({policy_file} line 3)",
    ]
    code, out, _ = run("can", "alice", "sync", "app", "team-a/prod", "--explain", "--policy-file", str(policy_file))
    assert code == 1
    assert f"p, alice, applications, sync, team-a/prod, deny ({policy_file} line 4)" in out


def test_can_strict_rejects_unknown_actions_with_exit_2(policy_file: Path) -> None:
    code, out, err = run("can", "alice", "bogus", "app", "x/y", "--policy-file", str(policy_file))
    assert (code, out) == (2, "")
    assert "'bogus' is not a valid action for applications" in err
    code, _, err = run("can", "alice", "get", "widgets", "x", "--policy-file", str(policy_file))
    assert code == 2
    assert "'widgets' is not a valid resource" in err
    code, out, _ = run("can", "alice", "bogus", "app", "x/y", "--no-strict", "--policy-file", str(policy_file))
    assert (code, out) == (1, "No\n")


def test_can_warns_about_unbound_group_grants(policy_file: Path) -> None:
    code, out, err = run("can", "my-org:team", "get", "app", "x/y", "--policy-file", str(policy_file))
    assert (code, out) == (0, "Yes\n")
    assert "no g line binds it" in err


def test_can_reads_an_rbac_configmap(tmp_path: Path) -> None:
    path = tmp_path / "argocd-rbac-cm.yaml"
    path.write_text(CONFIGMAP)
    assert run("can", "alice", "sync", "app", "team-b/web", "--policy-file", str(path))[:2] == (0, "Yes\n")
    assert run("can", "alice", "sync", "app", "team-c/web", "--policy-file", str(path))[:2] == (1, "No\n")
    assert run("can", "bob", "get", "app", "team-c/web", "--policy-file", str(path))[:2] == (0, "Yes\n")
    # --default-role overrides the ConfigMap's policy.default
    assert run("can", "bob", "get", "app", "x/y", "--default-role", "role:none",
               "--policy-file", str(path))[:2] == (1, "No\n")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("p, alice, applications, get, x/y, Allow\n", "line 1: effect must be exactly", id="bad-effect"),
        pytest.param("g, alice\n", "line 1: a g line has exactly 3 fields", id="g-fields"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\ndata:\n  policy.matchMode: Regexp\n", "unknown match mode",
                     id="cm-match-mode"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\ndata:\n  policy.csv: 3\n", "data.policy.csv must be a string",
                     id="cm-non-string"),
        pytest.param("kind: Secret\ndata: {}\n", "expected a ConfigMap", id="wrong-kind"),
    ],
)
def test_invalid_policy_exits_2_naming_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    code, out, err = run("can", "alice", "get", "app", "x/y", "--policy-file", str(path))
    assert (code, out) == (2, "")
    assert message in err
    assert "Traceback" not in err
    code, out, err = run("validate", "--policy-file", str(path))
    assert (code, out) == (2, "")
    assert message in err


def test_missing_policy_file_exits_2(tmp_path: Path) -> None:
    code, _, err = run("validate", "--policy-file", str(tmp_path / "nope.csv"))
    assert code == 2
    assert "cannot read" in err


def test_validate(policy_file: Path, tmp_path: Path) -> None:
    assert run("validate", "--policy-file", str(policy_file)) == (0, "Policy is valid.\n", "")
    ghost = tmp_path / "ghost.csv"
    ghost.write_text("g, alice, role:ghost\n")
    code, out, err = run("validate", "--policy-file", str(ghost))
    assert (code, out) == (0, "Policy is valid.\n")
    assert "role 'role:ghost' has no p rows" in err
    empty = tmp_path / "empty.csv"
    empty.write_text("# nothing here\n")
    code, _, err = run("validate", "--policy-file", str(empty))
    assert code == 2
    assert "Policy is empty" in err


CASES_YAML = """\
cases:
  - {subject: alice, action: sync, resource: app, object: team-a/web, expected: yes}
  - {subject: alice, action: sync, resource: app, object: team-a/prod, expected: "no"}
  - {subject: alice, action: sync, resource: app, object: team-b/web, expected: "yes"}
  - {subject: bob, action: get, resource: app, object: team-a/x, expected: allow, groups: [org:none]}
  - {subject: admin, action: get, resource: logs, expected: true}
"""


def test_test_reports_every_mismatch(policy_file: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES_YAML)
    code, out, _ = run("test", "--policy-file", str(policy_file), "--cases", str(cases))
    assert code == 1
    lines = out.splitlines()
    assert lines[-1] == "5 cases: 3 passed, 2 mismatched"
    assert lines[0].startswith(f"MISMATCH {cases}: cases[2]: alice sync applications 'team-b/web': expected Yes, got No")
    assert lines[1].startswith(f"MISMATCH {cases}: cases[3]: bob get applications 'team-a/x' groups=org:none")


def test_test_passes_and_speaks_json(policy_file: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    cases.write_text(
        "subject,action,resource,object,expected,groups\n"
        "alice,sync,app,team-a/web,yes,\n"
        "alice,sync,app,team-a/prod,no,\n"
        "carol,get,app,team-a/x,no,org:a;org:b\n"
    )
    code, out, _ = run("test", "--policy-file", str(policy_file), "--cases", str(cases), "-o", "json")
    assert code == 0
    assert json.loads(out) == {"cases": 3, "passed": 3, "mismatches": []}


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        pytest.param("- {subject: a, action: get, resource: app, expected: maybe}\n", ".yaml",
                     "expected must be yes or no", id="bad-expected"),
        pytest.param("- {action: get, resource: app, expected: yes}\n", ".yaml", "subject is required",
                     id="missing-subject"),
        pytest.param("- {subject: a, action: fly, resource: app, expected: yes}\n", ".yaml",
                     "'fly' is not a valid action", id="strict"),
        pytest.param("subject: a\n", ".yaml", "expected a list of cases", id="not-a-list"),
        pytest.param("subject,action,resource,object,expected\na,get,app,x/y,yes,extra\n", ".csv",
                     "line 2: wrong number of columns", id="csv-columns"),
    ],
)
def test_test_rejects_bad_case_files(
    policy_file: Path, tmp_path: Path, content: str, suffix: str, message: str
) -> None:
    cases = tmp_path / f"cases{suffix}"
    cases.write_text(content)
    code, _, err = run("test", "--policy-file", str(policy_file), "--cases", str(cases))
    assert code == 2
    assert message in err
