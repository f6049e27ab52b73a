"""The destination gate (reference §1.4; §6 items 3, 4, 5, 40; security case PROJ-06; deliberate difference 1).

Covers: server-or-name matching, empty fields, G globs crossing ``/`` and ``.``, brace alternation inside a
negation, negations that deny (symmetric across server, name and namespace: difference 1, each asymmetry of
Argo CD we drop has its own ``diff1-`` row), negations that also allow what they do not negate (kept from
Argo CD), order independence, the empty namespace, ``permitOnlyProjectScopedClusters`` (fail closed without
the scoped clusters), and the decision's code, field, rule and message.
"""

from __future__ import annotations

from typing import Any

import pytest

from policy.decision import Code
from policy.project import AppProject

S = "https://test-server"
IN = "https://kubernetes.default.svc"


def project(*destinations: dict[str, str], **spec: Any) -> AppProject:
    return AppProject.from_dict({"destinations": list(destinations), **spec}, name="p")


def d(server: str | None = None, namespace: str | None = None, name: str | None = None) -> dict[str, str]:
    pairs = (("server", server), ("namespace", namespace), ("name", name))
    return {k: v for k, v in pairs if v is not None}


Request = tuple[str, str, str]  # server, name, namespace

CASES = [
    # --- plain matching
    pytest.param([d(S, "default")], (S, "", "default"), True, id="exact-server-and-namespace"),
    pytest.param([d(S, "default")], (S, "", "other"), False, id="namespace-differs"),
    pytest.param([d(name="prod", namespace="*")], ("", "prod", "x"), True, id="by-name"),
    pytest.param([d(S, "*")], ("", "prod", "x"), False, id="server-item-never-matches-by-name"),
    pytest.param([d(name="prod", namespace="*")], (S, "", "x"), False, id="name-item-never-matches-by-server"),
    pytest.param([d(S, "*")], (S, "prod", "x"), True, id="server-or-name-either-is-enough"),
    pytest.param([d("https://*.default.svc", "*")], (IN, "", "a"), True, id="glob-crosses-dots"),
    pytest.param([d("https://*", "team-*")], ("https://a/b/c", "", "team-x"), True, id="glob-crosses-slashes"),
    pytest.param([d("https://kubernetes.default.svc", "{a,b}")], (IN, "", "b"), True, id="brace-alternation"),
    pytest.param([], (S, "", "default"), False, id="empty-list-permits-nothing"),
    # --- negation denies (Argo CD and us)
    pytest.param([d("*", "*"), d("*", "!kube-system")], (S, "", "kube-system"), False,
                 id="item4-matching-deny-wins-over-allow"),
    pytest.param([d("*", "!kube-system"), d("*", "*")], (S, "", "kube-system"), False, id="proj06-deny-listed-first"),
    pytest.param([d("*", "*"), d("*", "!kube-system")], (S, "", "default"), True, id="item4-other-namespace-ok"),
    pytest.param([d(S, "!{kube-system,argocd}"), d("https://other", "*")], ("https://other", "", "kube-system"), True,
                 id="item3-negated-braces-scoped-to-its-cluster"),
    pytest.param([d(S, "!{kube-system,argocd}"), d("https://other", "*")], (S, "", "argocd"), False,
                 id="item3-negated-braces-deny-on-its-cluster"),
    pytest.param([d("*", "test"), d(f"!{S}", "other")], (S, "", "test"), True,
                 id="item4-server-negation-scoped-by-namespace"),
    pytest.param([d("*", "test"), d(f"!{S}", "other")], (S, "", "other"), False,
                 id="item4-server-negation-denies-its-namespace"),
    pytest.param([d("*", "*"), d(S, "!other")], ("https://other-test-server", "", "other"), True,
                 id="item4-namespace-negation-scoped-by-server"),
    pytest.param([d("*", "*"), d(name="!prod", namespace="*")], ("", "prod", "x"), False, id="proj06-name-negation"),
    # --- a negated entry also allows what it does not negate (kept from Argo CD)
    pytest.param([d(f"!{S}", "default")], ("https://elsewhere", "", "default"), True,
                 id="item4-lone-server-negation-allows-other-servers"),
    pytest.param([d(S, "!default")], (S, "", "anything"), True, id="item4-lone-namespace-negation-allows-others"),
    pytest.param([d(f"!{S}", "default")], (S, "", "default"), False, id="lone-server-negation-denies-its-server"),
    pytest.param([d(f"!{S}", "!kube-system")], ("https://x", "", "default"), True, id="double-negation-allows"),
    pytest.param([d(f"!{S}", "!kube-system")], (S, "", "default"), False, id="double-negation-server-fires"),
    pytest.param([d(f"!{S}", "!kube-system")], ("https://x", "", "kube-system"), False,
                 id="double-negation-namespace-fires"),
    pytest.param([d(f"!{S}", "!kube-system")], (S, "", "kube-system"), False, id="double-negation-both-fire"),
    # --- deliberate difference 1: the asymmetries of Argo CD we drop (reference §1.4, §6 item 40)
    pytest.param([d("*", "*"), d(name="!prod", namespace="dev")], (S, "prod", "other"), True,
                 id="diff1-item40-name-negation-scoped-by-namespace-argo-denies"),
    pytest.param([d("*", "*"), d(name="!prod", namespace="dev")], (S, "prod", "dev"), False,
                 id="diff1-name-negation-denies-its-namespace"),
    pytest.param([d("*", "*"), d(name="in-cluster", namespace="!kube-system")], (IN, "in-cluster", "kube-system"),
                 False, id="diff1-item40-namespace-negation-on-name-item-denies-argo-permits"),
    pytest.param([d("*", "*"), d(name="in-cluster", namespace="!kube-system")], (IN, "in-cluster", "default"),
                 True, id="diff1-namespace-negation-on-name-item-allows-others"),
    pytest.param([d(f"!{S}", "*", name="n")], (S, "n", "x"), False,
                 id="diff1-firing-server-negation-beats-name-match-argo-permits"),
    pytest.param([d(f"!{S}", "*", name="n")], ("https://x", "m", "x"), True, id="diff1-mixed-item-spared-allows"),
    pytest.param([d("*", "*"), d(name="!prod", namespace="*")], (S, "", "x"), True,
                 id="name-negation-cannot-judge-unknown-name"),
    # --- the empty namespace (apps with only cluster-scoped objects)
    pytest.param([d(S, "*")], (S, "", ""), True, id="empty-namespace-matches-star"),
    pytest.param([d(S, "")], (S, "", ""), True, id="empty-namespace-matches-empty"),
    pytest.param([d(S)], (S, "", ""), True, id="empty-namespace-matches-absent"),
    pytest.param([d(S, "!kube-system")], (S, "", ""), True, id="empty-namespace-spared-by-negation"),
    pytest.param([d(S, "default")], (S, "", ""), False, id="empty-namespace-not-default"),
    pytest.param([d(S, "foo-*")], (S, "", ""), False, id="empty-namespace-not-prefix-glob"),
    pytest.param([d(S)], (S, "", "default"), False, id="absent-namespace-matches-only-empty"),
]


