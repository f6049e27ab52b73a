"""The source-namespace gate (reference §1.3; §6 items 7, 12; security case PROJ-14) and the
destination service-account rule (reference §1.8; §6 item 37's first-match rule).

Covers: the control-plane namespace (and an empty one) always passes, an absent or empty list admits nothing
else, G globs, ``/regex/`` entries searched unanchored (Argo CD), ``!`` literal, and impersonation: first
match wins, ``ns:name`` accounts, the fallback to the Application's namespace.
"""

from __future__ import annotations

from typing import Any

import pytest

from policy.decision import Code
from policy.project import AppProject


def project(**spec: Any) -> AppProject:
    return AppProject.from_dict(spec, name="p")


@pytest.mark.parametrize(
    ("entries", "namespace", "allowed"),
    [
        pytest.param(None, "syncwarden", True, id="item12-control-plane-always-ok"),
        pytest.param([], "syncwarden", True, id="item12-control-plane-ok-with-empty-list"),
        pytest.param(["team-a"], "", True, id="empty-namespace-not-yet-defaulted"),
        pytest.param(None, "team-a", False, id="absent-list-admits-only-control-plane"),
        pytest.param([], "team-a", False, id="item12-empty-list-blocks-others"),
        pytest.param(["team-a"], "team-b", False, id="proj14-unlisted-namespace-rejected"),
        pytest.param(["team-a"], "team-a", True, id="listed"),
        pytest.param(["team-*"], "team-b", True, id="item12-glob"),
        pytest.param(["*"], "anything", True, id="star"),
        pytest.param(["/^team-[ab]$/"], "team-b", True, id="regex-anchored-by-author"),
        pytest.param(["/^team-[ab]$/"], "team-c", False, id="regex-no-match"),
        pytest.param(["/team/"], "my-team-x", True, id="regex-unanchored-search-like-argo"),
        pytest.param(["!team-a"], "team-b", False, id="item7-bang-is-literal"),
        pytest.param(["!team-a"], "!team-a", True, id="item7-bang-matches-itself"),
    ],
)
def test_source_namespace_table(entries: list[str] | None, namespace: str, allowed: bool) -> None:
    spec = {} if entries is None else {"sourceNamespaces": entries}
    assert bool(project(**spec).check_source_namespace(namespace)) is allowed


def test_custom_control_plane_namespace() -> None:
    p = project(sourceNamespaces=["team-*"])
    assert p.check_source_namespace("argocd", control_plane_namespace="argocd")
    assert not p.check_source_namespace("syncwarden", control_plane_namespace="argocd")


def test_decisions_name_the_rule() -> None:
    p = project(sourceNamespaces=["ops", "team-*"])
    assert p.check_source_namespace("team-x").rule == "spec.sourceNamespaces[1] team-*"
    assert p.check_source_namespace("syncwarden").rule == "control-plane namespace 'syncwarden'"
    (violation,) = p.check_source_namespace("evil").violations
    assert violation.code == Code.SOURCE_NAMESPACE_NOT_PERMITTED
    assert violation.field == "metadata.namespace"
    assert violation.rule == "spec.sourceNamespaces"
    assert "'evil'" in violation.message and "'p'" in violation.message


SAS = [
    {"server": "https://kubernetes.default.svc", "namespace": "team-*", "defaultServiceAccount": "deployer"},
    {"server": "*", "namespace": "team-a", "defaultServiceAccount": "never-reached"},
    {"server": "*", "namespace": "ops", "defaultServiceAccount": "tools:robot"},
    {"server": "https://*", "namespace": "", "defaultServiceAccount": "cluster-wide"},
]


@pytest.mark.parametrize(
    ("server", "namespace", "expected"),
    [
        pytest.param("https://kubernetes.default.svc", "team-a", "system:serviceaccount:team-a:deployer",
                     id="first-match-wins"),
        pytest.param("https://other", "team-a", "system:serviceaccount:team-a:never-reached", id="second-entry"),
        pytest.param("https://other", "ops", "system:serviceaccount:tools:robot", id="namespaced-account"),
        pytest.param("https://other", "", "system:serviceaccount:app-ns:cluster-wide",
                     id="empty-destination-namespace-uses-app-namespace"),
        pytest.param("https://other", "nowhere", None, id="no-match"),
    ],
)
def test_service_account_for(server: str, namespace: str, expected: str | None) -> None:
    p = project(destinationServiceAccounts=SAS)
    assert p.service_account_for(server=server, namespace=namespace, app_namespace="app-ns") == expected


def test_no_service_account_rules() -> None:
    assert project().service_account_for(server="https://x", namespace="a", app_namespace="b") is None
