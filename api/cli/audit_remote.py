"""``syncwarden audit query|export|verify`` in server mode, over ``/api/v1/audit``.

Who calls: :mod:`api.cli.audit` when :func:`api.cli.remote.target` chose a server. Query answers are turned back
into :class:`policy.audit.AuditRecord` values, so the table, ``-o json`` and ``-o csv`` print exactly what local
mode prints; ``export`` streams the server's own JSON lines or CSV through unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from api.cli.remote import Remote, connect
from api.client import Params, Unavailable
from policy import audit, audit_verify
from policy.store import audit_read

__all__ = ["export", "params_of", "query", "record_from", "verify"]


def params_of(flt: audit_read.AuditFilter) -> dict[str, str | int | bool | None]:
    """The query parameters of ``/api/v1/audit`` for a filter (times as RFC 3339)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "since": iso(flt.since), "until": iso(flt.until), "project": flt.project, "app": flt.app,
        "actor": flt.actor, "action": flt.action, "result": flt.result, "requestId": flt.request_id,
    }


def _canonical(value: Any) -> str:
    """The stored text of violations/details: sorted keys, compact, UTF-8 (as :mod:`policy.audit` stores it)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def record_from(item: Any) -> audit.AuditRecord:
    """An ``AuditRecordPublic`` answer as the chain's record."""
    try:
        actor, target = item["actor"], item["target"]
        return audit.AuditRecord(
            seq=int(item["seq"]), time_us=audit.micros(datetime.fromisoformat(item["time"])),
            action=str(item["action"]), result=str(item["result"]), subject=str(actor.get("subject", "")),
            token_id=str(actor.get("token_id", "")), client=str(actor.get("client", "")),
            project=str(target.get("project", "")), app=str(target.get("app", "")),
            object=str(target.get("object", "")), request_id=str(item.get("requestId", "")),
            violations_json=_canonical(item.get("violations") or []),
            details_json=_canonical(item.get("details") or {}),
            prev_hash=str(item["prevHash"]), hash=str(item["hash"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise Unavailable(message="the server answered an audit record this CLI cannot read", exit_code=3) from None


def query(
    remote: Remote, flt: audit_read.AuditFilter, *, cursor: str | None, limit: int, newest_first: bool
) -> audit_read.AuditPage:
    params: Params = {**params_of(flt), "cursor": cursor, "limit": limit, "newestFirst": newest_first}
    with connect(remote) as api:
        body = api.get("/api/v1/audit", params=params)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise Unavailable(message="the server answered no audit records", exit_code=3)
        next_cursor = body.get("nextCursor")
        return audit_read.AuditPage(records=[record_from(i) for i in items],
                                    next_cursor=str(next_cursor) if next_cursor else None)


def export(remote: Remote, flt: audit_read.AuditFilter, *, fmt: str) -> Iterator[str]:
    """The server's export, chunk by chunk."""
    with connect(remote) as api:
        yield from api.stream("/api/v1/audit/export", params={**params_of(flt), "format": fmt})


def verify(remote: Remote) -> audit_verify.VerifyResult:
    with connect(remote) as api:
        body = api.post("/api/v1/audit/verify")
        try:
            bad = body.get("badSeq")
            return audit_verify.VerifyResult(bool(body["ok"]), int(body["checked"]), None if bad is None else int(bad),
                                             str(body["reason"]), int(body["lastSeq"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise Unavailable(message="the server answered a verification this CLI cannot read", exit_code=3) from None
