"""Parsing and validating RBAC policy text: ``policy.csv``, ``argocd-rbac-cm`` data and project role policies.

Pure functions, no Casbin. :mod:`policy.rbac` calls them before anything is installed, so a bad policy is
rejected whole (:class:`~policy.errors.InvalidPolicy` naming the source and the 1-based line) and the last
good policy stays live. ``api.cli.admin`` uses the vocabulary and the resource aliases for ``admin rbac``.

Format (Argo CD ``util/rbac/rbac.go`` ``loadPolicyLine``; reference §2.3): each line is one CSV record,
leading spaces of a field trimmed, quotes allow commas inside a field, blank lines and ``#`` lines ignored.

* ``p, <subject>, <resource>, <action>, <object>, <effect>``: exactly 6 fields; effect exactly ``allow`` or
  ``deny`` (security case RBAC-01: ``DENY``, ``Allow`` and ``" deny "`` are errors, not inert rows).
* ``g, <member>, <role>``: exactly 3 fields, neither empty.
* Stricter than Argo CD, because each of these makes a row silently inert there: a field with trailing
  whitespace, a control character in a field, an unknown resource or action (Argo's vocabulary plus
  ``audit``), or a pattern that does not compile in the match mode (Argo logs and never matches).
* Resource and action may be patterns: a pattern must match at least one known resource; an action whose
  leading segment is literal must be known for the resource, and only ``update``/``delete``/``action``
  take a ``/path``. Subjects are never patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from policy import patterns
from policy.errors import InvalidPolicy

__all__ = [
    "ACTIONS",
    "GLOB",
    "MATCH_MODES",
    "PATH_ACTIONS",
    "PROJECT_SCOPED",
    "REGEX",
    "RESOURCE_ALIASES",
    "Grouping",
    "ParsedPolicy",
    "PolicyRule",
    "RbacConfig",
    "configmap_config",
    "format_fields",
    "normalize_match_mode",
    "parse_policy",
    "parse_project_policy",
    "project_from_request",
    "project_token_project",
    "regex_builtin",
    "validate_request",
]

GLOB = "glob"
REGEX = "regex"
MATCH_MODES = (GLOB, REGEX)

#: Argo CD's resources and the actions its server enforces (reference §2.5), plus our ``audit`` resource.
ACTIONS: Mapping[str, frozenset[str]] = {
    "applications": frozenset({"get", "create", "update", "delete", "sync", "rollback", "override", "action"}),
    "applicationsets": frozenset({"get", "create", "update", "delete"}),
    "logs": frozenset({"get"}),
    "exec": frozenset({"create"}),
    "clusters": frozenset({"get", "create", "update", "delete"}),
    "repositories": frozenset({"get", "create", "update", "delete"}),
    "write-repositories": frozenset({"get", "create", "update", "delete"}),
    "projects": frozenset({"get", "create", "update", "delete"}),
    "accounts": frozenset({"get", "create", "update", "delete"}),
    "certificates": frozenset({"get", "create", "update", "delete"}),
    "gpgkeys": frozenset({"get", "create", "delete"}),
    "extensions": frozenset({"invoke"}),
    "audit": frozenset({"get", "export", "verify"}),
}
#: actions that take a ``/<group>/<kind>/...`` suffix (applications only)
PATH_ACTIONS = frozenset({"update", "delete", "action"})
#: resources whose object starts with ``<project>/`` (reference §2.7 ``project_from_request``)
PROJECT_SCOPED = frozenset({"applications", "applicationsets", "repositories", "clusters", "logs", "exec"})
#: ``admin rbac can`` resource aliases (reference §5.1 step 2); anything else passes through unchanged
_ALIASES = {
    "accounts": ("account",), "applications": ("app", "apps", "application"), "clusters": ("cluster",),
    "certificates": ("cert", "certs", "certificate"), "extensions": ("extension",), "gpgkeys": ("gpgkey", "key"),
    "logs": ("log",), "projects": ("proj", "projs", "project"), "repositories": ("repo", "repos", "repository"),
}
RESOURCE_ALIASES: Mapping[str, str] = {alias: res for res, names in _ALIASES.items() for alias in names}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_PROJECT_TOKEN = re.compile(r"proj:([^:]*):([^:]*)")
#: a project-role object: ``<project>[/<seg>]/<seg>`` (Argo ``isValidPolicyObject``)
_SEG = r"[*A-Za-z0-9_.-]+"
_PROJECT_ACTIONS = frozenset({"get", "create", "update", "delete", "sync", "override", "rollback", "*"})
_MAX_FIELD = 4096  # characters; a policy field longer than this is a mistake, not a name


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One ``p`` line. ``order`` is its position in the whole policy (deterministic explanations)."""

    subject: str
    resource: str
    action: str
    obj: str
    effect: str
    source: str
    line: int
    order: int = 0
    #: the rendered line with its origin (computed once: explanations are on the hot path)
    label: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.label:
            text = f"{format_fields(('p', *self.fields))} ({self.source} line {self.line})"
            object.__setattr__(self, "label", text)

    @property
    def deny(self) -> bool:
        return self.effect == "deny"

    @property
    def fields(self) -> tuple[str, str, str, str, str]:
        return (self.subject, self.resource, self.action, self.obj, self.effect)

    def describe(self) -> str:
        """``p, role:dev, applications, sync, team-a/*, allow (policy.csv line 3)``."""
        return self.label


