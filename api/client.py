"""A small typed HTTP client of the syncwarden API, for the CLI's server mode (and the benchmark).

Who calls: :mod:`api.cli.remote` (``--server`` / the stored login) on behalf of ``proj``, ``audit``, ``check``,
``login`` and the app commands. It is the only ``httpx`` importer in the packages.

Every failure becomes one of three exceptions, parsed from the API's one error shape (``{"error", "message",
"violations", "request_id"}``), and each carries the CLI's exit code::

    ClientError                  (base; never holds the token)
    ├── Denied        exit 1     403: the decision's violations
    ├── Rejected      exit 2     any other 4xx: bad input, unknown name, conflict, 401
    └── Unavailable   exit 3     5xx, connection refused, timeout, a reply that is not the API's JSON

The bearer token lives only in the request headers: it is not part of ``repr()``, of any message, or of the
exceptions (httpx's own messages name the URL, never the headers).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

__all__ = [
    "DEFAULT_TIMEOUT",
    "Client",
    "ClientError",
    "Denied",
    "Rejected",
    "Unavailable",
    "normalize_server",
    "path",
]

#: seconds for connect, read, write and pool waits; a check or a list answers well within this
DEFAULT_TIMEOUT = 30.0

Params = Mapping[str, str | int | bool | None]


@dataclass
class ClientError(Exception):
    """A request that did not succeed. ``status`` is 0 when no HTTP answer came back."""

    message: str
    status: int = 0
    code: str = ""
    violations: list[dict[str, Any]] = field(default_factory=list)
    request_id: str = ""
    exit_code: int = 2

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class Denied(ClientError):
    """403: the policy said no; ``violations`` say why."""


class Rejected(ClientError):
    """Any other 4xx: the request itself was wrong (input, name, version, credentials)."""


class Unavailable(ClientError):
    """5xx, or no usable answer at all: retry later."""


def normalize_server(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash; ValueError naming what is wrong."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"server {url!r} must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"server {url!r} must not carry credentials, a query or a fragment")
    return text


def path(*segments: str) -> str:
    """``/api/v1/...`` from segments, each percent-encoded (a name can never change the route)."""
    return "/" + "/".join(quote(s, safe="") if i else s for i, s in enumerate(segments))


def _error_from(response: httpx.Response) -> ClientError:
    status = response.status_code
    code, message, violations, request_id = "", "", [], ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("error", ""))
        message = str(body.get("message", ""))
        raw = body.get("violations")
        violations = [v for v in raw if isinstance(v, dict)] if isinstance(raw, list) else []
        request_id = str(body.get("request_id", ""))
    if not message:
        message = f"the server answered {status} {response.reason_phrase}".rstrip()
    if status == 401 and code == "unauthenticated":
        message += " (log in with `syncwarden login`, or give --auth-token / SYNCWARDEN_TOKEN)"
    kind: type[ClientError]
    exit_code: int
    if status == 403:
        kind, exit_code = Denied, 1
    elif 400 <= status < 500:
        kind, exit_code = Rejected, 2
    else:
        kind, exit_code = Unavailable, 3
    return kind(message=message, status=status, code=code, violations=violations, request_id=request_id,
                exit_code=exit_code)


class Client:
    """Requests to one syncwarden server with one bearer token (or none). Use as a context manager."""

    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = normalize_server(server)
        headers = {"Accept": "application/json", "User-Agent": "syncwarden-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout, transport=transport,
                                  follow_redirects=False)

    def __repr__(self) -> str:
        return f"Client(server={self.server!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- requests ---------------------------------------------------------------------------------------

    def _send(self, method: str, url: str, *, params: Params | None, json: Any, stream: bool) -> httpx.Response:
        query = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (params or {}).items()
                 if v is not None}
        try:
            request = self._http.build_request(method, url, params=query, json=json)
            response = self._http.send(request, stream=stream)
        except httpx.TimeoutException:
            raise Unavailable(message=f"{self.server}: no answer in time ({method} {url}); try again",
                              exit_code=3) from None
        except httpx.TransportError as exc:
            raise Unavailable(message=f"{self.server}: cannot connect ({type(exc).__name__}); try again",
                              exit_code=3) from None
        if response.status_code >= 400:
            if stream:
                response.read()
                response.close()
            raise _error_from(response)
        return response

    def request(self, method: str, url: str, *, params: Params | None = None, json: Any = None) -> Any:
        """The decoded JSON answer (None for 204); raises a :class:`ClientError` on failure."""
        return self.exchange(method, url, params=params, json=json)[0]

    def exchange(self, method: str, url: str, *, params: Params | None = None,
                 json: Any = None) -> tuple[Any, Mapping[str, str]]:
        """:meth:`request`, with the answer's headers (case-insensitive keys)."""
        response = self._send(method, url, params=params, json=json, stream=False)
        if response.status_code == 204 or not response.content:
            return None, response.headers
        try:
            return response.json(), response.headers
        except ValueError:
            raise Unavailable(message=f"{self.server}: {method} {url} did not answer JSON; is this a syncwarden "
                                      "server?", status=response.status_code, exit_code=3) from None

    def get(self, url: str, *, params: Params | None = None) -> Any:
        return self.request("GET", url, params=params)

    def post(self, url: str, json: Any = None, *, params: Params | None = None) -> Any:
        return self.request("POST", url, params=params, json=json)

    def put(self, url: str, json: Any = None) -> Any:
        return self.request("PUT", url, json=json)

    def delete(self, url: str, *, params: Params | None = None) -> Any:
        return self.request("DELETE", url, params=params)

    def text(self, url: str, *, params: Params | None = None) -> str:
        """A non-JSON answer (an iCalendar file) as text."""
        return self._send("GET", url, params=params, json=None, stream=False).text

    def stream(self, url: str, *, params: Params | None = None) -> Iterator[str]:
        """A streamed answer (audit export) chunk by chunk, in constant memory."""
        response = self._send("GET", url, params=params, json=None, stream=True)
        try:
            yield from response.iter_text()
        except httpx.TransportError as exc:
            raise Unavailable(message=f"{self.server}: the stream broke off ({type(exc).__name__}); try again",
                              exit_code=3) from None
        finally:
            response.close()

    # --- the calls the CLI makes more than once ---------------------------------------------------------

    def login(self, username: str, password: str) -> str:
        body = self.post("/api/v1/session", {"username": username, "password": password})
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise Unavailable(message=f"{self.server}: the login answer holds no token", exit_code=3)
        return token

    def items(self, url: str, *, params: Params | None = None) -> Sequence[dict[str, Any]]:
        """The ``items`` of a list answer."""
        body = self.get(url, params=params)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise Unavailable(message=f"{self.server}: GET {url} answered no item list", exit_code=3)
        return items
