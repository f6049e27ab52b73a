"""``/api/v1/audit``: query the audit trail (filters + cursor), export it (JSON lines or CSV, streamed), and
verify its hash chain. Same store functions as ``syncwarden audit query|export|verify``.

Permissions (the ``audit`` resource, actions ``get``, ``export``, ``verify``): the object is the project the
query is filtered to, or ``*`` for an unfiltered one — so a team granted ``audit, get, web`` reads the trail of
project ``web`` and nothing else, while the built-in ``role:readonly`` reads everything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import StateDep, require
from api.errors import ApiError
from api.schemas import ERRORS, AuditPagePublic, AuditRecordPublic, AuditVerifyPublic
from policy.store import audit_read

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=ERRORS)


def _audit_object(request: Request) -> str:
    return request.query_params.get("project") or "*"


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ApiError(422, f"query.{name}: the time needs a zone offset (Z or +01:00)", code="invalid-request")
    return value


def audit_filter(
    since: Annotated[datetime | None, Query(description="records at or after this time")] = None,
    until: Annotated[datetime | None, Query(description="records before this time")] = None,
    project: str | None = None,
    app: str | None = None,
    actor: Annotated[str | None, Query(description="the subject that acted")] = None,
    action: str | None = None,
    result: str | None = None,
    request_id: Annotated[str | None, Query(alias="requestId")] = None,
) -> audit_read.AuditFilter:
    return audit_read.AuditFilter(since=_aware(since, "since"), until=_aware(until, "until"), project=project,
                                  app=app, actor=actor, action=action, result=result, request_id=request_id)


FilterDep = Annotated[audit_read.AuditFilter, Depends(audit_filter)]


@router.get("", response_model=AuditPagePublic, dependencies=[require("audit", "get", _audit_object)])
def query_audit(
    state: StateDep,
    flt: FilterDep,
    cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=audit_read.MAX_PAGE)] = 100,
    newest_first: Annotated[bool, Query(alias="newestFirst")] = False,
) -> AuditPagePublic:
    """One page of matching records."""
    try:
        page = audit_read.query(state.store.engine, flt, cursor=cursor, limit=limit, newest_first=newest_first)
    except ValueError as exc:
        raise ApiError(422, f"query.cursor: {exc}", code="invalid-request") from None
    return AuditPagePublic(items=[AuditRecordPublic.model_validate(r.to_dict()) for r in page.records],
                           next_cursor=page.next_cursor)


@router.get(
    "/export",
    response_class=StreamingResponse,
    dependencies=[require("audit", "export", _audit_object)],
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}, "description": "every match"}},
)
def export_audit(state: StateDep, flt: FilterDep, format: Literal["jsonl", "csv"] = "jsonl") -> StreamingResponse:
    """Every matching record, streamed in seq order (constant memory)."""
    records = audit_read.iter_records(state.store.engine, flt)
    if format == "csv":
        return StreamingResponse(audit_read.export_csv(records), media_type="text/csv; charset=utf-8")
    return StreamingResponse(audit_read.export_jsonl(records), media_type="application/x-ndjson")


@router.post("/verify", response_model=AuditVerifyPublic, dependencies=[require("audit", "verify", "*")])
def verify_audit(state: StateDep) -> AuditVerifyPublic:
    """Walk the whole hash chain; report the first record that is missing, modified or out of order."""
    keys = [state.store.keyring.current.secret, *(k.secret for k in state.store.keyring.retired)]
    result = audit_read.verify(state.store.engine, keys=keys)
    return AuditVerifyPublic(ok=result.ok, checked=result.checked, bad_seq=result.bad_seq, reason=result.reason,
                             last_seq=result.last_seq)