@dataclass(frozen=True, slots=True)
class Grouping:
    """One ``g`` line: ``member`` inherits every row of ``role``."""

    member: str
    role: str
    source: str
    line: int

    def describe(self) -> str:
        return f"{format_fields(('g', self.member, self.role))} ({self.source} line {self.line})"


@dataclass(frozen=True, slots=True)
class ParsedPolicy:
    rules: tuple[PolicyRule, ...]
    groupings: tuple[Grouping, ...]

    def __add__(self, other: ParsedPolicy) -> ParsedPolicy:
        return ParsedPolicy(self.rules + other.rules, self.groupings + other.groupings)


@dataclass(frozen=True, slots=True)
class RbacConfig:
    """What an ``argocd-rbac-cm`` contributes: CSV segments (source name, text), default role, match mode."""

    segments: tuple[tuple[str, str], ...]
    default_role: str | None
    match_mode: str


def format_fields(fields: Iterable[str]) -> str:
    """Join fields as a policy line, quoting those that need it so the line parses back to the same fields."""
    out = []
    for f in fields:
        if any(ch in f for ch in ',"') or f != f.lstrip():
            f = '"' + f.replace('"', '""') + '"'
        out.append(f)
    return ", ".join(out)


def normalize_match_mode(mode: str | None, *, source: str = "policy.matchMode") -> str:
    """``glob`` (also for empty/absent) or ``regex``. Argo CD falls back to glob for any other value; we
    reject it, because a typo would silently change every pattern's meaning."""
    if mode is None or mode == "" or mode == GLOB:
        return GLOB
    if mode == REGEX:
        return REGEX
    raise InvalidPolicy(f"unknown match mode {mode!r} (expected 'glob' or 'regex')", source=source)


def _split_record(line: str) -> list[str]:
    """One CSV record as Go's ``encoding/csv`` reads it with ``TrimLeadingSpace`` (no lazy quotes)."""
    fields: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i < n and line[i] == '"':
            i += 1
            parts: list[str] = []
            while True:
                j = line.find('"', i)
                if j < 0:
                    raise ValueError("unterminated quoted field")
                parts.append(line[i:j])
                i = j + 1
                if i < n and line[i] == '"':
                    parts.append('"')
                    i += 1
                    continue
                break
            if i < n and line[i] != ",":
                raise ValueError('extraneous characters after a closing quote (expected ",")')
            fields.append("".join(parts))
        else:
            j = line.find(",", i)
            j = n if j < 0 else j
            field = line[i:j]
            if '"' in field:
                raise ValueError('bare " in an unquoted field (quote the whole field and double the quote)')
            fields.append(field)
            i = j
        if i >= n:
            return fields
        i += 1  # the comma


def _check_field(value: str, what: str) -> None:
    if _CONTROL.search(value):
        raise ValueError(f"{what} contains a control or line-break character")
    if value != value.rstrip():
        raise ValueError(f"{what} {value!r} has trailing whitespace (it would never match)")
    if len(value) > _MAX_FIELD:
        raise ValueError(f"{what} is longer than {_MAX_FIELD} characters")


@lru_cache(maxsize=4096)
def _valid_glob(pattern: str) -> bool:
    return patterns.is_valid_glob(pattern)


