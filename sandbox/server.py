"""The HTTP front of the sandbox: a ``ThreadingHTTPServer`` whose handler parses each request, records
it, applies injected faults, and dispatches to discovery, the verbs, watch streams or the admin API.

The standard library server is enough here (one thread per connection, HTTP/1.1 keep-alive, chunked
watch streams) and adds no dependency to a package the demo and every cluster test start. All
responses are JSON; a client asking for a Table or protobuf gets JSON too, as it accepts. Started by
``sandbox.app.Sandbox``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from config import yamlsafe
from sandbox import admin, fieldvalidation, routing, verbs, watch
from sandbox.core import Core
from sandbox.errors import ApiError
from sandbox.faults import Fault, FaultInjector, RequestLog

__all__ = ["Context", "make_server"]

log = logging.getLogger(__name__)

HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz"})


@dataclass
class Context:
    """Everything a request handler needs; one per sandbox."""

    core: Core
    faults: FaultInjector
    requests: RequestLog
    stopping: threading.Event
    tick: Callable[[], None]
    bookmark_interval: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], context: Context) -> None:
        self.context = context
        super().__init__(address, _Handler)


def make_server(host: str, port: int, context: Context) -> ThreadingHTTPServer:
    return _Server((host, port), context)


def summarize(kind: str, name: str | None, content_type: str, raw: bytes) -> str:
    """A short description of a request body for the request log: its media type, the object's kind
    and name (or the number of JSON patch operations), and its size. Never field values: a Secret's
    data must not leak into logs."""
    if not raw:
        return ""
    media = content_type.split(";")[0].strip()
    try:
        data = yamlsafe.load_one(raw, source="body") if media.endswith("yaml") else json.loads(raw)
    except (ValueError, yamlsafe.YamlError):
        data = None
    parts = [media] if media else []
    if isinstance(data, dict):
        meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else None
        name = meta.get("name") if meta and isinstance(meta.get("name"), str) else name
        parts.append(f"{kind}/{name}" if isinstance(name, str) else kind)
    elif isinstance(data, list):
        parts.append(f"{len(data)} ops")
    parts.append(f"({len(raw)} bytes)")
    return " ".join(parts)


def _field_validation(query: Mapping[str, str]) -> str:
    """``fieldValidation`` on a write; the server's default is Warn."""
    value = query.get("fieldValidation") or "Warn"
    if value not in fieldvalidation.MODES:
        raise ApiError(400, f'fieldValidation: Unsupported value: "{value}": supported values: '
                       '"Ignore", "Strict", "Warn"')
    return value


