"""The audit record: events, their redaction, the canonical form and the hash chain.

Pure: no database and no clock. ``policy.store.audit`` persists records and runs the group-commit writer;
``api`` builds :class:`AuditEvent` values for every decision (:meth:`AuditEvent.from_decision`) and change;
checkpoints and verification are in :mod:`policy.audit_verify`, masking in :mod:`policy.redaction`.

The chain (security-cases §C.5): record ``n`` carries ``prev_hash`` (the hash of record ``n-1``, or
:data:`GENESIS_HASH` for the first) and ``hash = sha256(canonical(record_n))``. The canonical form is the
compact JSON array ``["syncwarden-audit-v1", seq, time_us, action, result, subject, token_id, client,
project, app, object, request_id, violations_json, details_json, prev_hash]`` (UTF-8, no spaces, no ASCII
escaping; violations and details are themselves sorted-key compact JSON texts). Editing, deleting or
swapping a record breaks the recomputation or the linkage at that record.

Secrets never enter a record: :meth:`AuditEvent.create` redacts details and free text. Token references
are the token id (``jti``), never the token.

Error tree::

    PolicyError
    └── AuditUnavailable     the log cannot be written; the caller must refuse the change
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from policy.decision import Decision
from policy.errors import PolicyError
from policy.redaction import MASK, redact, redact_text

__all__ = [
    "GENESIS_HASH",
    "MASK",
    "AuditContext",
    "AuditEvent",
    "AuditRecord",
    "AuditUnavailable",
    "PreparedEvent",
    "canonical_bytes",
    "chain_hash",
    "from_micros",
    "micros",
    "prepare",
    "redact",
    "redact_text",
]

GENESIS_HASH = "0" * 64


class AuditUnavailable(PolicyError):
    """The audit log could not be written. The change it describes must not happen (fail closed)."""


# --- events and records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who asked, from where, under which request: built once per request at the entry point."""

    subject: str = ""
    #: the project token's id (``jti``) when the caller used one; never the token itself
    token_id: str = ""
    client: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One decision or change, before it has a place in the chain. ``time`` is given by the caller."""

    time: datetime
    action: str
    result: str
    subject: str = ""
    token_id: str = ""
    client: str = ""
    project: str = ""
    app: str = ""
    object: str = ""
    request_id: str = ""
    violations: tuple[Mapping[str, Any], ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        *,
        ctx: AuditContext,
        time: datetime,
        action: str,
        result: str,
        project: str = "",
        app: str = "",
        object: str = "",
        violations: Iterable[Mapping[str, Any]] = (),
        details: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        """An event with ``details`` and every free-text field redacted."""
        return cls(
            time=time,
            action=action,
            result=result,
            subject=ctx.subject,
            token_id=redact_text(ctx.token_id),
            client=ctx.client,
            project=project,
            app=app,
            object=redact_text(object),
            request_id=ctx.request_id,
            violations=tuple(redact(dict(v)) for v in violations),
            details=redact(dict(details or {})),
        )

    @classmethod
    def from_decision(
        cls, decision: Decision, *, ctx: AuditContext, time: datetime, action: str, **target: str
    ) -> AuditEvent:
        """The record of a gate decision: result ``allowed`` or ``denied`` with its violations and rule."""
        return cls.create(
            ctx=ctx,
            time=time,
            action=action,
            result="allowed" if decision.allowed else "denied",
            violations=[v.to_dict() for v in decision.violations],
            details={"rule": decision.rule, **decision.details},
            **target,
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (the chain's time unit)."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return (moment - _EPOCH) // _ONE_MICROSECOND


def from_micros(value: int) -> datetime:
    """The aware UTC datetime of ``value`` microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=value)


def _iso(micros: int) -> str:
    seconds, rest = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:06d}Z"


_FORMAT = "syncwarden-audit-v1"
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_SORTED_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True)


def _canonical_json(value: Any) -> str:
    """Sorted-key compact JSON: the stored (and hashed) text of violations and details."""
    return _SORTED_ENCODER.encode(value)


