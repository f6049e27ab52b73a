"""The outermost guard of every HTTP request: request ids, header and body size caps, a response deadline, and
the latency observation for ``/metrics``.

Installed by :func:`api.app.create_app`. A plain ASGI middleware (not ``BaseHTTPMiddleware``) so that it sees
the raw ``receive`` channel:

* **Request id**: a client's ``X-Request-ID`` is kept when it is short and plain (``[A-Za-z0-9._-]{1,64}``),
  otherwise a new one is made; it is put in ``scope["state"]["request_id"]`` (audit records and error bodies
  carry it) and returned in the ``X-Request-ID`` response header.
* **Header caps** (security-cases JWT-10): an ``Authorization`` header over :data:`MAX_AUTH_HEADER_BYTES`, or
  all headers together over :data:`MAX_HEADER_BYTES`, get 431 before anything parses them.
* **Body cap** (HOOK-01): a ``Content-Length`` above the cap gets 413 before the body is read; without one
  (chunked), the bytes are counted as they arrive and the 413 is sent as soon as the count passes the cap;
  the rest of the body is never read.
* **Unexpected errors** are logged with the request id and answered 500 in the error shape, without detail.
* **Deadline**: a response that has not started after ``timeout`` seconds is answered with 504; work still
  running in a thread finishes in the background, its response is dropped. Streams that have started are
  not cut.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable

import anyio
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

__all__ = ["MAX_AUTH_HEADER_BYTES", "MAX_HEADER_BYTES", "GuardMiddleware"]

log = logging.getLogger(__name__)

#: an Authorization header longer than this is an attack on the token parser, not a token
MAX_AUTH_HEADER_BYTES = 8 * 1024
#: all request headers together
MAX_HEADER_BYTES = 32 * 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

Observer = Callable[[str, str, int, float], None]


class _Abort(Exception):
    """Raised into the app's ``receive`` after the 413 went out: stops it reading further."""


class GuardMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, timeout: float, observe: Observer | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.timeout = timeout
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        outcome = _Outcome(send, request_id)
        try:
            rejection = self._precheck(scope)
            if rejection is not None:
                await outcome.reply(*rejection)
                return
            await self._run(scope, self._capped(receive, outcome), outcome)
        finally:
            if self.observe is not None:
                route = scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                self.observe(scope.get("method", ""), path, outcome.status, time.perf_counter() - started_at)

    def _precheck(self, scope: Scope) -> tuple[int, str, str] | None:
        total = 0
        length: str | None = None
        for name, value in scope.get("headers", ()):
            total += len(name) + len(value)
            if name == b"authorization" and len(value) > MAX_AUTH_HEADER_BYTES:
                return 431, "headers-too-large", f"the Authorization header exceeds {MAX_AUTH_HEADER_BYTES} bytes"
            if name == b"content-length":
                length = value.decode("latin-1")
        if total > MAX_HEADER_BYTES:
            return 431, "headers-too-large", f"the request headers exceed {MAX_HEADER_BYTES} bytes"
        if length is not None:
            if not length.strip().isdigit():
                return 400, "bad-request", "invalid Content-Length header"
            if int(length) > self.max_body_bytes:
                return 413, "payload-too-large", f"the request body exceeds {self.max_body_bytes} bytes"
        return None

    def _capped(self, receive: Receive, outcome: _Outcome) -> Receive:
        seen = 0
        cap = self.max_body_bytes

        async def capped_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    await outcome.reply(413, "payload-too-large", f"the request body exceeds {cap} bytes")
                    raise _Abort("request body over the cap")
            return message

        return capped_receive

    async def _run(self, scope: Scope, receive: Receive, outcome: _Outcome) -> None:
        finished = anyio.Event()

        async def call() -> None:
            try:
                await self.app(scope, receive, outcome.send)
            except _Abort:
                pass
            except ClientDisconnect:
                log.info("request %s: the client went away", outcome.request_id)
            except Exception as exc:  # the last line of defence: log it, answer 500, no details
                log.error("request %s failed: %s", outcome.request_id, type(exc).__name__, exc_info=exc)
                await outcome.reply(500, "internal", "internal error; the request id identifies it in the server log")
            finally:
                finished.set()

        async with anyio.create_task_group() as group:
            group.start_soon(call)
            with anyio.move_on_after(self.timeout):
                await outcome.wait_started_or(finished)
            if not outcome.started and not finished.is_set():
                log.warning("request %s: no response within %.1fs, answering 504", outcome.request_id, self.timeout)
                await outcome.reply(504, "timeout", f"no response within {self.timeout:g} seconds; try again")
                group.cancel_scope.cancel()


class _Outcome:
    """Tracks the response: whether it started, its status, and whether this middleware answered itself
    (then everything the app still sends is dropped)."""

    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self.request_id = request_id
        self.started = False
        self.replied = False
        self.status = 500
        self._started_event = anyio.Event()

    async def wait_started_or(self, finished: anyio.Event) -> None:
        async with anyio.create_task_group() as group:

            async def wait(event: anyio.Event) -> None:
                await event.wait()
                group.cancel_scope.cancel()

            group.start_soon(wait, self._started_event)
            group.start_soon(wait, finished)

    async def send(self, message: Message) -> None:
        if self.replied:
            return
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers["X-Request-ID"] = self.request_id
            self.status = int(message["status"])
            self.started = True
            self._started_event.set()
        await self._send(message)

    async def reply(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        if self.started or self.replied:
            return
        body = json.dumps(error_body(code, message, request_id=self.request_id)).encode()
        raw: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", self.request_id.encode()),
        ]
        if status in (413, 431):
            raw.append((b"connection", b"close"))
        for key, value in (headers or {}).items():
            raw.append((key.lower().encode(), value.encode()))
        self.status = status
        self.started = self.replied = True
        self._started_event.set()
        await self._send({"type": "http.response.start", "status": status, "headers": raw})
        await self._send({"type": "http.response.body", "body": body})


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex
