"""The source-repository gate (reference §1.2; §6 items 1, 2, 38, 39; security case PROJ-08).

Covers: absent and empty lists, ``*``, G/ globs (``*`` stops at ``/``, ``**`` crosses it), no implicit
prefix match, negations anywhere in the list, a list of only negations (kept from Argo CD), unparseable URLs
(deliberate difference 2), the decision's code, field, rule and message, and credentials never shown.
"""

from __future__ import annotations

from typing import Any

import pytest

from policy.decision import Code
from policy.project import AppProject


def project(source_repos: list[str] | None) -> AppProject:
    spec: dict[str, Any] = {} if source_repos is None else {"sourceRepos": source_repos}
    return AppProject.from_dict(spec, name="p")


@pytest.mark.parametrize(
    ("repos", "url", "allowed"),
    [
        pytest.param(None, "https://github.com/org/repo", False, id="absent-list-permits-nothing"),
        pytest.param([], "https://github.com/org/repo", False, id="empty-list-permits-nothing"),
        pytest.param(["*"], "https://github.com/org/repo", True, id="star-permits-all"),
        pytest.param(["*"], "git@gitlab.com:a/b/c/d.git", True, id="star-crosses-slashes"),
        pytest.param(["https://gitlab.com/group/*"], "https://gitlab.com/group/repo/owner", False,
                     id="item1-star-stops-at-slash"),
        pytest.param(["https://gitlab.com/group/*/*"], "https://gitlab.com/group/repo/owner", True,
                     id="item1-star-star-segments"),
        pytest.param(["https://gitlab.com/group/**"], "https://gitlab.com/group/repo/owner", True,
                     id="item1-super-star"),
        pytest.param(["https://github.com/argoproj/foo"], "https://github.com/argoproj/foo1", False,
                     id="item1-no-prefix-match"),
        pytest.param(["https://git.example/org/*"], "https://git.example/org-evil/x", False,
                     id="proj08-org-prefix-is-not-a-match"),
        pytest.param(["https://git.example/org/*"], "https://git.example/org/sub/repo", False,
                     id="proj08-star-does-not-cross"),
        pytest.param(["https://github.com/argoproj/test"], "https://GITHUB.com/ArgoProj/Test.git", True,
                     id="normalised-case-and-git"),
        pytest.param(["git@github.com:argoproj/test.git"], "ssh://git@github.com/argoproj/test", True,
                     id="scp-like-equals-ssh"),
        pytest.param(["https://github.com/argoproj/*", "!https://github.com/argoproj/secret"],
                     "https://github.com/argoproj/secret", False, id="item2-negation-after-allow-denies"),
        pytest.param(["!https://github.com/argoproj/secret", "https://github.com/argoproj/*"],
                     "https://github.com/argoproj/secret.git", False, id="item2-negation-before-allow-denies"),
        pytest.param(["!https://github.com/argoproj/*.git", "*"], "https://github.com/argoproj1/test2.git", True,
                     id="item2-other-org-still-permitted"),
        pytest.param(["!https://github.com/argoproj/*.git", "*"], "https://github.com/argoproj/test2.git", False,
                     id="item2-negated-org-denied"),
        pytest.param(["!https://github.com/evil/*"], "https://gitlab.com/x/y", True,
                     id="item38-only-negations-permit-the-rest-kept-from-argo"),
        pytest.param(["!https://github.com/evil/*"], "https://github.com/evil/y", False,
                     id="item38-only-negations-deny-what-they-match"),
        pytest.param(["ssh://git@GITHUB.com:argoproj/test"], "ssh://git@github.com:argoproj/test", False,
                     id="item1-item39-diff2-unparseable-urls-do-not-match-each-other"),
        pytest.param(["ssh://git@github.com:argoproj/test"], "ssh://git@github.com:argoproj/test", True,
                     id="diff2-identical-unparseable-string-matches"),
        pytest.param(["!ssh://git@a:x/y"], "ssh://git@b:z/w", True,
                     id="item39-diff2-negated-unparseable-does-not-deny-other-unparseable"),
        pytest.param(["!ssh://git@a:x/y"], "ssh://git@a:x/y", False, id="diff2-negated-unparseable-denies-identical"),
        pytest.param(["*"], "ssh://git@a:x/y", False, id="diff2-star-does-not-permit-unparseable"),
    ],
)
def test_source_decision_table(repos: list[str] | None, url: str, allowed: bool) -> None:
    assert bool(project(repos).check_source(url)) is allowed


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://anyone@github.com/evil/x", id="user"),
        pytest.param("https://anyone:pw@github.com/evil/x", id="user-password"),
        pytest.param(" HTTPS://anyone@GitHub.com/Evil/x.git ", id="case-and-space"),
    ],
)
def test_negation_cannot_be_dodged_with_userinfo_stricter_than_argo(url: str) -> None:
    decision = project(["*", "!https://github.com/evil/*"]).check_source(url)
    assert not decision
    assert decision.violations[0].code == Code.SOURCE_DENIED


