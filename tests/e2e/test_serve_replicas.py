"""Two ``syncwarden serve`` replicas on one PostgreSQL share the apps: each app is reconciled by exactly one of
them (what each reports in ``/metrics`` is disjoint, and every app has one lease), and when one is killed the
other takes its apps over within the bound (``--lease-seconds`` plus a pass). Needs SYNCWARDEN_TEST_DATABASE_URL."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import sandbox
from sync import kube
from sync.cluster_registry import ClusterRegistry
from tests.e2e.servekit import ServeProcess, wait_for
from tests.pgschema import private_schema
from tests.sync.gitfixtures import GitRepo

PG_URL = os.environ.get("SYNCWARDEN_TEST_DATABASE_URL", "")
APPS = [f"app{i}" for i in range(6)]
LEASE_SECONDS = 2.0
INTERVAL = 0.2

pytestmark = [pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.skipif(not PG_URL, reason="SYNCWARDEN_TEST_DATABASE_URL is not set")]


@pytest.fixture
def pg_url() -> Iterator[str]:
    with private_schema(PG_URL) as url:
        yield url


def _reported(serve: ServeProcess) -> set[str]:
    """The apps this replica reports in ``syncwarden_app_info`` (the ones it reconciles)."""
    text = serve.http.get("/metrics").text
    return set(re.findall(r'^syncwarden_app_info\{[^}]*name="([^"]+)"', text, flags=re.MULTILINE))


def _owners(url: str) -> dict[str, str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT name, owner FROM sync_app_leases WHERE expires_at > :now"),
                                {"now": int(time.time() * 1_000_000)}).all()
    finally:
        engine.dispose()
    return {r.name: r.owner for r in rows}


def test_two_replicas_share_apps_and_take_over_from_a_dead_one(tmp_path: Path, pg_url: str) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write({f"{name}/cm.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: '1'\n"
                for name in APPS})
    repo.commit("apps")
    with sandbox.start(port=0, tick_interval=0.05) as sb:
        kubeconfig = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
        cluster = kube.connect(ClusterRegistry.load([kubeconfig], environ={}).get("sandbox"), timeout_seconds=10)
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shared"}})
        cluster.close()
        common = {"SYNCWARDEN_DATABASE_URL": pg_url, "SYNCWARDEN_SIGNING_KEY": "s" * 48,
                  "SYNCWARDEN_SYNC__ALLOW_FILE_URLS": "true", "SYNCWARDEN_SYNC__POLL_INTERVAL_SECONDS": "1",
                  "SYNCWARDEN_SYNC__POLL_JITTER_SECONDS": "0", "SYNCWARDEN_SYNC__LS_REMOTE_INTERVAL_SECONDS": "0"}
        args = ["--no-examples", "--kubeconfig", str(kubeconfig), "--context", "sandbox", "--interval", str(INTERVAL),
                "--lease-seconds", str(LEASE_SECONDS)]
        a = ServeProcess(tmp_path, *args, "--replica-id", "replica-a",
                         env={**common, "SYNCWARDEN_DATA_DIR": str(tmp_path / "a")})
        b: ServeProcess | None = None
        try:
            a.wait_ready()
            b = ServeProcess(tmp_path, *args, "--replica-id", "replica-b",
                             env={**common, "SYNCWARDEN_DATA_DIR": str(tmp_path / "b")})
            b.wait_ready()
            password = a.password() or b.password()
            assert password and not (a.password() and b.password())  # one admin password per installation
            admin = a.login(password)
            for name in APPS:
                manifest = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                            "metadata": {"name": name, "namespace": "syncwarden"},
                            "spec": {"project": "default",
                                     "source": {"repoURL": repo.url, "path": name, "targetRevision": "main"},
                                     "destination": {"server": "https://kubernetes.default.svc",
                                                     "namespace": "shared"}}}
                created = b.http.post("/api/v1/applications", headers=b.login(password),
                                      json={"application": manifest}) if name == "app0" else a.http.post(
                    "/api/v1/applications", headers=admin, json={"application": manifest})
                assert created.status_code == 200, created.text

            def shared() -> bool:
                assert b is not None
                on_a, on_b = _reported(a), _reported(b)
                return bool(on_a and on_b and not on_a & on_b and on_a | on_b == set(APPS))

            wait_for(shared, timeout=30, what="both replicas to reconcile a disjoint half each")
            for _ in range(5):  # and it stays that way
                owners = _owners(pg_url)
                assert set(owners) == set(APPS) and set(owners.values()) == {"replica-a", "replica-b"}
                assert shared()
                time.sleep(INTERVAL * 2)
            held_by_b = {name for name, owner in _owners(pg_url).items() if owner == "replica-b"}

            b.kill()  # no clean hand-over: the leases must expire
            killed = time.monotonic()
            wait_for(lambda: set(_owners(pg_url).values()) == {"replica-a"} and len(_owners(pg_url)) == len(APPS),
                     timeout=30, what="replica a to take every lease", interval=0.1)
            handover = time.monotonic() - killed
            wait_for(lambda: _reported(a) >= held_by_b, timeout=30, what="replica a to reconcile b's apps")
            reconciled = time.monotonic() - killed
            print(f"\nhandover after kill: leases {handover:.2f}s, reconciled {reconciled:.2f}s "
                  f"(lease {LEASE_SECONDS:g}s, pass interval {INTERVAL:g}s)")
            assert handover <= LEASE_SECONDS * 4 / 3 + 1.5  # the bound, plus the test's own polling and load
            assert a.terminate() == 0
        finally:
            a.close()
            if b is not None:
                b.close()
