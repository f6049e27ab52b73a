"""The pattern dialects of Argo CD's policy layer, compiled once and cached.

``shared/reference/argocd-policy-semantics.md`` §0 names five dialects; mixing them up is the largest source
of incompatibility, so each has one function here and callers pick by name:

=======  ==========================================  =============================================
G        :func:`glob_match`                           destinations, windows, RBAC glob mode, SA rules
G/       :func:`repo_glob_match`                      ``sourceRepos`` (``*`` stops at ``/``, ``**`` crosses)
FP       :func:`path_match`                           resource white/blacklists (Go ``filepath.Match``)
RE2      :func:`regex_fullmatch` / :func:`regex_search`  RBAC regex mode (anchored: difference 6), sourceNamespaces
=======  ==========================================  =============================================

A pattern that does not compile never matches (Argo CD logs and moves on; we log once per pattern).
Regexes run on RE2 (``google-re2``; the only importer of ``re2``): linear time, so a policy author cannot
write a catastrophically backtracking pattern (security-cases RBAC-05).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import re2

__all__ = [
    "compile_glob",
    "compile_regex",
    "glob_match",
    "is_valid_glob",
    "is_valid_path_pattern",
    "path_match",
    "regex_fullmatch",
    "regex_search",
    "repo_glob_match",
]

log = logging.getLogger(__name__)

Matcher = Callable[[str], bool]

_CACHE_SIZE = 16_384  # distinct patterns kept compiled; Argo CD keeps 10,000


def _never(_: str) -> bool:
    return False


def _always(_: str) -> bool:
    return True


class _BadPattern(ValueError):
    pass


def _glob_to_regex(pattern: str, separator: str | None) -> str:
    """Translate gobwas glob syntax to a Python regex body (anchoring is added by the caller)."""
    any_run = ".*" if separator is None else f"[^{re.escape(separator)}]*"
    any_one = "." if separator is None else f"[^{re.escape(separator)}]"
    out: list[str] = []
    depth = 0  # inside {...}
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise _BadPattern("dangling escape")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                out.append(".*")
                i += 2
                while i < n and pattern[i] == "*":
                    i += 1
            else:
                out.append(any_run)
                i += 1
            continue
        if c == "?":
            out.append(any_one)
        elif c == "[":
            end = pattern.find("]", i + 2 if i + 1 < n and pattern[i + 1] == "!" else i + 1)
            if end < 0:
                raise _BadPattern("unclosed [")
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            if not body:
                raise _BadPattern("empty character class")
            cls = "".join("\\" + ch if ch in "\\^[]" else ch for ch in body)
            out.append(f"[{'^' if negate else ''}{cls}]")
            i = end + 1
            continue
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise _BadPattern("unclosed {")
    return "".join(out)


@lru_cache(maxsize=_CACHE_SIZE)
def compile_glob(pattern: str, separator: str | None = None) -> Matcher:
    """A matcher for a gobwas-style glob; ``separator`` makes ``*``/``?`` stop at it (``**`` crosses it).

    Whole-string match, case-sensitive. An invalid pattern yields a matcher that never matches.
    """
    if pattern == "*" and separator is None:
        return _always
    if not any(ch in pattern for ch in "*?[{\\"):
        return pattern.__eq__
    try:
        rx = re.compile(_glob_to_regex(pattern, separator), re.DOTALL)
    except (_BadPattern, re.error) as exc:
        log.warning("glob pattern %r does not compile (%s): it matches nothing", pattern, exc)
        return _never
    return lambda value: rx.fullmatch(value) is not None


def is_valid_glob(pattern: str) -> bool:
    try:
        _glob_to_regex(pattern, None)
    except _BadPattern:
        return False
    return True


def glob_match(pattern: str, value: str) -> bool:
    """Dialect G: gobwas glob without separators (``*`` and ``?`` also match ``/``)."""
    return compile_glob(pattern)(value)


def repo_glob_match(pattern: str, value: str) -> bool:
    """Dialect G/: gobwas glob with ``/`` as separator (``sourceRepos``); the bare ``*`` matches everything."""
    if pattern == "*":
        return True
    return compile_glob(pattern, "/")(value)


@lru_cache(maxsize=_CACHE_SIZE)
def _compile_path_pattern(pattern: str) -> Matcher:
    """Go ``path/filepath.Match``: ``*`` and ``?`` stop at ``/``; ``[...]`` with ``^`` negation; ``\\`` escapes."""
    out: list[str] = []
    i, n = 0, len(pattern)
    try:
        while i < n:
            c = pattern[i]
            if c == "\\":
                if i + 1 >= n:
                    raise _BadPattern("dangling escape")
                out.append(re.escape(pattern[i + 1]))
                i += 2
                continue
            if c == "*":
                out.append("[^/]*")
            elif c == "?":
                out.append("[^/]")
            elif c == "[":
                j = i + 1
                negate = j < n and pattern[j] == "^"
                if negate:
                    j += 1
                end = pattern.find("]", j + 1 if j < n and pattern[j] == "]" else j)
                if end < 0 or end == j:
                    raise _BadPattern("bad character class")
                body = "".join("\\" + ch if ch in "\\^[]" else ch for ch in pattern[j:end])
                out.append(f"[{'^' if negate else ''}{body}]")
                i = end + 1
                continue
            else:
                out.append(re.escape(c))
            i += 1
        rx = re.compile("".join(out), re.DOTALL)
    except (_BadPattern, re.error) as exc:
        log.warning("resource pattern %r does not compile (%s): it matches nothing", pattern, exc)
        return _never
    return lambda value: rx.fullmatch(value) is not None


def path_match(pattern: str, value: str) -> bool:
    """Dialect FP: Go ``filepath.Match`` (resource white/blacklists: group, kind, name)."""
    if pattern == value:
        return True
    return _compile_path_pattern(pattern)(value)


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = 8 << 20  # bytes of compiled program per pattern; refuses pathological patterns


class InvalidRegex(ValueError):
    pass


@lru_cache(maxsize=_CACHE_SIZE)
def compile_regex(pattern: str) -> Any:
    """Compile with RE2; raises :class:`InvalidRegex` (lookarounds and backreferences are not RE2)."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raise InvalidRegex(f"invalid regular expression {pattern!r}: {_decode(exc)}") from None


def _decode(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def regex_fullmatch(pattern: str, value: str) -> bool:
    """Whole-string RE2 match (our RBAC regex mode, difference 6). Invalid pattern: no match."""
    try:
        return compile_regex(pattern).fullmatch(value) is not None
    except InvalidRegex:
        return False


def regex_search(pattern: str, value: str) -> bool:
    """Unanchored RE2 search (Argo CD's ``sourceNamespaces`` ``/regex/`` entries). Invalid pattern: no match."""
    try:
        return compile_regex(pattern).search(value) is not None
    except InvalidRegex:
        return False


def is_valid_path_pattern(pattern: str) -> bool:
    """Does ``pattern`` compile in dialect FP? (:func:`path_match` treats a bad pattern as matching nothing.)"""
    return _compile_path_pattern(pattern) is not _never