def test_secret_in_a_pattern_is_never_shown() -> None:
    decision = project(["*", "!https://user:s3cr3t-TOKEN@github.com/evil/*"]).check_source(
        "https://user:s3cr3t-TOKEN@github.com/evil/x")
    assert not decision
    assert "s3cr3t-TOKEN" not in str(decision.to_dict())


def test_allow_names_the_matching_entry() -> None:
    decision = project(["https://a.example/*", "https://github.com/org/*"]).check_source("https://github.com/org/x")
    assert decision.allowed
    assert decision.rule == "spec.sourceRepos[1] https://github.com/org/*"
    assert not decision.violations


def test_allow_by_negation_says_so() -> None:
    decision = project(["!https://github.com/evil/*"]).check_source("https://gitlab.com/x/y")
    assert decision.rule == "spec.sourceRepos[0] !https://github.com/evil/* (a negation allows every repository " \
                            "it does not match)"


def test_positive_entry_preferred_over_negation_as_allowing_rule() -> None:
    decision = project(["!https://github.com/evil/*", "https://gitlab.com/**"]).check_source("https://gitlab.com/x")
    assert decision.rule == "spec.sourceRepos[1] https://gitlab.com/**"


def test_negation_denial_names_the_entry() -> None:
    decision = project(["*", "!https://github.com/evil/*"]).check_source("https://github.com/evil/x")
    assert not decision
    (violation,) = decision.violations
    assert violation.code == Code.SOURCE_DENIED
    assert violation.rule == "spec.sourceRepos[1] !https://github.com/evil/*"
    assert violation.field == "spec.source.repoURL"
    assert "spec.sourceRepos[1]" in violation.message and "'p'" in violation.message


def test_not_permitted_violation() -> None:
    decision = project(["https://github.com/org/*"]).check_source("https://github.com/other/x", field="spec.sources[1]")
    (violation,) = decision.violations
    assert violation.code == Code.SOURCE_NOT_PERMITTED
    assert violation.field == "spec.sources[1]"
    assert violation.rule == "spec.sourceRepos"
    assert "no entry of spec.sourceRepos matches" in violation.message


@pytest.mark.parametrize(
    ("repos", "fragment"),
    [
        pytest.param(None, "lists no spec.sourceRepos", id="absent"),
        pytest.param(["https://a/*"], "no entry of spec.sourceRepos matches", id="no-match"),
    ],
)
def test_not_permitted_reasons(repos: list[str] | None, fragment: str) -> None:
    assert fragment in project(repos).check_source("https://b/x").reason


def test_unparseable_url_reason() -> None:
    reason = project(["*"]).check_source("ssh://git@h:bad/x").reason
    assert "cannot be parsed" in reason


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://robot:s3cr3t-TOKEN@github.com/other/x", id="password"),
        pytest.param("https://s3cr3t-TOKEN@github.com/other/x", id="token-as-user"),
    ],
)
def test_credentials_in_urls_are_never_shown(url: str) -> None:
    for repos in (["https://github.com/org/*"], ["*", "!https://github.com/other/*"]):
        decision = project(repos).check_source(url)
        assert not decision
        text = str(decision.to_dict())
        assert "s3cr3t-TOKEN" not in text
        assert "***@github.com" in text
