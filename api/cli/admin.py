"""``syncwarden admin``: operator tools. ``admin rbac can|validate|test`` work offline on policy files;
``admin signing-key rotate`` rotates the project-token signing key (:mod:`api.cli.admin_keys`).

Argo CD's ``argocd admin settings rbac can|validate`` (reference §5.1), on the same ``policy.Authorizer`` the
server uses, plus ``test``: a table of expected decisions checked in CI (policy unit tests).

The policy file is either raw policy.csv or an ``argocd-rbac-cm`` ConfigMap YAML (its ``policy.csv``,
``policy.*.csv`` overlays, ``policy.default`` and ``policy.matchMode``). Exit codes: 0 allowed / valid / all
cases pass, 1 denied / some case mismatched, 2 invalid input or usage. Argo CD exits 1 for invalid input
too, which makes an error indistinguishable from "No"; we use 2 (DESIGN.md exit codes).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli import admin_keys
from api.cli.common import EXIT_DENIED, EXIT_OK, Output, console, emit, err_console, fail
from config import yamlsafe
from policy.errors import InvalidPolicy
from policy.rbac import Authorizer
from policy.rbac_csv import PROJECT_SCOPED, RESOURCE_ALIASES, validate_request

app = typer.Typer(help="Operator tools (offline RBAC checks, signing-key rotation).", no_args_is_help=True)
rbac = typer.Typer(help="Check, validate and unit-test an RBAC policy.csv.", no_args_is_help=True)
app.add_typer(rbac, name="rbac")
app.add_typer(admin_keys.app, name="signing-key")

PolicyFileOpt = Annotated[
    Path, typer.Option("--policy-file", help="policy.csv, or an argocd-rbac-cm ConfigMap YAML.")
]
DefaultRoleOpt = Annotated[
    str | None, typer.Option("--default-role", help="Default role (overrides the ConfigMap's policy.default).")
]
BuiltinOpt = Annotated[
    bool, typer.Option("--use-builtin-policy/--no-use-builtin-policy", help="Include the built-in policy.")
]
StrictOpt = Annotated[
    bool, typer.Option("--strict/--no-strict", help="Reject resources and actions outside the vocabulary.")
]

_YES = {"yes", "allow", "allowed", "true"}
_NO = {"no", "deny", "denied", "false"}


def _load(path: Path, *, default_role: str | None, builtin: bool) -> Authorizer:
    """An Authorizer from a policy file; every problem exits 2 with the file, line and reason."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text")
    try:
        doc = yamlsafe.load_one(raw, source=str(path))
    except yamlsafe.YamlError:
        doc = None  # not YAML at all: raw CSV (as Argo CD does)
    try:
        if isinstance(doc, dict) and ("data" in doc or doc.get("kind") == "ConfigMap"):
            if doc.get("kind", "ConfigMap") != "ConfigMap":
                fail(f"{path}: kind {doc.get('kind')!r}: expected a ConfigMap (argocd-rbac-cm) or raw policy.csv")
            data = doc.get("data") or {}
            if not isinstance(data, dict):
                fail(f"{path}: data must be a mapping of strings")
            if default_role is not None:
                data = {**data, "policy.default": default_role}
            return Authorizer.from_configmap(data, builtin=builtin, source=str(path))
        return Authorizer.from_csv(text, default_role=default_role, builtin=builtin, source=str(path))
    except InvalidPolicy as exc:
        fail(f"Policy is invalid: {exc}")


def _request(resource: str, action: str, obj: str, *, strict: bool) -> tuple[str, str, str] | str:
    """Resource aliases and the empty/``*`` object rule of ``rbac can``; an error message when strict
    validation fails."""
    resource = RESOURCE_ALIASES.get(resource, resource)
    if resource in PROJECT_SCOPED and obj in ("", "*"):
        obj = "*/*"
    if strict:
        problem = validate_request(resource, action)
        if problem:
            return problem
    return resource, action, obj


@rbac.command()
def can(
    subject: Annotated[str, typer.Argument(help="Subject or role (a literal string: no claims).")],
    action: Annotated[str, typer.Argument(help="Action, e.g. get, sync, update/apps/Deployment/ns/name.")],
    resource: Annotated[str, typer.Argument(help="Resource or alias (app, proj, repo, cluster, ...).")],
    obj: Annotated[str, typer.Argument(metavar="[OBJECT]", help="Object, e.g. project/app.")] = "",
    policy_file: PolicyFileOpt = ...,  # type: ignore[assignment]
    default_role: DefaultRoleOpt = None,
    builtin: BuiltinOpt = True,
    group: Annotated[list[str] | None, typer.Option("--group", help="A group claim of the caller (repeatable).")]
    = None,
    explain: Annotated[bool, typer.Option("--explain", help="Name the rule that decided.")] = False,
    strict: StrictOpt = True,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No output; the exit code only.")] = False,
) -> None:
    """May SUBJECT do ACTION on RESOURCE [OBJECT]? Prints Yes (exit 0) or No (exit 1)."""
    request = _request(resource, action, obj, strict=strict)
    if isinstance(request, str):
        fail(request)
    auth = _load(policy_file, default_role=default_role, builtin=builtin)
    decision = auth.enforce(subject, *request, groups=tuple(group or ()), explain=explain)
    if not quiet:
        out = console()
        out.print("Yes" if decision.allowed else "No", markup=False)
        if explain:
            out.print(decision.reason if decision.allowed else _deny_explanation(decision.reason, decision.rule),
                      markup=False)
        if decision.allowed and auth.unbound_group_grant(subject):
            err_console().print(
                f"warning: {subject!r} looks like an SSO group and has its own p rows, but no g line binds it; "
                "the API server ignores p rows of a group claim unless the group is the first field of a g line",
                markup=False,
            )
    raise typer.Exit(EXIT_OK if decision.allowed else EXIT_DENIED)


