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
from _json import encode_basestring as _quote
from _json import make_encoder as _make_encoder
from collections.abc import Iterable, Mapping, Sequence
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
    "seal_all",
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
            violations=tuple(redact(v) for v in violations),
            details=redact(details) if details else {},
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


_DEFAULT = _SORTED_ENCODER.default  # raises TypeError for what JSON cannot hold


def _canonical_json(value: dict[str, Any] | list[Any]) -> str:
    """Sorted-key compact JSON: the stored (and hashed) text of violations and details.

    The same C encoder, with the same options, that ``_SORTED_ENCODER.encode`` would build, minus the
    Python wrapper that :meth:`json.JSONEncoder.encode` runs around it on every call (half the cost for the
    small documents an event carries). A fresh ``markers`` dict per call keeps the circular-reference check.
    """
    return "".join(_make_encoder({}, _DEFAULT, _quote, None, ":", ",", True, False, False)(value, 0))


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
        return seal_all([self], seq=seq - 1, prev_hash=prev_hash, min_time_us=min_time_us)[0]


def prepare(event: AuditEvent) -> PreparedEvent:
    """Serialise ``event``; raises ``ValueError``/``TypeError`` for a naive time, a text field that is not
    a string, or details that JSON cannot hold.

    This runs in every caller's thread, under the GIL, for every decision: it quotes each field once with
    the C string encoder instead of encoding a tuple through :class:`json.JSONEncoder` (the same text).
    """
    violations = "[]"
    if event.violations:
        violations = _canonical_json([v if type(v) is dict else dict(v) for v in event.violations])
    given = event.details
    details = _canonical_json(given if type(given) is dict else dict(given)) if given else "{}"
    fields: tuple[str, ...] = (
        event.action,
        event.result,
        event.subject,
        event.token_id,
        event.client,
        event.project,
        event.app,
        event.object,
        event.request_id,
    )
    for value in fields:
        if type(value) is not str:
            fields = tuple(_plain_str(v) for v in fields)
            break
    body = ",".join([*map(_quote, fields), _quote(violations), _quote(details)])
    return PreparedEvent._make((micros(event.time), *fields, violations, details, body))


def _plain_str(value: object) -> str:
    """A str subclass (a ``StrEnum`` member, say) as the plain text it holds, so that what is hashed,
    stored and read back is the same; anything else is refused."""
    if not isinstance(value, str):
        raise TypeError(f"audit event fields must be strings, got {type(value).__name__}")
    return str.__str__(value)


def seal_all(events: Sequence[PreparedEvent], *, seq: int, prev_hash: str, min_time_us: int = 0) -> list[AuditRecord]:
    """Seal ``events`` in order after the record ``seq`` with hash ``prev_hash`` (time ``min_time_us``).

    One pass in the writer: the canonical text is formatted around each pre-serialised body and hashed by
    hashlib's C SHA-256; times are clamped so they never go backwards along the chain.
    """
    records: list[AuditRecord] = []
    add = records.append
    sha256 = hashlib.sha256
    make = AuditRecord._make
    for event in events:
        seq += 1
        time_us = event.time_us if event.time_us >= min_time_us else min_time_us
        digest = sha256(f'["{_FORMAT}",{seq},{time_us},{event.body},"{prev_hash}"]'.encode()).hexdigest()
        add(make((seq, time_us, *event[1:12], prev_hash, digest)))
        prev_hash, min_time_us = digest, time_us
    return records


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
