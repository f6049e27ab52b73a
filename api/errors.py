"""One error shape for every failure of the HTTP API, and the mapping of domain errors onto it.

Every error response is ``{"error": code, "message": text, "violations": [...]?, "request_id": id}``:
``code`` is stable for machines, ``message`` is for people and never holds a secret, a token, SQL or a
traceback, and ``violations`` carries a denial's reasons. Registered by :func:`api.app.create_app`; raised by
routes and dependencies as :class:`ApiError`, or as the domain's own errors:

======================================  =====  ==========================
InvalidProject / InvalidPolicy           422    invalid (names the field)
request validation (pydantic)            422    invalid-request
ConflictError                            409    conflict
NotFound (store)                         404    not-found
a deny (:class:`Forbidden`)              403    forbidden (+ violations)
AuditUnavailable, database unavailable   503    unavailable (+ Retry-After)
anything else                            500    internal (logged, no detail)
======================================  =====  ==========================
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from policy import audit
from policy.decision import Decision
from policy.errors import ConflictError, InvalidPolicy, InvalidProject
from policy.store.errors import NotFound

__all__ = ["ApiError", "Forbidden", "error_body", "install", "request_id_of"]

log = logging.getLogger(__name__)

#: seconds a client should wait before retrying after a 503
RETRY_AFTER_SECONDS = 5

_STATUS_CODES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid",
    429: "too-many-requests",
    431: "headers-too-large",
    500: "internal",
    503: "unavailable",
    504: "timeout",
}


class ApiError(Exception):
    """An HTTP failure with our error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        violations: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _STATUS_CODES.get(status, "error")
        self.message = message
        self.violations = list(violations) if violations is not None else None
        self.headers = dict(headers or {})


class Forbidden(ApiError):
    """A denial: 403 carrying the decision's violations."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(403, decision.reason, violations=[v.to_dict() for v in decision.violations])


def request_id_of(scope_or_request: Request | Mapping[str, Any]) -> str:
    scope = scope_or_request.scope if isinstance(scope_or_request, Request) else scope_or_request
    state = scope.get("state") or {}
    return str(state.get("request_id", ""))


def error_body(code: str, message: str, *, request_id: str, violations: Sequence[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    if violations is not None:
        body["violations"] = list(violations)
    body["request_id"] = request_id
    return body


def _respond(request: Request, err: ApiError) -> JSONResponse:
    body = error_body(err.code, err.message, request_id=request_id_of(request), violations=err.violations)
    return JSONResponse(body, status_code=err.status, headers=err.headers)


def _location(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        head, rest = parts[0], parts[1:]
        return f"{head}." + ".".join(rest) if rest else head
    return ".".join(parts)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _respond(request, exc)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    violations = [
        {"code": "request.invalid", "message": str(e.get("msg", "invalid")), "field": _location(e.get("loc", ())),
         "rule": ""}
        for e in exc.errors()
    ]
    first = violations[0] if violations else {"field": "", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return _respond(request, ApiError(422, message, code="invalid-request", violations=violations))


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _STATUS_CODES.get(exc.status_code, "error")
    return _respond(request, ApiError(exc.status_code, detail, headers=exc.headers))


async def _invalid_project(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidProject)
    violation = {"code": "project.invalid", "message": exc.detail, "field": exc.field, "rule": ""}
    return _respond(request, ApiError(422, str(exc), code="invalid", violations=[violation]))


async def _invalid_policy(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidPolicy)
    field = f"line {exc.line}" if exc.line is not None else ""
    violation = {"code": "policy.invalid", "message": exc.detail, "field": field, "rule": ""}
    return _respond(request, ApiError(422, str(exc), code="invalid", violations=[violation]))


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return _respond(request, ApiError(409, str(exc)))


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return _respond(request, ApiError(404, str(exc)))


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, audit.AuditUnavailable):
        message = "the audit log cannot be written; the request was refused, try again"
    else:
        message = "the database is unavailable; try again"
    log.error("request %s refused: %s", request_id_of(request), type(exc).__name__)
    return _respond(request, ApiError(503, message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}))


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.error("request %s failed: %s", request_id_of(request), type(exc).__name__, exc_info=exc)
    return _respond(request, ApiError(500, "internal error; the request id identifies it in the server log"))


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(InvalidProject, _invalid_project)
    app.add_exception_handler(InvalidPolicy, _invalid_policy)
    app.add_exception_handler(ConflictError, _conflict)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(audit.AuditUnavailable, _unavailable)
    app.add_exception_handler(sa.exc.SQLAlchemyError, _unavailable)
    app.add_exception_handler(Exception, _internal)
