"""Fault injection and the request log, for reliability tests of clients.

A ``FaultInjector`` holds rules matched against each API request's verb (get, list, watch, create,
update, patch, delete, deletecollection), resource (plural, ``deployments/status`` for a subresource)
and object name; the first matching rule adds latency, answers an error ``Status`` (500, 503, 429 with
Retry-After, 409, ...) or drops the connection, for a limited number of ``times`` or until removed.
The ``RequestLog`` records every API request in arrival order so tests can assert the exact order of
writes. Both are reachable from Python (``Sandbox.faults``/``Sandbox.requests``) and over HTTP
(``/sandbox/faults``, ``/sandbox/requests``, served by ``sandbox.admin``).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Fault", "FaultInjector", "RequestLog", "RequestRecord"]

VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"})
# Requests kept by the log; enough for any test, bounded so a long-running demo does not grow forever.
LOG_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to a matching request. ``times`` None means until removed."""

    id: str
    verb: str | None = None
    resource: str | None = None
    name: str | None = None
    status: int | None = None
    retry_after: int | None = None
    latency: float | None = None
    drop: bool = False
    times: int | None = None

    def matches(self, verb: str, resource: str, name: str) -> bool:
        return (
            (self.verb is None or self.verb == verb)
            and (self.resource is None or self.resource == resource)
            and (self.name is None or self.name == name)
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["retryAfter"] = data.pop("retry_after")
        return data


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._ids = itertools.count(1)

    def add(
        self,
        verb: str | None = None,
        resource: str | None = None,
        name: str | None = None,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        latency: float | None = None,
        drop: bool = False,
        times: int | None = None,
    ) -> str:
        """Add a rule and return its id. Raises ``ValueError`` naming the bad argument."""
        if verb is not None and verb not in VERBS:
            raise ValueError(f"verb: unknown verb {verb!r}; expected one of {', '.join(sorted(VERBS))}")
        if status is not None and not 400 <= status <= 599:
            raise ValueError(f"status: {status} is not an HTTP error code (400-599)")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retryAfter: must not be negative")
        if latency is not None and latency < 0:
            raise ValueError("latency: must not be negative")
        if times is not None and times < 1:
            raise ValueError("times: must be at least 1")
        if status is None and latency is None and not drop:
            raise ValueError("a fault needs a status, a latency or drop")
        with self._lock:
            rule = Fault(
                f"f{next(self._ids)}", verb, resource, name, status, retry_after, latency, drop, times
            )
            self._rules.append(rule)
        return rule.id

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def rules(self) -> list[Fault]:
        with self._lock:
            return list(self._rules)

    def match(self, verb: str, resource: str, name: str) -> Fault | None:
        """The first rule for this request, counting one use of it."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                if rule.matches(verb, resource, name):
                    if rule.times is not None:
                        left = rule.times - 1
                        if left == 0:
                            del self._rules[index]
                        else:
                            self._rules[index] = Fault(**{**asdict(rule), "times": left})
                    return rule
        return None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    verb: str
    path: str
    body_summary: str
    time: float

    def to_dict(self) -> dict[str, Any]:
        return {"verb": self.verb, "path": self.path, "bodySummary": self.body_summary, "time": self.time}


@dataclass
class RequestLog:
    clock: Callable[[], float]
    _records: list[RequestRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, verb: str, path: str, body_summary: str) -> None:
        with self._lock:
            if len(self._records) >= LOG_LIMIT:
                del self._records[: LOG_LIMIT // 10]
            self._records.append(RequestRecord(verb, path, body_summary, self.clock()))

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def writes(self) -> list[RequestRecord]:
        """Only the requests that change state (create, update, patch, delete, deletecollection)."""
        return [r for r in self.records() if r.verb not in ("get", "list", "watch")]

    def clear(self) -> None:
        with self._lock:
            self._records = []
