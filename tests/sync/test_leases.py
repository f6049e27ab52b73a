"""App leases between replicas (``sync.leases`` over ``sync.store.leases``), with time as a parameter: a lone
replica holds everything, a second one gets its fair share, no app is ever held twice, a replica that stops
renewing loses its apps after ``lease_seconds``, a clean stop hands over at once, and the reconciler skips what it
does not hold."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sync.leases import AppLeases
from sync.store import SyncStore, open_sync_store
from tests.sync.reconcilekit import T0, app_manifest

LEASE = 10.0


@pytest.fixture
def store(database_url: str) -> Iterator[SyncStore]:
    opened = open_sync_store(database_url)
    for i in range(5):
        opened.apps.create(app_manifest("file:///nowhere", name=f"app{i}"), now=T0)
    try:
        yield opened
    finally:
        opened.close()


def _keys(store: SyncStore) -> list[tuple[str, str]]:
    return [(ns, name) for ns, name, _ in store.apps.names()]


def _owners(store: SyncStore) -> dict[str, str]:
    return {name: lease.owner for (_, name), lease in store.leases.leases().items()}


def test_replicas_share_without_overlap_and_take_over_a_dead_one(store: SyncStore) -> None:
    a = AppLeases(store.leases, owner="a", lease_seconds=LEASE)
    b = AppLeases(store.leases, owner="b", lease_seconds=LEASE)
    assert len(a.acquire(_keys(store), now=T0)) == 5  # alone: everything
    assert b.acquire(_keys(store), now=T0) == frozenset()  # nothing is free yet; b is now known to be alive
    t = T0 + timedelta(seconds=1)
    held_a = a.acquire(_keys(store), now=t)  # a sees two replicas: keeps its share of 3
    held_b = b.acquire(_keys(store), now=t)
    assert len(held_a) == 3 and len(held_b) == 2 and not held_a & held_b
    assert held_a | held_b == set(_keys(store))
    assert set(_owners(store).values()) == {"a", "b"}
    assert a.holds(sorted(held_a)[0]) and not a.holds(sorted(held_b)[0])

    for step in range(2, 8):  # both keep renewing: nothing moves
        now = T0 + timedelta(seconds=step)
        assert a.acquire(_keys(store), now=now) == held_a and b.acquire(_keys(store), now=now) == held_b

    # b dies at T0+7: its heartbeat and leases run out at T0+17; a takes everything then, not before
    assert a.acquire(_keys(store), now=T0 + timedelta(seconds=16)) == held_a
    assert a.acquire(_keys(store), now=T0 + timedelta(seconds=17, milliseconds=1)) == set(_keys(store))
    assert set(_owners(store).values()) == {"a"}


def test_a_clean_stop_hands_over_at_once_and_deleted_apps_drop_their_lease(store: SyncStore) -> None:
    a = AppLeases(store.leases, owner="a", lease_seconds=LEASE)
    b = AppLeases(store.leases, owner="b", lease_seconds=LEASE)
    a.acquire(_keys(store), now=T0)
    a.retire()
    assert a.held() == frozenset() and _owners(store) == {}
    assert len(b.acquire(_keys(store), now=T0 + timedelta(seconds=1))) == 5
    store.apps.remove("syncwarden", "app0")
    b.acquire(_keys(store), now=T0 + timedelta(seconds=2))
    assert "app0" not in _owners(store) and len(_owners(store)) == 4


def test_a_round_without_release_keeps_a_surplus(store: SyncStore) -> None:
    a = AppLeases(store.leases, owner="a", lease_seconds=LEASE)
    b = AppLeases(store.leases, owner="b", lease_seconds=LEASE)
    a.acquire(_keys(store), now=T0)
    b.acquire(_keys(store), now=T0)
    assert len(a.acquire(_keys(store), now=T0 + timedelta(seconds=1), release=False)) == 5
    assert b.acquire(_keys(store), now=T0 + timedelta(seconds=1)) == frozenset()


def test_the_reconciler_skips_apps_it_does_not_hold(tmp_path: Path) -> None:
    from sandbox import start
    from sync import kube
    from sync.cluster_registry import ClusterRegistry
    from tests.sync.gitfixtures import GitRepo
    from tests.sync.reconcilekit import build, configmap

    repo = GitRepo(tmp_path / "repo")
    repo.write({"app/cm.yaml": configmap("one", "1")})
    repo.commit()
    with start(port=0) as sb:
        kubeconfig = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
        cluster = kube.connect(ClusterRegistry.load([kubeconfig], environ={}).get("sandbox"), timeout_seconds=10)
        try:
            kit = build(tmp_path, cluster, repo)
            try:
                for name in ("mine", "theirs"):
                    kit.service.create(app_manifest(repo.url, name=name), now=T0)
                kit.reconciler.holds = lambda key: key[1] == "mine"
                report = kit.reconciler.run_once(T0)
                assert set(report.compared) == {("syncwarden", "mine")}
                assert kit.store.apps.status("syncwarden", "theirs").reconciled_at is None
            finally:
                kit.store.close()
        finally:
            cluster.close()
