"""The sandbox's own HTTP endpoints under ``/sandbox/``, for tests and tools outside the process.

    GET    /sandbox/faults           the active fault rules
    POST   /sandbox/faults           add one: {"verb", "resource", "name", "status", "retryAfter",
                                     "latency", "drop", "times"} -> 201 {"id": ...}
    DELETE /sandbox/faults           remove all;  DELETE /sandbox/faults/<id> removes one
    GET    /sandbox/requests         the request log: {"items": [{"verb", "path", "bodySummary", "time"}]}
    DELETE /sandbox/requests         clear it
    POST   /sandbox/tick             run the simulated controllers once now

Called by ``sandbox.server``; errors are ``Status`` objects like every other response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from config import yamlsafe
from sandbox.errors import ApiError

if TYPE_CHECKING:
    from sandbox.server import Context

__all__ = ["handle"]

_FAULT_FIELDS = {
    "verb": str, "resource": str, "name": str, "status": int, "retryAfter": int,
    "latency": (int, float), "drop": bool, "times": int,
}


def _fault_args(raw: bytes) -> dict[str, Any]:
    try:
        body = yamlsafe.loads_json(raw or b"{}", source="fault rule")
    except yamlsafe.YamlError as exc:
        raise ApiError(400, str(exc)) from None
    if not isinstance(body, dict):
        raise ApiError(400, "a fault rule must be a JSON object")
    args: dict[str, Any] = {}
    for field, value in body.items():
        expected = _FAULT_FIELDS.get(field)
        if expected is None:
            raise ApiError(400, f"{field}: unknown field; expected one of {', '.join(_FAULT_FIELDS)}")
        if value is None:
            continue
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):  # type: ignore[arg-type]
            raise ApiError(400, f"{field}: wrong type {type(value).__name__}")
        args["retry_after" if field == "retryAfter" else field] = value
    return args


def handle(ctx: Context, method: str, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    parts = path.strip("/").split("/")[1:]
    if parts == ["faults"]:
        if method == "GET":
            return 200, {"items": [rule.to_dict() for rule in ctx.faults.rules()]}
        if method == "POST":
            try:
                rule_id = ctx.faults.add(**_fault_args(raw))
            except ValueError as exc:
                raise ApiError(400, str(exc)) from None
            return 201, {"id": rule_id}
        if method == "DELETE":
            ctx.faults.clear()
            return 200, {}
    elif len(parts) == 2 and parts[0] == "faults" and method == "DELETE":
        if not ctx.faults.remove(parts[1]):
            raise ApiError(404, f'fault rule "{parts[1]}" not found')
        return 200, {}
    elif parts == ["requests"]:
        if method == "GET":
            return 200, {"items": [record.to_dict() for record in ctx.requests.records()]}
        if method == "DELETE":
            ctx.requests.clear()
            return 200, {}
    elif parts == ["tick"] and method == "POST":
        ctx.tick()
        return 200, {}
    else:
        raise ApiError(404, f"no sandbox admin endpoint at {path}")
    raise ApiError(405, f"{method} is not allowed on {path}")
