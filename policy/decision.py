"""The one result type of every policy check: :class:`Decision`.

Every gate (source, destination, resource kind, source namespace, sync windows, RBAC) and the combined
``policy.evaluate`` return a ``Decision``. It is truthy when allowed. A denial carries one
:class:`Violation` per broken rule: a stable ``code`` for machines, a ``message`` worded for a person that
names the rule and the field, the ``field`` path of the input that broke it, and the ``rule`` (the project
or policy entry) that decided. An allowed decision names the rule that allowed it in ``rule``.

A deny is a value, never an exception: callers (CLI, API, reconciler) decide what a deny means for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Code", "Decision", "Violation"]


class Code:
    """Stable violation codes. Documented in the README; never renamed, only added to."""

    SOURCE_NOT_PERMITTED = "source.not-permitted"
    SOURCE_DENIED = "source.denied"
    DESTINATION_NOT_PERMITTED = "destination.not-permitted"
    DESTINATION_DENIED = "destination.denied"
    CLUSTER_UNKNOWN = "destination.unknown-cluster"
    NAMESPACE_NOT_PERMITTED = "namespace.not-permitted"
    RESOURCE_NOT_PERMITTED = "resource.not-permitted"
    RESOURCE_DENIED = "resource.denied"
    RESOURCE_UNKNOWN_KIND = "resource.unknown-kind"
    SOURCE_NAMESPACE_NOT_PERMITTED = "source-namespace.not-permitted"
    PROJECT_MISMATCH = "project.mismatch"
    PROJECT_UNKNOWN = "project.unknown"
    WINDOW_BLOCKED = "window.blocked"
    WINDOW_INVALID = "window.invalid"
    RBAC_DENIED = "rbac.denied"
    #: the policy could not be evaluated (bad data, internal error): fail closed
    POLICY_ERROR = "policy.error"


@dataclass(frozen=True, slots=True)
class Violation:
    code: str
    message: str
    field: str = ""
    rule: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "field": self.field, "rule": self.rule}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    violations: tuple[Violation, ...] = ()
    #: the rule that decided: for an allow, the entry that matched; for a deny, the first deciding rule
    rule: str = ""
    #: free-form context for explanations (e.g. which windows were active); JSON-serialisable values only
    details: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.allowed

    @classmethod
    def allow(cls, rule: str = "", **details: Any) -> Decision:
        return cls(True, (), rule, dict(details))

    @classmethod
    def deny(cls, *violations: Violation, **details: Any) -> Decision:
        if not violations:
            raise ValueError("a denial needs at least one violation")
        return cls(False, tuple(violations), violations[0].rule, dict(details))

    @classmethod
    def combine(cls, decisions: Iterable[Decision]) -> Decision:
        """All of them must allow; a denial carries every violation of every part, in order."""
        parts = list(decisions)
        violations = tuple(v for d in parts for v in d.violations)
        details: dict[str, Any] = {}
        for part in parts:
            details.update(part.details)
        if violations:
            return cls(False, violations, violations[0].rule, details)
        return cls(True, (), "; ".join(d.rule for d in parts if d.rule), details)

    @property
    def reason(self) -> str:
        """One line for logs and headers: the first violation's message, or the allowing rule."""
        if self.violations:
            extra = len(self.violations) - 1
            return self.violations[0].message + (f" (and {extra} more)" if extra else "")
        return f"allowed by {self.rule}" if self.rule else "allowed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "rule": self.rule,
            "violations": [v.to_dict() for v in self.violations],
            **({"details": self.details} if self.details else {}),
        }