@pytest.mark.parametrize(("destinations", "request_", "allowed"), CASES)
def test_destination_decision_table(destinations: list[dict[str, str]], request_: Request, allowed: bool) -> None:
    server, name, namespace = request_
    assert bool(project(*destinations).check_destination(server=server, name=name, namespace=namespace)) is allowed


@pytest.mark.parametrize(("destinations", "request_", "allowed"), CASES)
def test_order_never_matters(destinations: list[dict[str, str]], request_: Request, allowed: bool) -> None:
    server, name, namespace = request_
    reversed_project = project(*reversed(destinations))
    assert bool(reversed_project.check_destination(server=server, name=name, namespace=namespace)) is allowed


def test_allow_names_the_first_matching_entry() -> None:
    decision = project(d("https://a", "*"), d("*", "team-*")).check_destination(server=S, namespace="team-a")
    assert decision.rule == "spec.destinations[1] {server: *, namespace: team-*}"


def test_denial_names_the_negating_entry() -> None:
    decision = project(d("*", "*"), d("*", "!kube-system")).check_destination(server=S, namespace="kube-system")
    (violation,) = decision.violations
    assert violation.code == Code.DESTINATION_DENIED
    assert violation.rule == "spec.destinations[1] {server: *, namespace: !kube-system}"
    assert violation.field == "spec.destination"
    assert "'kube-system'" in violation.message and "spec.destinations[1]" in violation.message


def test_not_permitted_violation() -> None:
    decision = project(d(S, "a")).check_destination(name="prod", namespace="b", field="metadata.namespace")
    (violation,) = decision.violations
    assert violation.code == Code.DESTINATION_NOT_PERMITTED
    assert violation.field == "metadata.namespace"
    assert violation.rule == "spec.destinations"
    assert "name 'prod', namespace 'b'" in violation.message


def test_no_destinations_reason() -> None:
    assert "lists no spec.destinations" in AppProject.from_dict({}, name="p").check_destination(
        server=S, namespace="a").reason


def test_empty_describe_shows_quotes() -> None:
    decision = project(d(S, "")).check_destination(server=S, namespace="")
    assert decision.rule == 'spec.destinations[0] {server: https://test-server, namespace: ""}'


class TestPermitOnlyProjectScopedClusters:
    """§6 item 5: a glob-matching server is not enough; the cluster must be one of the project's own."""

    def scoped(self) -> AppProject:
        return project(d("*", "*"), d(name="m*", namespace="*"), permitOnlyProjectScopedClusters=True)

    def test_glob_match_is_not_enough(self) -> None:
        decision = self.scoped().check_destination(server=S, namespace="a", scoped_clusters=[("https://mine", "m")])
        assert not decision
        assert decision.violations[0].code == Code.DESTINATION_NOT_PERMITTED
        assert decision.violations[0].rule == "spec.permitOnlyProjectScopedClusters"

    @pytest.mark.parametrize(
        ("server", "name"),
        [pytest.param(S, "", id="by-server"), pytest.param("", "mine", id="by-name")],
    )
    def test_scoped_cluster_passes(self, server: str, name: str) -> None:
        decision = self.scoped().check_destination(server=server, name=name, namespace="a",
                                                   scoped_clusters=[(S, "mine")])
        assert decision
        assert decision.rule.endswith("; spec.permitOnlyProjectScopedClusters")

    def test_unknown_scoped_clusters_fail_closed(self, caplog: pytest.LogCaptureFixture) -> None:
        decision = self.scoped().check_destination(server=S, namespace="a")
        assert not decision
        assert decision.violations[0].code == Code.POLICY_ERROR
        assert "cannot verify" in decision.reason
        assert "permits only project-scoped clusters" in caplog.text

    def test_false_flag_needs_nothing(self) -> None:
        assert project(d("*", "*"), permitOnlyProjectScopedClusters=False).check_destination(server=S, namespace="a")
