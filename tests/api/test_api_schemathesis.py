"""Property-based requests generated from our own OpenAPI document (schemathesis) against a real server: no
input an admin can send makes it answer 5xx, and every response matches its documented schema and status."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from api.app import create_app
from api.state import Services
from tests.api.apihelpers import FAST_HASHER, Clock, settings_for


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    announced: list[str] = []
    services = replace(Services(), clock=Clock(), hasher=FAST_HASHER, announce=announced.append,
                       webhook_secrets={"github": "s3cret"})
    app = create_app(settings_for(tmp, f"sqlite:///{tmp / 'st.db'}"), services=services)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    password = announced[0].removeprefix("initial admin password: ")
    token = httpx.post(f"{url}/api/v1/session", json={"username": "admin", "password": password}).json()["token"]
    yield url, token
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.slow
def test_no_server_errors_for_generated_requests(live: tuple[str, str]) -> None:
    url, token = live
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    for operation in schema.get_all_operations():
        op = operation.ok()
        if op.path == "/api/v1/session" and op.method.upper() == "DELETE":
            continue  # would log the shared admin session out
        if op.path.startswith("/api/v1/applications"):
            continue  # needs the sync system: test_api_applications_fuzz.py runs these against a real one

        strategy = op.as_strategy()

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=strategy)
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

        check()
    assert failures == []
