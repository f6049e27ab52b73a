"""Project roles: their model, their validation, and the project's runtime RBAC policy text (reference §2.9, §3.1).

:class:`policy.project.AppProject` reads ``spec.roles`` through :func:`read_roles`; :mod:`policy.rbac` and
:mod:`policy.tokens` use :class:`Role` and :func:`runtime_policy_csv`.

Every string that ends up in a Casbin policy line is validated here so that it can never change what a
line means: the project name (a DNS-1123 subdomain, checked by the project), role names (Argo CD's regex),
group names and the fields of each role policy. Beyond Argo CD, we also refuse:

* group names holding ``[ ] ( )`` (pycasbin's own line parser nests on them and would swallow commas), any
  control, format (bidi) or line-separator character, or a ``"`` that is not one wrapping pair;
* policy fields holding whitespace, quotes, brackets or control characters;
* actions that merely *contain* ``action/``, ``update/`` or ``delete/`` (Argo CD accepts ``get/update/x``,
  reference §6 item 60): the prefix must lead.

Policies are whitespace-normalised (``p,proj:a:b , …`` → ``p, proj:a:b, …``) before validation; the model
keeps what was written so that ``to_dict`` round-trips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from policy import patterns
from policy.fields import Reader, has_unsafe_chars

__all__ = [
    "ROLE_NAME",
    "JWTToken",
    "Role",
    "normalize_policy",
    "read_roles",
    "read_tokens",
    "runtime_policy_csv",
    "runtime_policy_lines",
    "validate_group_name",
    "validate_policy",
    "validate_role_name",
]

#: Argo CD ``validateRoleName``
ROLE_NAME = re.compile(r"[a-zA-Z0-9]([-_a-zA-Z0-9]*[a-zA-Z0-9])?")
#: resources a project role may grant (reference §2.9)
_RESOURCES = ("applications", "applicationsets", "repositories", "clusters", "logs", "exec")
_ACTIONS = frozenset({"get", "create", "update", "delete", "sync", "override", "rollback", "*"})
_PATH_ACTION_PREFIXES = ("action/", "update/", "delete/")
_SEG = r"[*A-Za-z0-9_.-]+"
_POLICY_FIELD_FORBIDDEN = frozenset(" \t\"'[]()#")
_GROUP_FORBIDDEN = frozenset("\"[]()")
_ROLE_KEYS = ("name", "description", "policies", "jwtTokens", "groups")
_TOKEN_KEYS = ("iat", "exp", "id")


@dataclass(frozen=True, slots=True)
class JWTToken:
    """A record of an issued project token (``{iat, exp?, id?}``); the token itself is never stored."""

    iat: int
    exp: int | None = None
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"iat": self.iat}
        if self.exp is not None:
            out["exp"] = self.exp
        if self.id is not None:
            out["id"] = self.id
        return out


@dataclass(frozen=True, slots=True)
class Role:
    """A project role, the RBAC subject ``proj:<project>:<name>``.

    ``policies`` are kept as written; :attr:`normalized_policies` is what reaches the RBAC engine.
    ``explicit`` names the list keys that were written as empty lists, so ``to_dict`` keeps ``[]`` apart
    from an absent key.
    """

    name: str
    description: str | None = None
    policies: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    jwt_tokens: tuple[JWTToken, ...] = ()
    explicit: frozenset[str] = field(default=frozenset())

    @property
    def normalized_policies(self) -> tuple[str, ...]:
        return tuple(normalize_policy(p) for p in self.policies)

    def subject(self, project: str) -> str:
        return f"proj:{project}:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            out["description"] = self.description
        lists: tuple[tuple[str, list[Any]], ...] = (
            ("policies", list(self.policies)),
            ("jwtTokens", [t.to_dict() for t in self.jwt_tokens]),
            ("groups", list(self.groups)),
        )
        for key, values in lists:
            if values or key in self.explicit:
                out[key] = values
        return out


def normalize_policy(policy: str) -> str:
    """Argo CD ``normalizePolicy``: fields separated by exactly ``", "``, spaces around them dropped."""
    return ", ".join(part.strip(" ") for part in policy.split(","))


def validate_role_name(name: str) -> str | None:
    """The reason ``name`` is not a valid role name, or ``None``."""
    if not ROLE_NAME.fullmatch(name):
        return (f"invalid role name {name!r}: must be letters, digits, '-' and '_', starting and ending with "
                "a letter or digit")
    return None


def validate_group_name(group: str) -> str | None:
    """The reason ``group`` cannot be bound to a role, or ``None`` (reference §3.1, plus the extras above)."""
    if group != group.strip():
        return f"group {group!r} has leading or trailing whitespace"
    inner = group
    if len(group) >= 2 and group.startswith('"') and group.endswith('"'):
        inner = group[1:-1]
    elif "," in group:
        return f"group {group!r} contains a comma and must be wrapped in double quotes"
    if not inner.strip():
        return f"group {group!r} is empty"
    if inner != inner.strip():
        return f"group {group!r} has whitespace inside its quotes at the start or end"
    if has_unsafe_chars(inner):
        return f"group {group!r} contains a control, tab, newline or invisible formatting character"
    bad = sorted(set(inner) & _GROUP_FORBIDDEN)
    if bad:
        return f"group {group!r} contains {' '.join(bad)}, which are not allowed in a group name"
    return None


def _valid_action(action: str) -> bool:
    if action in _ACTIONS:
        return True
    return any(action.startswith(prefix) and len(action) > len(prefix) for prefix in _PATH_ACTION_PREFIXES)


def validate_policy(project: str, role: str, policy: str) -> str | None:
    """The reason a role policy is invalid (reference §2.9, RBAC-03), or ``None``. Checks the normalised form."""
    if has_unsafe_chars(policy):
        return "policy contains a control, newline or invisible formatting character"
    parts = [part.strip(" ") for part in policy.split(",")]
    if len(parts) != 6:
        return (f"policy must have 6 comma-separated fields "
                f"(p, proj:{project}:{role}, <resource>, <action>, <object>, allow|deny); got {len(parts)}")
    kind, subject, resource, action, obj, effect = parts
    for part in parts:
        bad = sorted(set(part) & _POLICY_FIELD_FORBIDDEN)
        if bad:
            return f"policy field {part!r} contains {' '.join(repr(c) for c in bad)}"
    if kind != "p":
        return f"policy must start with 'p', not {kind!r}"
    if subject != f"proj:{project}:{role}":
        return f"policy subject must be exactly 'proj:{project}:{role}' (the role itself), not {subject!r}"
    if resource not in _RESOURCES:
        return f"resource {resource!r} is not allowed in a project role (allowed: {', '.join(_RESOURCES)})"
    for what, value in (("action", action), ("object", obj)):
        if not patterns.is_valid_glob(value):
            return f"{what} {value!r} is not a valid glob pattern (check [ ] and {{ }} pairs and \\ escapes)"
    if not _valid_action(action):
        return (f"invalid action {action!r} (allowed: {', '.join(sorted(_ACTIONS))}, or action/…, update/…, "
                "delete/…)")
    if not re.fullmatch(re.escape(project) + rf"(/{_SEG})?/{_SEG}", obj):
        return (f"object {obj!r} must name this project: {project}/<app> or {project}/<namespace>/<app> "
                "(letters, digits, '*', '_', '.', '-')")
    if effect not in ("allow", "deny"):
        return f"effect must be exactly 'allow' or 'deny', not {effect!r}"
    return None


def read_tokens(reader: Reader, entries: list[tuple[str, Any]]) -> tuple[JWTToken, ...]:
    tokens: list[JWTToken] = []
    for path, item in entries:
        data = reader.mapping(item, path, _TOKEN_KEYS)
        if "iat" not in data:
            raise reader.error(f"{path}.iat", "is required")
        iat = reader.integer(data["iat"], f"{path}.iat")
        exp = reader.integer(data["exp"], f"{path}.exp") if "exp" in data else None
        token_id = reader.opt_string(data, "id", path, max_len=256)
        if token_id is not None and has_unsafe_chars(token_id):
            raise reader.error(f"{path}.id", "contains a control or invisible formatting character")
        tokens.append(JWTToken(iat, exp, token_id))
    return tuple(tokens)


def _read_role(reader: Reader, project: str, path: str, item: Any) -> Role:
    data = reader.mapping(item, path, _ROLE_KEYS)
    if "name" not in data:
        raise reader.error(f"{path}.name", "is required")
    name = reader.string(data["name"], f"{path}.name")
    if (why := validate_role_name(name)) is not None:
        raise reader.error(f"{path}.name", why)
    explicit = frozenset(k for k in ("policies", "groups", "jwtTokens") if k in data and data[k] == [])
    policies = reader.strings(data, "policies", path) or ()
    seen: set[str] = set()
    for i, policy in enumerate(policies):
        where = f"{path}.policies[{i}]"
        if (why := validate_policy(project, name, policy)) is not None:
            raise reader.error(where, why)
        normalized = normalize_policy(policy)
        if normalized in seen:
            raise reader.error(where, f"duplicate policy {normalized!r} for role {name!r}")
        seen.add(normalized)
    groups = reader.strings(data, "groups", path) or ()
    for i, group in enumerate(groups):
        if (why := validate_group_name(group)) is not None:
            raise reader.error(f"{path}.groups[{i}]", why)
        if group in groups[:i]:
            raise reader.error(f"{path}.groups[{i}]", f"duplicate group {group!r} for role {name!r}")
    token_entries = reader.items(data, "jwtTokens", path)
    tokens = read_tokens(reader, token_entries) if token_entries is not None else ()
    description = reader.opt_string(data, "description", path)
    return Role(name, description, policies, groups, tokens, explicit)


def read_roles(reader: Reader, project: str, entries: list[tuple[str, Any]]) -> tuple[Role, ...]:
    """``spec.roles`` of project ``project``; raises InvalidProject naming the offending entry."""
    roles: list[Role] = []
    for path, item in entries:
        role = _read_role(reader, project, path, item)
        if any(r.name == role.name for r in roles):
            raise reader.error(f"{path}.name", f"duplicate role {role.name!r}")
        roles.append(role)
    return tuple(roles)


def runtime_policy_lines(project: str, roles: tuple[Role, ...]) -> list[tuple[str, str]]:
    """``(line, field path)`` for every line of :func:`runtime_policy_csv`, paths relative to ``spec``."""
    lines: list[tuple[str, str]] = []
    for i, role in enumerate(roles):
        subject = role.subject(project)
        lines.append((f"p, {subject}, projects, get, {project}, allow", f"roles[{i}].name"))
        lines.extend((p, f"roles[{i}].policies[{j}]") for j, p in enumerate(role.normalized_policies))
        lines.extend((f"g, {group}, {subject}", f"roles[{i}].groups[{j}]") for j, group in enumerate(role.groups))
    return lines


def runtime_policy_csv(project: str, roles: tuple[Role, ...]) -> str:
    """Argo CD ``ProjectPoliciesString``: per role the implicit ``projects, get`` row, its policies
    (normalised), then one ``g`` line per group. Lines joined by ``\\n``; no trailing newline."""
    return "\n".join(line for line, _ in runtime_policy_lines(project, roles))