def _dry(options: Any) -> bool:
    """``DeleteOptions.dryRun`` (kubectl sends it in the body rather than the query)."""
    value = options.get("dryRun") if isinstance(options, dict) else None
    if value in (None, []):
        return False
    if value != ["All"]:
        raise ApiError(400, f'dryRun: Unsupported value: {json.dumps(value)}: supported values: "All"')
    return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes; without this, Nagle's algorithm and the client's
        # delayed ACK add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # ---- responses -------------------------------------------------------------------------------

    def _send(self, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(data, separators=(",", ":")).encode(), "application/json", headers)

    def _error(self, exc: ApiError) -> None:
        self._json(exc.code, exc.status(), exc.headers)

    def _drop(self) -> None:
        """Close the connection without a response, as a crashed or partitioned server would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # ---- dispatch --------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        """The request body, by Content-Length or chunked transfer encoding; ValueError if malformed."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, method: str) -> None:
        ctx = self.server.context
        url = urlsplit(self.path)
        multi = parse_qs(url.query, keep_blank_values=True)
        query = {k: v[-1] for k, v in multi.items()}
        try:
            raw = self._read_body()
        except ValueError:
            self.close_connection = True
            self._error(ApiError(400, "the request body is not framed correctly (Content-Length or chunks)"))
            return
        path = url.path.rstrip("/") or "/"
        try:
            if path.startswith("/sandbox/") or path == "/sandbox":
                code, data = admin.handle(ctx, method, path, raw)
                self._json(code, data)
            elif path in HEALTH_PATHS:
                self._send(200, b"ok", "text/plain; charset=utf-8")
            else:
                self._resource(ctx, method, path, query, multi.get("dryRun", []), raw)
        except ApiError as exc:
            self._error(exc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            log.exception("sandbox: unexpected error serving %s %s", method, path)
            self._error(ApiError(500, f"internal error serving {method} {path}; see the sandbox log"))

    def _resource(
        self, ctx: Context, method: str, path: str, query: dict[str, str], dry_run: list[str], raw: bytes
    ) -> None:
        bound = self.server.server_address
        host = self.headers.get("Host") or f"{bound[0]!s}:{bound[1]}"
        route = routing.resolve(ctx.core.registry, path, server_address=host)
        if route.document is not None:
            if method != "GET":
                raise ApiError(405, f"the server does not allow this method on the requested resource ({method})")
            self._json(200, route.document)
            return
        target = route.target
        assert target is not None
        verb = routing.verb_of(method, target, query)
        content_type = self.headers.get("Content-Type") or ""
        ctx.requests.add(verb, path, summarize(target.rtype.kind, target.name, content_type, raw))
        resource = target.rtype.plural + (f"/{target.subresource}" if target.subresource else "")
        fault = ctx.faults.match(verb, resource, target.name or "")
        if fault is not None and self._inject(fault, target):
            return
        for value in dry_run:
            if value != "All":
                raise ApiError(400, f'dryRun: Unsupported value: "{value}": supported values: "All"')
        opts = verbs.WriteOptions(
            manager=query.get("fieldManager") or (self.headers.get("User-Agent") or "unknown").split("/")[0],
            dry_run=bool(dry_run),
            force=query.get("force") in ("true", "1"),
            field_validation=_field_validation(query),
        )
        core = ctx.core
        if verb == "get":
            self._json(200, verbs.get(core, target))
        elif verb == "list":
            self._json(200, verbs.list_objects(core, target, query))
        elif verb == "watch":
            self._watch(ctx, target, query)
        elif verb == "create":
            self._json(*verbs.create(core, target, self._body(raw, content_type), opts))
        elif verb == "update":
            self._json(*verbs.update(core, target, self._body(raw, content_type), opts))
        elif verb == "patch":
            if query.get("fieldManager") is None and content_type.startswith(verbs.APPLY_PATCH):
                opts = verbs.WriteOptions(manager="", dry_run=opts.dry_run, force=opts.force,
                                          field_validation=opts.field_validation)
            self._json(*verbs.patch_object(core, target, raw, content_type, opts))
        elif verb == "delete":
            options = self._body(raw, "application/json")
            self._json(*verbs.delete(core, target, query, options, dry_run=opts.dry_run or _dry(options)))
        else:
            options = self._body(raw, "application/json")
            self._json(*verbs.delete_collection(
                core, target, query, options, dry_run=opts.dry_run or _dry(options)))

    def _inject(self, fault: Fault, target: verbs.Target) -> bool:
        """Apply a fault; true when the request is answered (or dropped) by it."""
        if fault.latency:
            time.sleep(fault.latency)
        if fault.drop:
            self._drop()
            return True
        if fault.status is None:
            return False
        headers: dict[str, str] = {}
        details: dict[str, Any] = {"name": target.name or "", "group": target.rtype.group,
                                   "kind": target.rtype.plural}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
            details["retryAfterSeconds"] = fault.retry_after
        message = {
            429: "the server has received too many requests and has asked us to try again later",
            409: f"Operation cannot be fulfilled on {target.rtype.qualified} \"{target.name or ''}\": "
                 "injected conflict",
            503: "the server is currently unable to handle the request",
        }.get(fault.status, f"injected fault: HTTP {fault.status}")
        self._error(ApiError(fault.status, message, details=details, headers=headers))
        return True

    @staticmethod
    def _body(raw: bytes, content_type: str) -> Any:
        if not raw:
            return None
        try:
            if "yaml" in content_type:
                return yamlsafe.load_one(raw, source="request body")
            return yamlsafe.loads_json(raw, source="request body")
        except yamlsafe.YamlError as exc:
            raise ApiError(400, str(exc)) from None

    def _watch(self, ctx: Context, target: verbs.Target, query: dict[str, str]) -> None:
        started = False

        def start() -> None:
            nonlocal started
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            started = True

        def write(frame: dict[str, Any]) -> None:
            if not started:
                start()
            data = json.dumps(frame, separators=(",", ":")).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        # Errors in the query (bad selector, bad resourceVersion) raise before the first frame, so they
        # still become an ordinary error response; once frames flow, a failure can only end the stream.
        try:
            watch.stream(ctx.core, target, query, write, stopping=ctx.stopping,
                         bookmark_interval=ctx.bookmark_interval)
        except Exception:
            if not started:
                raise
            log.exception("sandbox: watch of %s failed; closing the stream", target.rtype.qualified)
            self.close_connection = True
            return
        if not started:
            start()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