def _deny_explanation(reason: str, rule: str) -> str:
    return f"{reason} (by {rule})" if rule else reason


@rbac.command()
def validate(policy_file: PolicyFileOpt, builtin: BuiltinOpt = True) -> None:
    """Validate a policy file: prints "Policy is valid." (exit 0), or the line and the reason (exit 2)."""
    auth = _load(policy_file, default_role=None, builtin=builtin)
    if auth.user_line_count == 0:
        fail(f"{policy_file}: Policy is empty (no p or g lines)")
    for warning in auth.warnings():
        err_console().print(f"warning: {warning}", markup=False)
    console().print("Policy is valid.", markup=False)


def _expected(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _YES | _NO:
        return value.strip().lower() in _YES
    fail(f"{where}: expected must be yes or no, not {value!r}")


def _cases(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, case) pairs from a YAML list (or ``{cases: [...]}``) or a CSV table with a header row."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror}")
    if path.suffix.lower() == ".csv":
        try:
            reader = csv.DictReader(io.StringIO(raw.decode("utf-8")), skipinitialspace=True)
            rows = []
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    fail(f"{path} line {reader.line_num}: wrong number of columns")
                case: dict[str, Any] = {k.strip(): (v or "").strip() for k, v in row.items()}
                case["groups"] = [g for g in str(case.get("groups", "")).split(";") if g.strip()]
                rows.append((f"{path} line {reader.line_num}", case))
            return rows
        except (UnicodeDecodeError, csv.Error) as exc:
            fail(f"{path}: not a CSV table: {exc}")
    try:
        doc = yamlsafe.load_one(raw, source=str(path))
    except yamlsafe.YamlError as exc:
        fail(str(exc))
    if isinstance(doc, dict) and "cases" in doc:
        doc = doc["cases"]
    if not isinstance(doc, list):
        fail(f"{path}: expected a list of cases (or a mapping with 'cases')")
    out = []
    for i, case in enumerate(doc):
        if not isinstance(case, dict):
            fail(f"{path}: cases[{i}] must be a mapping")
        out.append((f"{path}: cases[{i}]", case))
    return out


def _field(case: dict[str, Any], name: str, where: str, *, required: bool = True) -> str:
    value = case.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        fail(f"{where}.{name} must be a string, not {type(value).__name__}")
    if required and not value:
        fail(f"{where}: {name} is required")
    return value


@rbac.command("test")
def run_cases(
    policy_file: PolicyFileOpt,
    cases: Annotated[Path, typer.Option("--cases", help="YAML list or CSV table of expected decisions.")],
    default_role: DefaultRoleOpt = None,
    builtin: BuiltinOpt = True,
    strict: StrictOpt = True,
    output: Annotated[Output, typer.Option("-o", "--output", help="Output format.")] = Output.table,
) -> None:
    """Check a table of expected decisions (subject, action, resource, object, expected, groups); reports
    every mismatch and exits 1 when there is any."""
    auth = _load(policy_file, default_role=default_role, builtin=builtin)
    table = _cases(cases)
    results: list[dict[str, Any]] = []
    for where, case in table:
        subject = _field(case, "subject", where)
        request = _request(_field(case, "resource", where), _field(case, "action", where),
                           _field(case, "object", where, required=False), strict=strict)
        if isinstance(request, str):
            fail(f"{where}: {request}")
        groups = case.get("groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            fail(f"{where}.groups must be a list of strings")
        expected = _expected(case.get("expected"), where)
        decision = auth.enforce(subject, *request, groups=tuple(groups), explain=True)
        results.append({
            "case": where, "subject": subject, "resource": request[0], "action": request[1], "object": request[2],
            "groups": groups, "expected": expected, "got": decision.allowed,
            "rule": decision.rule, "reason": decision.reason,
        })
    mismatches = [r for r in results if r["expected"] != r["got"]]
    if output is Output.table:
        out = console()
        for r in mismatches:
            out.print(f"MISMATCH {r['case']}: {r['subject']} {r['action']} {r['resource']} {r['object']!r}"
                      f"{' groups=' + ','.join(r['groups']) if r['groups'] else ''}: expected "
                      f"{'Yes' if r['expected'] else 'No'}, got {'Yes' if r['got'] else 'No'} ({r['reason']}"
                      f"{'; rule: ' + r['rule'] if r['rule'] and not r['got'] else ''})", markup=False)
        out.print(f"{len(results)} cases: {len(results) - len(mismatches)} passed, {len(mismatches)} mismatched",
                  markup=False)
    else:
        emit({"cases": len(results), "passed": len(results) - len(mismatches), "mismatches": mismatches}, output)
    raise typer.Exit(EXIT_DENIED if mismatches else EXIT_OK)