class PreparedEvent(NamedTuple):
    """An event already serialised (in the caller's thread), waiting for its place in the chain.

    ``body`` is the canonical encoding of the fields from ``action`` to ``details_json``, so that the
    single writer only formats seq, time and prev_hash around it and hashes.
    """

    time_us: int
    action: str
    result: str
    subject: str
    token_id: str
    client: str
    project: str
    app: str
    object: str
    request_id: str
    violations_json: str
    details_json: str
    body: str

    def seal(self, *, seq: int, prev_hash: str, min_time_us: int = 0) -> AuditRecord:
        """The record at ``seq`` after the one with hash ``prev_hash``. Time never goes backwards in the
        chain: an event older than ``min_time_us`` (the previous record's time) is recorded at that time,
        so that a time range is also a seq range."""
        time_us = self.time_us if self.time_us >= min_time_us else min_time_us
        canonical = f'["{_FORMAT}",{seq},{time_us},{self.body},"{prev_hash}"]'
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        return AuditRecord(seq, time_us, *self[1:12], prev_hash, digest)


def prepare(event: AuditEvent) -> PreparedEvent:
    """Serialise ``event``; raises ``ValueError``/``TypeError`` for a naive time or non-JSON details."""
    violations = _canonical_json([dict(v) for v in event.violations]) if event.violations else "[]"
    details = _canonical_json(dict(event.details))
    middle = (
        event.action,
        event.result,
        event.subject,
        event.token_id,
        event.client,
        event.project,
        event.app,
        event.object,
        event.request_id,
        violations,
        details,
    )
    return PreparedEvent(
        micros(event.time),
        event.action,
        event.result,
        event.subject,
        event.token_id,
        event.client,
        event.project,
        event.app,
        event.object,
        event.request_id,
        violations,
        details,
        _ENCODER.encode(middle)[1:-1],
    )


class AuditRecord(NamedTuple):
    """A record in the chain, in the audit table's column order. ``time_us`` is microseconds since the
    epoch (UTC): exact and portable. Immutable (a tuple); tests derive tampered copies with ``_replace``."""

    seq: int
    time_us: int
    action: str
    result: str
    subject: str
    token_id: str
    client: str
    project: str
    app: str
    object: str
    request_id: str
    #: canonical JSON texts, stored as they are hashed
    violations_json: str
    details_json: str
    prev_hash: str
    hash: str

    @classmethod
    def seal(cls, event: AuditEvent, *, seq: int, prev_hash: str, min_time_us: int = 0) -> AuditRecord:
        """Place ``event`` after a record with hash ``prev_hash`` (see :meth:`PreparedEvent.seal`)."""
        return prepare(event).seal(seq=seq, prev_hash=prev_hash, min_time_us=min_time_us)

    def as_row(self) -> tuple[Any, ...]:
        """The fields in the audit table's column order."""
        return tuple(self)

    @property
    def time(self) -> datetime:
        return from_micros(self.time_us)

    def to_dict(self) -> dict[str, Any]:
        """The exported form (JSON lines, API): times as RFC 3339 UTC, structured violations/details."""
        return {
            "seq": self.seq,
            "time": _iso(self.time_us),
            "action": self.action,
            "result": self.result,
            "actor": {"subject": self.subject, "token_id": self.token_id, "client": self.client},
            "target": {"project": self.project, "app": self.app, "object": self.object},
            "request_id": self.request_id,
            "violations": json.loads(self.violations_json),
            "details": json.loads(self.details_json),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def _field_values(record: AuditRecord) -> tuple[Any, ...]:
    return record[:14]


def _canonical(fields: tuple[Any, ...]) -> bytes:
    return _ENCODER.encode([_FORMAT, *fields]).encode("utf-8")


def _digest(fields: tuple[Any, ...]) -> str:
    return hashlib.sha256(_canonical(fields)).hexdigest()


def canonical_bytes(record: AuditRecord) -> bytes:
    """The bytes that are hashed: a compact JSON array of every field but ``hash`` (in declaration order)
    behind a format tag. An array rather than a sorted object: the same determinism at a third of the cost."""
    return _canonical(_field_values(record))


def chain_hash(record: AuditRecord) -> str:
    return _digest(_field_values(record))
