"""Renderings of a :class:`~api.check.CheckReport`: human text, JSON, SARIF 2.1.0 and JUnit XML.

Pipelines pick the one their tooling reads: SARIF for code-scanning annotations (each violation points at the
file and document it came from), JUnit for test dashboards (one test case per app), JSON for scripts.
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.etree import ElementTree as ET

from api.check import CheckReport
from policy.decision import Code, Violation

__all__ = ["render_json", "render_junit", "render_sarif", "render_text"]

_RULE_TEXT = {
    Code.SOURCE_NOT_PERMITTED: "The source repository is not among the project's sourceRepos.",
    Code.SOURCE_DENIED: "The source repository matches a negated sourceRepos entry.",
    Code.DESTINATION_NOT_PERMITTED: "The destination is not among the project's destinations.",
    Code.DESTINATION_DENIED: "The destination matches a negated destinations entry.",
    Code.CLUSTER_UNKNOWN: "The destination names no registered cluster.",
    Code.NAMESPACE_NOT_PERMITTED: "An object's namespace is not a permitted destination of the project.",
    Code.RESOURCE_NOT_PERMITTED: "The object's kind is not permitted by the project's resource lists.",
    Code.RESOURCE_DENIED: "The object's kind is blacklisted by the project.",
    Code.RESOURCE_UNKNOWN_KIND: "The object's kind is unknown, so its permissions cannot be verified.",
    Code.SOURCE_NAMESPACE_NOT_PERMITTED: "The Application lives in a namespace the project does not accept.",
    Code.PROJECT_MISMATCH: "The app (or a child Application) names another project.",
    Code.PROJECT_UNKNOWN: "The app's project does not exist or could not be loaded.",
    Code.WINDOW_BLOCKED: "A sync window blocks this kind of sync now.",
    Code.WINDOW_INVALID: "A sync window could not be evaluated.",
    Code.RBAC_DENIED: "The caller lacks the RBAC permission.",
    Code.POLICY_ERROR: "The policy could not be evaluated; denied (fail closed).",
}
_WHERE = re.compile(r"^(?P<file>.+?)\[(?P<index>\d+)\]")


def render_text(report: CheckReport) -> str:
    lines = []
    for r in report.results:
        verdict = "ALLOWED" if r.decision.allowed else "DENIED"
        lines.append(f"{verdict}  app {r.app!r} (project {r.project!r}, {r.objects} objects, {report.sync} sync)")
        if r.decision.allowed:
            if r.decision.details.get("override"):
                lines.append(f"  window override: {r.decision.details['override'].get('reason', '')}")
            continue
        for v in r.decision.violations:
            lines.append(f"  - [{v.code}] {v.message}")
            if v.field:
                lines.append(f"      at:   {v.field}")
            if v.rule:
                lines.append(f"      rule: {v.rule}")
    total = len(report.results)
    denied = sum(1 for r in report.results if not r.decision.allowed)
    lines.append(f"{total - denied} of {total} app(s) allowed at {report.to_dict()['at']}")
    return "\n".join(lines) + "\n"


def render_json(report: CheckReport) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


def _location(v: Violation, fallback: str) -> dict[str, Any]:
    match = _WHERE.match(v.field) or _WHERE.match(fallback)
    uri = match.group("file") if match else fallback
    loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": uri}}}
    if v.field:
        loc["logicalLocations"] = [{"fullyQualifiedName": v.field}]
    return loc


def render_sarif(report: CheckReport) -> str:
    codes = sorted({v.code for r in report.results for v in r.decision.violations})
    rules = [
        {"id": code, "name": code, "shortDescription": {"text": _RULE_TEXT.get(code, code)}} for code in codes
    ]
    results = []
    for r in report.results:
        for v in r.decision.violations:
            results.append(
                {
                    "ruleId": v.code,
                    "ruleIndex": codes.index(v.code),
                    "level": "error",
                    "message": {"text": f"{v.message} (rule: {v.rule})" if v.rule else v.message},
                    "locations": [_location(v, r.source)],
                    "properties": {"app": r.app, "project": r.project},
                }
            )
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "syncwarden", "rules": rules}},
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def render_junit(report: CheckReport) -> str:
    failures = sum(1 for r in report.results if not r.decision.allowed)
    suite = ET.Element(
        "testsuite",
        name="syncwarden check",
        tests=str(len(report.results)),
        failures=str(failures),
        errors="0",
        timestamp=report.to_dict()["at"],
    )
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=f"project.{r.project}", name=f"app.{r.app}")
        if r.decision.allowed:
            continue
        text = "\n".join(
            f"[{v.code}] {v.message} at {v.field or r.source} (rule: {v.rule})" for v in r.decision.violations
        )
        failure = ET.SubElement(
            case, "failure", message=r.decision.reason, type=r.decision.violations[0].code
        )
        failure.text = text
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
