"""The state one sandbox serves: its resource registry, its store and its clock, plus small helpers.

Kept apart from the HTTP layer so the verbs (``sandbox.verbs``), deletion and garbage collection
(``sandbox.lifecycle``) and the controller loop (``sandbox.app``) share one object and one lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.resources import Registry, ResourceType
from sandbox.store import Key, Store

__all__ = ["Core", "clone", "key_of", "timestamp"]


def clone(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars); much cheaper than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision, as ``metadata.creationTimestamp`` is written."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_of(rtype: ResourceType, namespace: str, name: str) -> Key:
    return (rtype.group, rtype.plural, namespace if rtype.namespaced else "", name)


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Core:
    registry: Registry = field(default_factory=Registry)
    store: Store = field(default_factory=Store)
    clock: Callable[[], datetime] = _wall_clock
    # Objects whose deletion is being advanced right now (guards the GC against re-entering itself).
    busy: set[Key] = field(default_factory=set)
    # When each object's spec last changed (create or generation bump); the controllers' clock starts here.
    spec_changed_at: dict[Key, datetime] = field(default_factory=dict)

    def now(self) -> str:
        return timestamp(self.clock())
