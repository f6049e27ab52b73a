"""Fixtures for the sandbox tests: a running sandbox and the official client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

import sandbox


@pytest.fixture
def sb() -> Iterator[sandbox.Sandbox]:
    with sandbox.start() as running:
        yield running


@pytest.fixture
def api(sb: sandbox.Sandbox) -> Iterator[client.ApiClient]:
    config = client.Configuration(host=sb.url)
    with client.ApiClient(config) as api_client:
        yield api_client
