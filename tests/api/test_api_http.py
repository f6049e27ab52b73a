"""The API through real HTTP: uvicorn on 127.0.0.1 in a thread, httpx as the client.

Covers what only a real server shows: the body cap with and without Content-Length (chunked, HOOK-01) with the
server answering other requests afterwards, an oversized Authorization header (JWT-10), the response deadline
(504), request ids, and the latency histogram on /metrics.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.state import Services
from tests.api.apihelpers import FAST_HASHER, Clock, settings_for

CAP = 64 * 1024


class Running:
    def __init__(self, url: str, announced: list[str]) -> None:
        self.url = url
        self.announced = announced

    def token(self) -> str:
        password = self.announced[0].removeprefix("initial admin password: ")
        response = httpx.post(f"{self.url}/api/v1/session", json={"username": "admin", "password": password})
        token: str = response.json()["token"]
        return token


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    announced: list[str] = []

    def slow_refresh(url: str, revision: str) -> None:
        if "slow" in url:
            time.sleep(2.0)

    services = replace(Services(), clock=Clock(), hasher=FAST_HASHER, announce=announced.append,
                       request_timeout=0.5, refresh=slow_refresh, webhook_secrets={"gitlab": "secret"})
    app = create_app(settings_for(tmp_path, f"sqlite:///{tmp_path / 'http.db'}", max_body_bytes=CAP),
                     services=services)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="none", lifespan="on")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = instance.servers[0].sockets[0].getsockname()[1]
    yield Running(f"http://127.0.0.1:{port}", announced)
    instance.should_exit = True
    thread.join(timeout=10)


def _gitlab(body: Any = None) -> dict[str, str]:
    return {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "secret", "Content-Type": "application/json"}


def test_body_over_the_cap_with_content_length_is_413(server: Running) -> None:
    response = httpx.post(f"{server.url}/api/webhook", content=b"x" * (CAP + 1), headers=_gitlab())
    assert response.status_code == 413
    assert response.json()["error"] == "payload-too-large"
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_chunked_body_over_the_cap_is_413_without_reading_it_all(server: Running) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(4096):  # 256 MiB if it were all read
            sent += 65536
            yield b"x" * 65536

    try:
        response = httpx.post(f"{server.url}/api/webhook", content=chunks(), headers=_gitlab(), timeout=30)
        assert response.status_code == 413
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        pass  # the server answered 413 and closed the connection while we were still writing
    assert sent < 64 * 1024 * 1024
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_oversized_authorization_header_is_refused(server: Running) -> None:
    over_ours = httpx.get(f"{server.url}/api/v1/projects", headers={"Authorization": "Bearer " + "a" * 10_000})
    assert over_ours.status_code == 431 and over_ours.json()["error"] == "headers-too-large"
    try:  # 1 MB: the HTTP parser itself drops the connection before any of our code runs
        huge = httpx.get(f"{server.url}/api/v1/projects", headers={"Authorization": "Bearer " + "a" * 1_000_000})
        assert huge.status_code in (400, 431)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        pass
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_slow_request_gets_504_and_request_ids_round_trip(server: Running) -> None:
    body = b'{"ref": "refs/heads/main", "project": {"web_url": "https://git.example/slow"}}'
    started = time.monotonic()
    response = httpx.post(f"{server.url}/api/webhook", content=body, headers={**_gitlab(), "X-Request-ID": "abc-123"},
                          timeout=10)
    assert response.status_code == 504
    assert time.monotonic() - started < 1.9
    assert response.json() == {"error": "timeout", "message": "no response within 0.5 seconds; try again",
                               "request_id": "abc-123"}
    assert response.headers["X-Request-ID"] == "abc-123"
    odd = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "no spaces allowed"})
    assert odd.headers["X-Request-ID"] != "no spaces allowed" and len(odd.headers["X-Request-ID"]) == 32


def test_metrics_show_latency_and_decisions(server: Running) -> None:
    token = server.token()
    assert httpx.get(f"{server.url}/api/v1/projects/default", headers={"Authorization": f"Bearer {token}"}).is_success
    text = httpx.get(f"{server.url}/metrics").text
    assert 'syncwarden_http_request_duration_seconds_count{method="GET",route="/api/v1/projects/{name}",status="200"}' \
        in text
    assert 'syncwarden_policy_decisions_total{action="get",resource="projects",result="allowed"} 1.0' in text


def test_slow_drip_body_is_cut_off_by_the_deadline(server: Running) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /api/webhook HTTP/1.1\r\nHost: x\r\nX-Gitlab-Event: Push Hook\r\n"
                     b"X-Gitlab-Token: secret\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n")
        started = time.monotonic()
        answer = sock.recv(65536)  # the body never completes: the deadline answers
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 504")
    assert waited < 3
    assert httpx.get(f"{server.url}/healthz").status_code == 200
