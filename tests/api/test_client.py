"""``api.client.Client``: the API's one error shape parsed into Denied (exit 1) / Rejected (2) / Unavailable (3),
timeouts and refused connections as Unavailable, URL validation, path encoding, and the token never showing up
in ``repr`` or in any error message.

The server side is an ``httpx.MockTransport`` answering like the API (the fake is the server, not the client),
or a real socket that accepts and never answers (the timeout), or a closed port (connection refused). The real
server is exercised in ``tests/e2e/test_cli_server_mode.py``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest

from api import client

TOKEN = "proj-secret-token-value"


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> client.Client:
    return client.Client("http://api.test", token=TOKEN, transport=httpx.MockTransport(handler))


def error(status: int, code: str, message: str, violations: list[dict[str, str]] | None = None) -> httpx.Response:
    body: dict[str, object] = {"error": code, "message": message, "request_id": "req-1"}
    if violations is not None:
        body["violations"] = violations
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("status", "code", "kind", "exit_code"),
    [
        pytest.param(403, "forbidden", client.Denied, 1, id="403-denied"),
        pytest.param(401, "unauthenticated", client.Rejected, 2, id="401-rejected"),
        pytest.param(404, "not-found", client.Rejected, 2, id="404-rejected"),
        pytest.param(409, "conflict", client.Rejected, 2, id="409-rejected"),
        pytest.param(422, "invalid", client.Rejected, 2, id="422-rejected"),
        pytest.param(429, "too-many-requests", client.Rejected, 2, id="429-rejected"),
        pytest.param(500, "internal", client.Unavailable, 3, id="500-unavailable"),
        pytest.param(503, "unavailable", client.Unavailable, 3, id="503-unavailable"),
    ],
)
def test_error_shape_maps_onto_exceptions_and_exit_codes(
    status: int, code: str, kind: type[client.ClientError], exit_code: int
) -> None:
    violation = {"code": "rbac.denied", "message": "no", "field": "", "rule": "p, x"}
    api = mock(lambda request: error(status, code, "the message", [violation]))
    with pytest.raises(kind) as caught:
        api.get("/api/v1/projects")
    exc = caught.value
    assert (exc.status, exc.code, exc.exit_code, exc.request_id) == (status, code, exit_code, "req-1")
    assert exc.message.startswith("the message")
    assert exc.violations == [violation]


def test_unauthenticated_says_how_to_log_in() -> None:
    api = mock(lambda request: error(401, "unauthenticated", "missing, invalid or expired bearer token"))
    with pytest.raises(client.Rejected, match="syncwarden login"):
        api.get("/api/v1/projects")


def test_an_answer_that_is_not_the_error_shape_still_classifies() -> None:
    api = mock(lambda request: httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(client.Unavailable, match="502") as caught:
        api.get("/api/v1/projects")
    assert caught.value.exit_code == 3 and caught.value.violations == []


def test_a_success_that_is_not_json_is_unavailable() -> None:
    api = mock(lambda request: httpx.Response(200, text="hello"))
    with pytest.raises(client.Unavailable, match="syncwarden server"):
        api.get("/healthz")


def test_bearer_token_query_and_body_are_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [{"name": "web"}]})

    api = mock(handler)
    assert api.items("/api/v1/projects", params={"limit": 5, "newestFirst": True, "cursor": None}) == [
        {"name": "web"}]
    api.post("/api/v1/projects", {"project": {"a": 1}})
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert dict(seen[0].url.params) == {"limit": "5", "newestFirst": "true"}
    assert json.loads(seen[1].content) == {"project": {"a": 1}}


def test_no_token_no_authorization_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    api = client.Client("http://api.test", transport=httpx.MockTransport(handler))
    assert api.delete("/api/v1/session") is None
    assert "authorization" not in seen[0].headers


def test_login_returns_the_session_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content) == {"username": "admin", "password": "pw"}
        return httpx.Response(200, json={"token": "sw-session"})

    assert mock(handler).login("admin", "pw") == "sw-session"


def test_stream_yields_chunks_and_errors_are_parsed() -> None:
    api = mock(lambda request: httpx.Response(200, text='{"seq": 1}\n{"seq": 2}\n'))
    assert "".join(api.stream("/api/v1/audit/export")) == '{"seq": 1}\n{"seq": 2}\n'
    denied = mock(lambda request: error(403, "forbidden", "audit export denied"))
    with pytest.raises(client.Denied, match="audit export denied"):
        list(denied.stream("/api/v1/audit/export"))


def test_refused_connection_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with client.Client(f"http://127.0.0.1:{port}", token=TOKEN) as api, pytest.raises(client.Unavailable) as caught:
        api.get("/healthz")
    assert caught.value.exit_code == 3 and "cannot connect" in caught.value.message
    assert TOKEN not in str(caught.value)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listening socket that never answers (the kernel accepts the connection into the backlog)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_a_server_that_never_answers_times_out(silent_port: int) -> None:
    api = client.Client(f"http://127.0.0.1:{silent_port}", token=TOKEN, timeout=0.3)
    with api, pytest.raises(client.Unavailable, match="no answer in time") as caught:
        api.get("/api/v1/projects")
    assert caught.value.exit_code == 3
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["ftp://host", "127.0.0.1:8080", "http://", "http://user:pw@host", "http://host/?x=1", "http://host/#f"],
)
def test_bad_server_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="server"):
        client.Client(url)


def test_server_url_is_normalised_and_the_token_is_not_in_repr() -> None:
    api = client.Client("https://sw.example.com:8443/prefix/", token=TOKEN)
    assert api.server == "https://sw.example.com:8443/prefix"
    assert TOKEN not in repr(api)
    api.close()


def test_path_segments_are_encoded() -> None:
    assert client.path("api/v1/projects", "a/b", "roles", "r ?#") == "/api/v1/projects/a%2Fb/roles/r%20%3F%23"