def _pattern_matcher(pattern: str, mode: str, what: str) -> patterns.Matcher:
    if mode == REGEX:
        try:
            rx = patterns.compile_regex(pattern)
        except patterns.InvalidRegex as exc:
            raise ValueError(f"{what}: {exc}") from None
        return lambda value: rx.fullmatch(value) is not None
    if not _valid_glob(pattern):
        raise ValueError(f"{what} {pattern!r} is not a valid glob pattern")
    return patterns.compile_glob(pattern)


def _is_glob_literal(pattern: str) -> bool:
    return not any(ch in pattern for ch in "*?[{\\")


def _check_resource_action(resource: str, action: str, mode: str) -> None:
    res_match = _pattern_matcher(resource, mode, "resource")
    resources = [r for r in ACTIONS if res_match(r)]
    if not resources:
        known = ", ".join(sorted(ACTIONS))
        raise ValueError(f"unknown resource {resource!r} (known: {known})")
    _pattern_matcher(action, mode, "action")
    head, sep, _ = action.partition("/")
    literal_head = _is_glob_literal(head) if mode == GLOB else bool(re.fullmatch(r"[A-Za-z0-9_-]+", head))
    if not literal_head:
        return  # a wildcard head (``*``, ``*/*``...): any action of any resource may match it
    if not any(head in ACTIONS[r] for r in resources):
        raise ValueError(f"unknown action {action!r} for resource {resource!r}")
    if sep and (head not in PATH_ACTIONS or "applications" not in resources):
        raise ValueError(f"action {action!r}: only update/, delete/ and action/ on applications take a path")


def _parse_line(raw: str) -> list[str] | None:
    text = raw.strip()
    if not text or text.startswith("#"):
        return None
    try:
        return _split_record(text)
    except ValueError as exc:
        raise ValueError(f"not a valid CSV record: {exc}") from None


def parse_policy(
    text: str, *, source: str = "policy.csv", match_mode: str = GLOB, order_start: int = 0
) -> ParsedPolicy:
    """Parse and validate policy text; raises :class:`InvalidPolicy` naming ``source`` and the line."""
    mode = normalize_match_mode(match_mode, source=source)
    rules: list[PolicyRule] = []
    groupings: list[Grouping] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        try:
            fields = _parse_line(line)
            if fields is None:
                continue
            kind = fields[0]
            if kind == "p":
                if len(fields) != 6:
                    raise ValueError(f"a p line has exactly 6 fields (p, subject, resource, action, object, "
                                     f"effect); this one has {len(fields)}")
                _, subject, resource, action, obj, effect = fields
                for value, what in ((subject, "subject"), (resource, "resource"), (action, "action"),
                                    (obj, "object"), (effect, "effect")):
                    _check_field(value, what)
                if effect not in ("allow", "deny"):
                    raise ValueError(f"effect must be exactly 'allow' or 'deny', not {effect!r}")
                _check_resource_action(resource, action, mode)
                _pattern_matcher(obj, mode, "object")
                rules.append(PolicyRule(subject, resource, action, obj, effect, source, number,
                                        order_start + len(rules)))
            elif kind == "g":
                if len(fields) != 3:
                    raise ValueError(f"a g line has exactly 3 fields (g, member, role); this one has {len(fields)}")
                _, member, role = fields
                for value, what in ((member, "member"), (role, "role")):
                    if not value:
                        raise ValueError(f"g line: {what} is empty")
                    _check_field(value, what)
                groupings.append(Grouping(member, role, source, number))
            else:
                raise ValueError(f"a policy line starts with 'p' or 'g', not {kind[:40]!r}")
        except ValueError as exc:
            raise InvalidPolicy(str(exc), line=number, source=source) from None
    return ParsedPolicy(tuple(rules), tuple(groupings))


def regex_builtin(text: str) -> str:
    """The built-in policy made regex-valid for regex mode (difference 6; Argo CD issue #13127): each
    ``*`` of a resource, action or object becomes ``.*``. Only used on the packaged built-in text."""
    out = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("p,"):
            fields = _split_record(stripped)
            fields[2:5] = [f.replace("*", ".*") for f in fields[2:5]]
            line = format_fields(fields)
        out.append(line)
    return "\n".join(out)


def project_token_project(subject: str) -> str | None:
    """The project of a project-role subject ``proj:<project>:<role>`` (exactly three colon parts), else None."""
    m = _PROJECT_TOKEN.fullmatch(subject)
    return m.group(1) if m else None


def project_from_request(resource: str, obj: str) -> str | None:
    """The project a request's object belongs to (reference §2.7), by name; None for non-project objects."""
    if resource in PROJECT_SCOPED:
        head, sep, _ = obj.partition("/")
        return head if sep else None
    if resource == "projects":
        return obj
    return None


