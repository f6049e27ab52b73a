"""Reading the audit chain: filtered queries with keyset pagination, streaming export, chain verification.

Who calls: ``syncwarden audit query|export|verify`` and the API's audit routes.

Queries are keyset pages on ``seq`` (the cursor is the last seq of the previous page), each filter served
by its own ``(column, seq)`` index. A time range is turned into a seq range: the writer never lets time go
backwards along the chain, so "records since T" is "records from the first seq at or after T", found with
one probe of the ``(time_us, seq)`` index in a scalar subquery. That keeps a filtered page to one statement
and an index range scan at a million rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from policy import audit, audit_verify
from policy.store import tables
from policy.store.audit import read_anchor, read_head, records_from_rows

__all__ = ["CSV_COLUMNS", "AuditFilter", "AuditPage", "export_csv", "export_jsonl", "iter_records", "query", "verify"]

_R = tables.audit_records
MAX_PAGE = 1000
_CHUNK = 5000
CSV_COLUMNS = [
    "seq", "time", "action", "result", "subject", "token_id", "client", "project", "app", "object",
    "request_id", "violations", "details", "prev_hash", "hash",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Every field optional; all given ones must match (``actor`` is the subject)."""

    since: datetime | None = None
    until: datetime | None = None
    project: str | None = None
    app: str | None = None
    actor: str | None = None
    action: str | None = None
    result: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditPage:
    records: list[audit.AuditRecord]
    #: pass back as ``cursor`` for the next page; None when this was the last page
    next_cursor: str | None


_MAX_SEQ = 2**63 - 1


def _first_seq_at(moment: datetime) -> sa.ScalarSelect[int]:
    """The first seq at or after ``moment``: one probe of the (time_us, seq) index, run once per query."""
    return (
        sa.select(_R.c.seq)
        .where(_R.c.time_us >= audit.micros(moment))
        .order_by(_R.c.time_us, _R.c.seq)
        .limit(1)
        .scalar_subquery()
    )


def _conditions(flt: AuditFilter) -> list[sa.ColumnElement[bool]]:
    """SQL conditions for ``flt``. A time range becomes a seq range (time never decreases along the chain),
    computed by scalar subqueries inside the same statement: one round trip per page."""
    conds: list[sa.ColumnElement[bool]] = []
    if flt.since is not None:
        conds.append(_R.c.seq >= _first_seq_at(flt.since))  # no record since: NULL, so nothing matches
    if flt.until is not None:
        conds.append(_R.c.seq < sa.func.coalesce(_first_seq_at(flt.until), _MAX_SEQ))
    for column, value in (
        (_R.c.project, flt.project),
        (_R.c.app, flt.app),
        (_R.c.subject, flt.actor),
        (_R.c.action, flt.action),
        (_R.c.result, flt.result),
        (_R.c.request_id, flt.request_id),
    ):
        if value is not None:
            conds.append(column == value)
    return conds


def parse_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit():
        raise ValueError(f"invalid cursor {cursor!r}: use the next_cursor value of the previous page")
    return int(cursor)


def query(
    engine: Engine, flt: AuditFilter, *, cursor: str | None = None, limit: int = 100, newest_first: bool = False
) -> AuditPage:
    """One page of matching records in seq order (or newest first). ``ValueError`` for a bad cursor/limit."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    after = parse_cursor(cursor)
    conds = _conditions(flt)
    if after is not None:
        conds.append(_R.c.seq < after if newest_first else _R.c.seq > after)
    order = _R.c.seq.desc() if newest_first else _R.c.seq.asc()
    with engine.connect() as conn:
        rows = conn.execute(sa.select(_R).where(*conds).order_by(order).limit(limit + 1)).all()
    records = records_from_rows(rows[:limit])
    more = len(rows) > limit
    return AuditPage(records, str(records[-1].seq) if more and records else None)


def iter_records(engine: Engine, flt: AuditFilter | None = None) -> Iterator[audit.AuditRecord]:
    """Every matching record in seq order, read in chunks (constant memory)."""
    after: int | None = None
    base = _conditions(flt or AuditFilter())
    while True:
        conds = [*base, _R.c.seq > after] if after is not None else base
        with engine.connect() as conn:
            rows = conn.execute(sa.select(_R).where(*conds).order_by(_R.c.seq).limit(_CHUNK)).all()
        if not rows:
            return
        records = records_from_rows(rows)
        yield from records
        after = records[-1].seq


def export_jsonl(records: Iterable[audit.AuditRecord]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True) + "\n"


def export_csv(records: Iterable[audit.AuditRecord]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        row = record.to_dict()
        writer.writerow(
            [
                row["seq"], row["time"], row["action"], row["result"], record.subject, record.token_id,
                record.client, record.project, record.app, record.object, record.request_id,
                record.violations_json, record.details_json, record.prev_hash, record.hash,
            ]
        )  # fmt: skip
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def verify(
    engine: Engine, *, keys: Iterable[bytes], checkpoints: Iterable[audit_verify.Checkpoint] = ()
) -> audit_verify.VerifyResult:
    """Walk the whole chain from its anchor. ``checkpoints`` must already be signature-checked.

    The head row counts as an unsigned checkpoint: a tail deleted without also rewriting the head is found
    even without an exported checkpoint. The retention anchor must carry a valid signature.
    """
    key_list = list(keys)
    with engine.connect() as conn:
        anchor = read_anchor(conn)
        head_seq, head_hash, _ = read_head(conn, lock=False)
    if anchor is not None and not anchor.signed_by_any(key_list):
        return audit_verify.VerifyResult(
            False, 0, anchor.seq, f"the retention anchor at seq {anchor.seq} is not signed"
        )
    points = list(checkpoints)
    if head_seq > 0:
        points.append(audit_verify.Checkpoint(seq=head_seq, hash=head_hash))
    verifier = audit_verify.ChainVerifier(anchor=anchor, checkpoints=_merge(points))
    after = (anchor.seq - 1) if anchor else 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(_R).where(_R.c.seq > after).order_by(_R.c.seq).limit(_CHUNK)).all()
        if not rows:
            break
        for record in records_from_rows(rows):
            if not verifier.feed(record):
                return verifier.finish()
        after = int(rows[-1].seq)
    return verifier.finish()


def _merge(points: list[audit_verify.Checkpoint]) -> list[audit_verify.Checkpoint]:
    """Keep one checkpoint per seq; when two disagree the chain cannot match both, keep the first given."""
    seen: dict[int, audit_verify.Checkpoint] = {}
    for point in points:
        seen.setdefault(point.seq, point)
    return list(seen.values())
