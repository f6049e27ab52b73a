"""Kubernetes ``Status`` errors raised by the sandbox's request handling.

Every failure a client sees is a ``Status`` object with the HTTP code, a machine ``reason`` and a
message worded like the real API server's, because clients (the official Python client, kubectl)
branch on ``code`` and ``reason``. Raised by ``sandbox.verbs`` and ``sandbox.lifecycle``, turned into
a response by ``sandbox.server``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "status_object"]

_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_object(
    code: int, message: str, *, reason: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``Status`` body as the API server writes it (``status: Success`` for 2xx codes)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason if reason is not None else _REASONS.get(code, "Unknown"),
        "code": code,
    }
    if code < 400 and reason is None:
        del body["reason"]
        del body["message"]
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    """A request that fails with a Kubernetes ``Status`` (the code, reason and details it carries)."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason if reason is not None else _REASONS.get(code, "Unknown")
        self.details = details or {}
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        return status_object(self.code, self.message, reason=self.reason, details=self.details)

    @classmethod
    def not_found(cls, group: str, plural: str, name: str) -> ApiError:
        qualified = f"{plural}.{group}" if group else plural
        return cls(
            404,
            f'{qualified} "{name}" not found',
            details={"name": name, "group": group, "kind": plural},
        )

    @classmethod
    def already_exists(cls, group: str, plural: str, name: str) -> ApiError:
        qualified = f"{plural}.{group}" if group else plural
        return cls(
            409,
            f'{qualified} "{name}" already exists',
            reason="AlreadyExists",
            details={"name": name, "group": group, "kind": plural},
        )

    @classmethod
    def conflict(cls, group: str, plural: str, name: str, why: str) -> ApiError:
        qualified = f"{plural}.{group}" if group else plural
        return cls(
            409,
            f'Operation cannot be fulfilled on {qualified} "{name}": {why}',
            reason="Conflict",
            details={"name": name, "group": group, "kind": plural},
        )

    @classmethod
    def invalid(cls, kind: str, group: str, name: str, field: str, why: str) -> ApiError:
        return cls(
            422,
            f'{kind}{"." + group if group else ""} "{name}" is invalid: {field}: {why}',
            details={
                "name": name,
                "group": group,
                "kind": kind,
                "causes": [{"reason": "FieldValueInvalid", "message": why, "field": field}],
            },
        )

    @classmethod
    def unknown_resource(cls) -> ApiError:
        return cls(404, "the server could not find the requested resource", details={})
