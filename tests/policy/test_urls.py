"""Repository URL normalisation (reference §1.2) and matching, including deliberate difference 2.

Covers: every example of §1.2, the scp-like → ssh rewrite, one ``.git`` stripped, Go ``net/url`` parse
failures (bad port, missing scheme, colon in the first segment, bad escapes, bad host characters, control
characters), path re-escaping, user-info escaping, and that unparseable URLs match only themselves.
"""

from __future__ import annotations

import pytest

from policy import urls
from policy.gates import redact_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("https://GitHub.com/Argoproj/Test.git", "https://github.com/argoproj/test", id="lower-and-git"),
        pytest.param("git@github.com:argoproj/test.git", "git@github.com/argoproj/test", id="scp-like"),
        pytest.param("ssh://git@github.com/argoproj/test.git", "git@github.com/argoproj/test", id="ssh-scheme"),
        pytest.param("https://github.com/argoproj/*.git", "https://github.com/argoproj/*", id="git-in-pattern"),
        pytest.param("https://host/x.git/", "https://host/x.git/", id="git-before-slash-kept"),
        pytest.param("https://host/x.git.git", "https://host/x.git", id="only-one-git-stripped"),
        pytest.param("  https://host/x  ", "https://host/x", id="whitespace-trimmed"),
        pytest.param("*", "*", id="star"),
        pytest.param("https://github.com/org/**", "https://github.com/org/**", id="super-star"),
        pytest.param("https://x.com/a b", "https://x.com/a%20b", id="space-escaped"),
        pytest.param("https://github.com/org/{a,b}", "https://github.com/org/%7Ba,b%7D", id="brace-in-path-escaped"),
        pytest.param("https://github.com/org/[ab]", "https://github.com/org/[ab]", id="class-in-path-kept"),
        pytest.param("https://h.com:443/x", "https://h.com:443/x", id="numeric-port"),
        pytest.param("https://h.com:/x", "https://h.com:/x", id="empty-port"),
        pytest.param("file:///tmp/repo", "file:///tmp/repo", id="file-url"),
        pytest.param("/tmp/repo", "/tmp/repo", id="plain-path"),
        pytest.param("https://user:pa@ss@h.com/x", "https://user:pa%40ss@h.com/x", id="userinfo-at-escaped"),
        pytest.param("https://github.com/org/repo?x#frag", "https://github.com/org/repo?x#frag", id="query-fragment"),
        pytest.param("git@github.com:org/*", "git@github.com/org/*", id="scp-like-pattern"),
        pytest.param("https://h.com/%41b", "https://h.com/%41b", id="valid-escape-kept"),
        pytest.param("https:opaque", "https:opaque", id="opaque"),
        pytest.param("https:/x", "https:/x", id="omit-host"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert urls.normalize_repo_url(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("ssh://git@GITHUB.com:argoproj/test", id="non-numeric-port"),
        pytest.param("https://{a,b}.com/x", id="brace-in-host"),
        pytest.param(":foo", id="missing-scheme"),
        pytest.param("1abc:foo", id="colon-in-first-segment"),
        pytest.param("https://h.com/%zz", id="bad-escape"),
        pytest.param("https://h.com/x\x01", id="control-character"),
        pytest.param("https://[::1/x", id="unclosed-ipv6"),
        pytest.param("https://us^er@h.com/x", id="bad-userinfo"),
        pytest.param("https://h%41.com/x", id="escaped-ascii-in-host"),
    ],
)
def test_unparseable_urls_normalise_to_none(raw: str) -> None:
    assert urls.normalize_repo_url(raw) is None


@pytest.mark.parametrize(
    ("pattern", "url", "expected"),
    [
        pytest.param("https://github.com/org/*", "https://github.com/org/repo", True, id="star-one-segment"),
        pytest.param("https://github.com/org/*", "https://github.com/org/sub/repo", False, id="star-stops-at-slash"),
        pytest.param("https://github.com/org/**", "https://github.com/org/sub/repo", True, id="super-star-crosses"),
        pytest.param("*", "https://anything/at/all", True, id="bare-star"),
        pytest.param("git@github.com:org/*", "ssh://git@github.com/org/x.git", True, id="scp-matches-ssh"),
        pytest.param("https://GITHUB.com/Org/Repo", "https://github.com/org/repo.git", True, id="case-insensitive"),
        # difference 2: Argo CD normalises both to "" and lets them match each other
        pytest.param("ssh://git@GITHUB.com:argoproj/test", "ssh://git@github.com:argoproj/test", False,
                     id="diff2-two-unparseable-urls-differ"),
        pytest.param("ssh://git@host:bad/x", "ssh://git@host:bad/x", True, id="diff2-identical-unparseable"),
        pytest.param("*", "ssh://git@host:bad/x", False, id="diff2-star-does-not-match-unparseable"),
        pytest.param("https://{a,b}.com/x", "https://{a,b}.com/x", True, id="diff2-unparseable-pattern-identical"),
        pytest.param("https://{a,b}.com/x", "https://a.com/x", False, id="diff2-unparseable-pattern-no-glob"),
    ],
)
def test_repo_url_matches(pattern: str, url: str, expected: bool) -> None:
    assert urls.repo_url_matches(pattern, url) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("https://user:s3cret@h.com/x", "https://***@h.com/x", id="user-password"),
        pytest.param("https://ghp_token@h.com/x", "https://***@h.com/x", id="token-as-user"),
        pytest.param("git@github.com:org/x", "git@github.com:org/x", id="scp-user-kept"),
        pytest.param("https://h.com/x@y", "https://h.com/x@y", id="at-in-path-kept"),
    ],
)
def test_redact_url(raw: str, expected: str) -> None:
    assert redact_url(raw) == expected
