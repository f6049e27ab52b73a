"""Shared fixtures, kept few and explicit. Database URLs: a SQLite file per test, and PostgreSQL too when
SYNCWARDEN_TEST_DATABASE_URL is set (``.ci/run`` sets it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL = os.environ.get("SYNCWARDEN_TEST_DATABASE_URL", "")


def _backends() -> list[object]:
    params: list[object] = [pytest.param("sqlite", id="sqlite")]
    params.append(
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=pytest.mark.skipif(not PG_URL, reason="SYNCWARDEN_TEST_DATABASE_URL is not set"),
        )
    )
    return params


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a private schema in the test PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    from tests.pgschema import private_schema  # local: only database tests need SQLAlchemy

    with private_schema(PG_URL) as url:
        yield url
