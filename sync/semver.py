"""Semantic-version constraints for ``targetRevision`` (``argocd-sync-semantics.md`` §1.2 steps 3-4).

Who calls this: :meth:`sync.source.RepoCache.resolve` only. Argo CD (through Masterminds semver) treats a
revision that is an exact version (``v1.2.0``, ``1.2``) as a plain ref name, and one that is a *constraint*
(``1.2.*``, ``^1``, ``~1.4``, ``>=1.0.0 <2.0.0``, ``1.x || 2.x``, ``*``) as "the highest tag that satisfies
it". Pre-release tags only match a constraint that itself names a pre-release. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Version", "highest_satisfying", "is_constraint", "parse_version"]

_VERSION = re.compile(
    r"^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_PART = r"(?:0|[1-9]\d*|[xX*])"
_COMPARATOR = re.compile(
    rf"^(=|!=|>=|=>|<=|=<|>|<|~>|~|\^)?\s*v?({_PART})(?:\.({_PART}))?(?:\.({_PART}))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)
_HYPHEN = re.compile(r"^\s*(\S+)\s+-\s+(\S+)\s*$")


@dataclass(frozen=True, order=False)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # a release sorts after its pre-releases; numeric identifiers sort before alphanumeric ones
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)


def parse_version(text: str) -> Version | None:
    """A version in Masterminds' loose form (``v`` prefix, missing minor/patch allowed), else None."""
    match = _VERSION.match(text.strip())
    if not match:
        return None
    major, minor, patch, pre = match.groups()
    return Version(int(major), int(minor or 0), int(patch or 0), tuple(pre.split(".")) if pre else ())


# one comparator becomes (allows_prerelease, [(op, version)...]) with op in >=, >, <, <=, =, !=
_Range = tuple[bool, list[tuple[str, Version]]]


def _comparator(text: str) -> _Range:
    match = _COMPARATOR.match(text.strip())
    if not match:
        raise ValueError(text)
    op, *parts, pre = match.groups()
    op = {"=>": ">=", "=<": "<=", "~>": "~", None: ""}.get(op, op)
    given = [p for p in parts if p is not None]
    wild = next((i for i, p in enumerate(given) if p in ("x", "X", "*")), None)
    numbers = [int(p) for p in given[: wild if wild is not None else len(given)]]
    precision = len(numbers)  # how many parts are fixed
    major, minor, patch = [*numbers, 0, 0, 0][:3]
    low = Version(major, minor, patch, tuple(pre.split(".")) if pre else ())
    has_pre = bool(pre)

    def bump(level: int) -> Version:
        if level <= 0:
            return Version(major + 1, 0, 0, ("0",))
        if level == 1:
            return Version(major, minor + 1, 0, ("0",))
        return Version(major, minor, patch + 1, ("0",))

    if precision == 0:
        return has_pre, ([("<", Version(0, 0, 0, ("0",)))] if op in ("<", "!=") else [(">=", Version(0, 0, 0))])
    dirty = precision < 3
    if op in ("", "="):
        return has_pre, ([(">=", low), ("<", bump(precision - 1))] if dirty else [("=", low)])
    if op == "!=":
        return has_pre, [("!=", low)]  # a wildcard != is rare; treated as the exact version
    if op == "~":
        return has_pre, [(">=", low), ("<", bump(1 if precision >= 2 else 0))]
    if op == "^":
        level = 0 if major > 0 or precision == 1 else (1 if minor > 0 or precision == 2 else 2)
        return has_pre, [(">=", low), ("<", bump(level))]
    if op == ">":
        return has_pre, [(">=", bump(precision - 1))] if dirty else [(">", low)]
    if op == "<=":
        return has_pre, [("<", bump(precision - 1))] if dirty else [("<=", low)]
    return has_pre, [(op, low)]  # >= and <


def _parse(text: str) -> list[list[_Range]]:
    groups = []
    for alternative in text.split("||"):
        hyphen = _HYPHEN.match(alternative)
        if hyphen:
            terms = [f">={hyphen.group(1)}", f"<={hyphen.group(2)}"]
        else:
            terms = re.sub(r"(>=|<=|=>|=<|!=|~>|[=<>~^])\s+", r"\1", alternative).replace(",", " ").split()
        if not terms:
            raise ValueError(text)
        groups.append([_comparator(term) for term in terms])
    return groups


def is_constraint(text: str) -> bool:
    """True for a constraint that is not simply an exact version (those are ref names, Argo CD step 3)."""
    if parse_version(text) is not None:
        return False
    try:
        _parse(text)
    except ValueError:
        return False
    return True


def _check(op: str, version: Version, bound: Version) -> bool:
    a, b = version.key(), bound.key()
    return {">=": a >= b, ">": a > b, "<": a < b, "<=": a <= b, "=": a == b, "!=": a != b}[op]


def _satisfies(version: Version, groups: list[list[_Range]]) -> bool:
    for group in groups:
        if version.pre and not any(has_pre for has_pre, _ in group):
            continue
        if all(_check(op, version, bound) for _, checks in group for op, bound in checks):
            return True
    return False


def highest_satisfying(constraint: str, tags: list[str], *, prefix: str = "") -> str | None:
    """The tag (name as given) with the highest version satisfying ``constraint``; None if none does."""
    groups = _parse(constraint)
    best: tuple[Version, str] | None = None
    for tag in tags:
        if not tag.startswith(prefix):
            continue
        version = parse_version(tag[len(prefix):])
        if version is None or not _satisfies(version, groups):
            continue
        if best is None or version.key() > best[0].key():
            best = (version, tag)
    return best[1] if best else None
