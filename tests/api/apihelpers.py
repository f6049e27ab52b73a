"""Helpers for the HTTP API tests: an app on a fresh database with a fixed clock, a fast password hash, and the
announced admin password captured instead of printed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from api.state import Services
from config.settings import ApiSettings, Settings
from policy.accounts import PasswordHasher

#: scrypt at n=2**8: fast enough for hundreds of logins in a test, same code path as production
FAST_HASHER = PasswordHasher(n=2**8, r=8, p=1)
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SIGNING_KEY = "k" * 48


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class Harness:
    client: TestClient
    clock: Clock
    admin_password: str
    announced: list[str] = field(default_factory=list)
    refreshed: list[tuple[str, str]] = field(default_factory=list)

    def login(self, username: str = "admin", password: str | None = None) -> str:
        response = self.client.post("/api/v1/session",
                                    json={"username": username, "password": password or self.admin_password})
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.login()}"}

    @property
    def state(self) -> Any:
        return self.client.app.state.syncwarden  # type: ignore[attr-defined]


def settings_for(tmp_path: Path, database_url: str, **api: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", database={"url": database_url},  # type: ignore[arg-type]
                    policy={"signing_key": SIGNING_KEY}, api=ApiSettings(**api))  # type: ignore[arg-type]


@contextmanager
def harness(
    tmp_path: Path, database_url: str, *, api: dict[str, Any] | None = None, raise_server_exceptions: bool = True,
    **services: Any,
) -> Iterator[Harness]:
    clock = Clock()
    announced: list[str] = []
    refreshed: list[tuple[str, str]] = []
    base = Services(clock=clock, hasher=FAST_HASHER, announce=announced.append, policy_refresh_seconds=0.0,
                    refresh=lambda url, rev: refreshed.append((url, rev)))
    chosen = replace(base, **services)
    app = create_app(settings_for(tmp_path, database_url, **(api or {})), services=chosen)
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        password = announced[0].removeprefix("initial admin password: ") if announced else ""
        yield Harness(client, clock, password, announced, refreshed)


def project_manifest(name: str = "web", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sourceRepos": ["https://github.com/acme/*"],
        "destinations": [{"server": "https://kubernetes.default.svc", "namespace": f"{name}-*"}],
        "namespaceResourceWhitelist": [{"group": "*", "kind": "*"}],
    }
    body.update(spec)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": name}, "spec": body}