def parse_project_policy(
    project: str, text: str, *, source: str = "", match_mode: str = GLOB, order_start: int = 0
) -> ParsedPolicy:
    """A project's runtime policy (reference §2.9): its roles' ``p`` lines and ``g, <group>, proj:<p>:<r>``.

    Every ``p`` subject and every ``g`` role must be ``proj:<project>:<role>``; ``p`` rows use project-scoped
    resources and objects ``<project>[/<ns>]/<app>`` (security case RBAC-03), except the implicit
    ``projects, get, <project>, allow`` row, which is accepted and also added for every role named.
    """
    src = source or f"project {project} policy"
    parsed = parse_policy(text, source=src, match_mode=match_mode, order_start=order_start)
    obj_rx = re.compile(re.escape(project) + rf"(/{_SEG})?/{_SEG}")
    roles: dict[str, tuple[str, int]] = {}
    for rule in parsed.rules:
        if project_token_project(rule.subject) != project:
            raise InvalidPolicy(f"subject {rule.subject!r} is not a role of project {project!r} "
                                f"(expected proj:{project}:<role>)", line=rule.line, source=src)
        roles.setdefault(rule.subject, (rule.source, rule.line))
        if rule.resource == "projects" and rule.action == "get" and rule.obj == project and not rule.deny:
            continue
        if rule.resource not in PROJECT_SCOPED:
            raise InvalidPolicy(f"resource {rule.resource!r} is not allowed in a project role (allowed: "
                                f"{', '.join(sorted(PROJECT_SCOPED))})", line=rule.line, source=src)
        if not (rule.action in _PROJECT_ACTIONS or rule.action.partition("/")[0] in PATH_ACTIONS):
            raise InvalidPolicy(f"action {rule.action!r} is not allowed in a project role",
                                line=rule.line, source=src)
        if not obj_rx.fullmatch(rule.obj):
            raise InvalidPolicy(f"object {rule.obj!r} must name project {project!r} as <project>/<app> or "
                                f"<project>/<namespace>/<app>", line=rule.line, source=src)
    for g in parsed.groupings:
        if project_token_project(g.role) != project:
            raise InvalidPolicy(f"g line role {g.role!r} is not a role of project {project!r}",
                                line=g.line, source=src)
        roles.setdefault(g.role, (g.source, g.line))
    implicit = tuple(
        PolicyRule(role, "projects", "get", project, "allow", src, line, order_start + len(parsed.rules) + i)
        for i, (role, (_, line)) in enumerate(roles.items())
    )
    return ParsedPolicy(parsed.rules + implicit, parsed.groupings)


def configmap_config(data: Mapping[str, object], *, source: str = "argocd-rbac-cm") -> RbacConfig:
    """``argocd-rbac-cm`` data: ``policy.csv`` then every ``policy.*.csv`` in key order (reference §2.4),
    ``policy.default`` and ``policy.matchMode``. Values must be strings."""
    for key, value in data.items():
        if not isinstance(value, str):
            raise InvalidPolicy(f"data.{key} must be a string, not {type(value).__name__}", source=source)
    keys = ["policy.csv"] if "policy.csv" in data else []
    keys += sorted(k for k in data if k != "policy.csv" and k.startswith("policy.") and k.endswith(".csv"))
    segments = tuple((f"{source} {key}", str(data[key])) for key in keys)
    default = str(data.get("policy.default", "")) or None
    if default is not None:
        try:
            _check_field(default, "policy.default")
        except ValueError as exc:
            raise InvalidPolicy(str(exc), source=source) from None
    mode = normalize_match_mode(str(data.get("policy.matchMode", "")), source=f"{source} policy.matchMode")
    return RbacConfig(segments, default, mode)


def validate_request(resource: str, action: str) -> str | None:
    """``admin rbac can --strict``: why a request's resource/action is not in the vocabulary, or None.
    Only the action's part before the first ``/`` is looked up; a path only for update/delete/action."""
    if resource not in ACTIONS:
        return f"{resource!r} is not a valid resource (known: {', '.join(sorted(ACTIONS))})"
    head, sep, _ = action.partition("/")
    if head not in ACTIONS[resource]:
        return f"{action!r} is not a valid action for {resource}"
    if sep and head not in PATH_ACTIONS:
        return f"{action!r}: only update/, delete/ and action/ take a path"
    return None

