"""Semver ``targetRevision`` constraints (``sync.semver``) and their resolution against a real repository.

Covers: exact versions are ref names, not constraints; wildcard, caret, tilde, ranges, OR, hyphen ranges;
pre-releases only for constraints that name one; the highest satisfying tag wins; a constraint nothing
satisfies falls back to a ref of that name (a branch called ``1.x``), as in Argo CD.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sync import semver
from sync.source import RepoCache
from tests.sync.gitfixtures import PLAIN, make_repo

TAGS = [
    "v1.0.0",
    "v1.2.0",
    "v1.2.5",
    "v1.3.0-rc.1",
    "v1.3.0",
    "v2.0.0",
    "v2.1.0-beta",
    "0.2.3",
    "0.2.9",
    "0.3.0",
    "latest",
]


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        pytest.param("1.2.*", "v1.2.5", id="wildcard-patch"),
        pytest.param("1.x", "v1.3.0", id="wildcard-minor"),
        pytest.param("*", "v2.0.0", id="any-release"),
        pytest.param("^1", "v1.3.0", id="caret-major"),
        pytest.param("^0.2.3", "0.2.9", id="caret-zero-major"),
        pytest.param("~1.2", "v1.2.5", id="tilde"),
        pytest.param(">=1.0.0 <2.0.0", "v1.3.0", id="range"),
        pytest.param(">= 1.0, < 1.3", "v1.2.5", id="range-comma-spaces"),
        pytest.param("1.0.0 - 1.2.3", "v1.2.0", id="hyphen"),
        pytest.param("1.x || 2.x", "v2.0.0", id="or"),
        pytest.param(">=1.3.0-0", "v2.1.0-beta", id="prerelease-allowed"),
        pytest.param("3.x", None, id="nothing"),
    ],
)
def test_highest_satisfying(constraint: str, expected: str | None) -> None:
    assert semver.is_constraint(constraint)
    assert semver.highest_satisfying(constraint, TAGS) == expected


@pytest.mark.parametrize("text", ["v1.2.0", "1.2", "main", "refs/heads/main", "HEAD", "deadbeef"])
def test_exact_versions_and_names_are_not_constraints(text: str) -> None:
    assert not semver.is_constraint(text)


def test_prerelease_ordering() -> None:
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0"]
    versions = [semver.parse_version(v) for v in order]
    keys = [v.key() for v in versions if v is not None]
    assert keys == sorted(keys) and len(keys) == len(order)


def test_constraints_resolve_against_repository_tags(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "origin", PLAIN)
    shas = {}
    for tag in ("v1.1.0", "v1.2.0", "v1.2.7", "v2.0.0"):
        repo.write({"VERSION": tag})
        shas[tag] = repo.commit(tag)
        repo.git("tag", "-a", tag, "-m", tag)
    repo.git("branch", "3.x")
    repos = RepoCache(tmp_path / "cache", allow_file_urls=True)
    assert repos.resolve(repo.url, "1.2.*") == shas["v1.2.7"]  # annotated tags are peeled to the commit
    assert repos.resolve(repo.url, "^1") == shas["v1.2.7"]
    assert repos.resolve(repo.url, "v1.2.0") == shas["v1.2.0"]  # an exact version is the tag name
    assert repos.resolve(repo.url, "3.x") == repo.git("rev-parse", "3.x")  # no tag: the branch of that name
    assert repos.git_processes == 1
