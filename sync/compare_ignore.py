"""Which ``spec.ignoreDifferences`` entries apply to a resource (``argocd-sync-semantics.md`` §1.12, §3.5).

Who calls this: :func:`sync.compare.compare`, once per app (validation) and once per resource (matching). Pure.

Matching follows Argo CD: ``group`` and ``kind`` are globs (``*``, ``?``, ``[...]``; an empty group is the core
group), ``name`` and ``namespace`` match exactly when given and match anything when empty. Each matching entry
becomes a :class:`sync.diff.IgnoreRule` (JSON pointers removed from both sides; fields owned by the listed
``managedFieldsManagers`` are not differences).

``jqPathExpressions`` are evaluated by :mod:`sync.jqpath`, a bounded subset of jq (paths, ``[]``, ``[n]``,
``select(.path == literal)``), which covers what people write for ignoreDifferences without a jq interpreter
or its timeout. An expression outside the subset is an ``InvalidSpecError`` naming the field, and the
comparison stops there (sync and health ``Unknown``): ignoring it silently would show, and let a sync
"repair", differences the user asked to ignore. A JSON pointer that does not start with ``/`` is refused
the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from functools import lru_cache

from sync import jqpath
from sync.application import IgnoreDifference
from sync.compare_targets import INVALID_SPEC_ERROR, Condition
from sync.diff import IgnoreRule
from sync.models import ResourceKey

__all__ = ["jq_paths_for", "rules_for", "validate"]


def validate(entries: Sequence[IgnoreDifference]) -> list[Condition]:
    """An ``InvalidSpecError`` for every entry the comparison cannot honour."""
    out: list[Condition] = []
    for i, entry in enumerate(entries):
        where = f"spec.ignoreDifferences[{i}]"
        for j, text in enumerate(entry.jq_path_expressions):
            try:
                _parsed(text)
            except jqpath.JqSyntaxError as exc:
                out.append(Condition(INVALID_SPEC_ERROR, (
                    f"{where}.jqPathExpressions[{j}]: {text[:100]!r} is outside the jq subset syncwarden "
                    f"evaluates (paths, [], [n], select(.path == literal)): {exc}"
                )))
        for j, pointer in enumerate(entry.json_pointers):
            if not pointer.startswith("/"):
                out.append(Condition(INVALID_SPEC_ERROR, (
                    f"{where}.jsonPointers[{j}]: {pointer!r} is not a JSON pointer (RFC 6901 pointers start with '/')"
                )))
    return out


def _matches(entry: IgnoreDifference, key: ResourceKey) -> bool:
    return (
        fnmatchcase(key.group, entry.group)
        and fnmatchcase(key.kind, entry.kind)
        and (not entry.name or entry.name == key.name)
        and (not entry.namespace or entry.namespace == key.namespace)
    )


def rules_for(entries: Sequence[IgnoreDifference], key: ResourceKey) -> tuple[IgnoreRule, ...]:
    """The ignore rules of every entry that matches ``key``."""
    return tuple(
        IgnoreRule(json_pointers=entry.json_pointers, managed_fields_managers=entry.managed_fields_managers)
        for entry in entries
        if _matches(entry, key)
    )


@lru_cache(maxsize=1024)
def _parsed(text: str) -> jqpath.JqPath:
    return jqpath.parse(text)


def jq_paths_for(entries: Sequence[IgnoreDifference], key: ResourceKey) -> tuple[jqpath.JqPath, ...]:
    """The parsed jq expressions of every entry that matches ``key`` (call :func:`validate` first)."""
    return tuple(_parsed(text) for entry in entries if _matches(entry, key) for text in entry.jq_path_expressions)
