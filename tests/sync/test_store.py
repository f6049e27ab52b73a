"""The sync store (sync.store) on SQLite and PostgreSQL: apps and status.

Covers: migrations run twice without harm and use their own version table next to the policy one; create
validates the manifest (field named) and refuses a taken name; get/list (by project); update with optimistic
concurrency; the deletion mark and finalizers; status round trip; removal drops everything about the app;
the migrated schema matches the table metadata; statuses written and read in batches (all or nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from sync.application import InvalidApplication
from sync.store import (
    AppExists,
    AppNotFound,
    AppStatus,
    SyncStore,
    VersionConflict,
    db,
    open_sync_store,
    tables,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def manifest(name: str = "web", *, project: str = "default", path: str = "apps/web") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "syncwarden"},
        "spec": {
            "project": project,
            "source": {"repoURL": "https://example.com/repo.git", "path": path, "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
        },
    }


@pytest.fixture
def store(database_url: str) -> Iterator[SyncStore]:
    s = open_sync_store(database_url)
    yield s
    s.close()


def test_migrate_is_idempotent_and_uses_its_own_version_table(store: SyncStore) -> None:
    db.migrate(store.engine)
    with store.engine.connect() as conn:
        versions = conn.execute(sa.select(sa.table(db.VERSION_TABLE, sa.column("version_num")))).scalars().all()
    assert versions == ["0003"]  # 0003: applied namespace metadata, orphaned resources
    names = set(sa.inspect(store.engine).get_table_names())
    assert {t.name for t in tables.metadata.sorted_tables} <= names
    assert "alembic_version" not in names


def test_migrated_schema_matches_metadata(store: SyncStore) -> None:
    inspector = sa.inspect(store.engine)
    for table in tables.metadata.sorted_tables:
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(columns) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
        pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert sorted(pk) == sorted(c.name for c in table.primary_key.columns), table.name


def test_create_get_list(store: SyncStore) -> None:
    created = store.apps.create(manifest("web"), now=T0)
    store.apps.create(manifest("api", project="team"), now=T0)
    assert (created.namespace, created.name, created.project, created.version) == ("syncwarden", "web", "default", 1)
    assert created.created_at == T0
    assert store.apps.get("syncwarden", "web").application().source.path == "apps/web"
    assert [a.name for a in store.apps.list()] == ["api", "web"]
    assert [a.name for a in store.apps.list(project="team")] == ["api"]
    assert store.apps.find("syncwarden", "nope") is None
    with pytest.raises(AppNotFound, match="syncwarden/nope"):
        store.apps.get("syncwarden", "nope")


def test_create_refuses_invalid_manifest_and_taken_name(store: SyncStore) -> None:
    bad = manifest()
    bad["spec"]["destination"] = {"namespace": "web"}
    with pytest.raises(InvalidApplication) as err:
        store.apps.create(bad, now=T0, source="web.yaml")
    assert "spec.destination" in str(err.value) and "web.yaml" in str(err.value)
    store.apps.create(manifest(), now=T0)
    with pytest.raises(AppExists, match="already exists"):
        store.apps.create(manifest(), now=T0)
    assert store.apps.list() and len(store.apps.list()) == 1


def test_update_with_optimistic_concurrency(store: SyncStore) -> None:
    v1 = store.apps.create(manifest(), now=T0)
    v2 = store.apps.update(manifest(path="apps/v2"), now=T0 + timedelta(seconds=1), expected_version=v1.version)
    assert v2.version == 2 and v2.application().source.path == "apps/v2"
    with pytest.raises(VersionConflict, match="version 2, not 1"):
        store.apps.update(manifest(path="apps/v3"), now=T0, expected_version=1)
    assert store.apps.get("syncwarden", "web").application().source.path == "apps/v2"
    with pytest.raises(AppNotFound):
        store.apps.update(manifest("ghost"), now=T0)


def test_deletion_mark_and_finalizers(store: SyncStore) -> None:
    store.apps.create(manifest(), now=T0)
    marked = store.apps.mark_deleting(
        "syncwarden", "web", now=T0 + timedelta(seconds=5), finalizers=("resources-finalizer.argocd.argoproj.io",)
    )
    assert marked.deleting_at == T0 + timedelta(seconds=5)
    assert marked.application().finalizers == ("resources-finalizer.argocd.argoproj.io",)
    again = store.apps.mark_deleting("syncwarden", "web", now=T0 + timedelta(seconds=9))
    assert again.deleting_at == T0 + timedelta(seconds=5)  # the first mark stands
    with pytest.raises(VersionConflict, match="being deleted"):
        store.apps.update(manifest(path="x"), now=T0)
    cleared = store.apps.edit_finalizers("syncwarden", "web", remove=("resources-finalizer.argocd.argoproj.io",),
                                         now=T0)
    assert cleared.application().finalizers == () and cleared.version == again.version + 1
    # a manager of finalizers that only acts on live apps leaves a deleting one alone
    kept = store.apps.edit_finalizers("syncwarden", "web", add=("x/y",), now=T0, unless_deleting=True)
    assert kept.application().finalizers == () and kept.version == cleared.version


def test_finalizers_edited_in_place_and_kept_across_updates(store: SyncStore) -> None:
    store.apps.create(manifest(), now=T0)
    one = store.apps.edit_finalizers("syncwarden", "web", add=("a/x", "b/y"), now=T0)
    assert one.application().finalizers == ("a/x", "b/y") and one.version == 2
    same = store.apps.edit_finalizers("syncwarden", "web", add=("b/y",), remove=("c/z",), now=T0)
    assert same.version == 2  # nothing changed: nothing written
    # an update whose manifest lacks them keeps those it is told to keep, and only those
    updated = store.apps.update(manifest(path="apps/v2"), now=T0, keep_finalizers=("b/y",))
    assert updated.application().finalizers == ("b/y",) and updated.application().source.path == "apps/v2"


def test_status_round_trip_and_remove(store: SyncStore) -> None:
    store.apps.create(manifest(), now=T0)
    assert store.apps.status("syncwarden", "web").sync_status == "Unknown"
    status = AppStatus(
        sync_status="OutOfSync",
        health_status="Missing",
        health_message="m",
        revisions=("a" * 40,),
        resources=[{"kind": "ConfigMap", "name": "c", "status": "OutOfSync"}],
        conditions=[{"type": "SyncError", "message": "x", "lastTransitionTime": T0.isoformat()}],
        compared_to="h",
        reconciled_at=T0,
        next_poll_at=T0 + timedelta(seconds=200),
        orphaned_resources=[{"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "web", "name": "o"}],
    )
    store.apps.put_status("syncwarden", "web", status)
    assert store.apps.status("syncwarden", "web") == status
    assert store.apps.statuses()[("syncwarden", "web")] == status
    store.apps.put_status("syncwarden", "web", AppStatus(sync_status="Synced", health_status="Healthy"))
    assert store.apps.status("syncwarden", "web").sync_status == "Synced"
    store.operations.request_refresh("syncwarden", "web", level="hard", now=T0)
    store.apps.remove("syncwarden", "web")
    assert store.apps.find("syncwarden", "web") is None
    assert store.apps.status("syncwarden", "web") == AppStatus()
    assert store.operations.refresh_requests() == {}


def test_statuses_are_written_and_read_in_batches(store: SyncStore) -> None:
    for name in ("a", "b", "c"):
        store.apps.create(manifest(name), now=T0)
    store.apps.put_status("syncwarden", "a", AppStatus(sync_status="OutOfSync", compared_to="old"))
    first = AppStatus(sync_status="Synced", health_status="Healthy", revisions=("a" * 40,), reconciled_at=T0,
                      resources=[{"kind": "ConfigMap", "name": "x", "status": "Synced"}], compared_to="h")
    later = AppStatus(sync_status="OutOfSync", next_poll_at=T0 + timedelta(seconds=5))
    # "a" exists (updated), "b" is new (inserted); "b" listed twice keeps its last status; "c" stays unset
    store.apps.put_statuses([("syncwarden", "a", first), ("syncwarden", "b", first), ("syncwarden", "b", later)])
    assert store.apps.statuses() == {("syncwarden", "a"): first, ("syncwarden", "b"): later}
    assert store.apps.status("syncwarden", "a") == first
    assert store.apps.status("syncwarden", "c") == AppStatus()
    # only the asked-for apps (the listing of a user who sees a few): same name in another namespace left out
    assert store.apps.statuses([("syncwarden", "b"), ("syncwarden", "c"), ("elsewhere", "a")]) == {
        ("syncwarden", "b"): later}
    assert store.apps.statuses([]) == {}


def test_a_batch_that_cannot_be_written_writes_nothing(store: SyncStore) -> None:
    store.apps.create(manifest("a"), now=T0)
    store.apps.create(manifest("b"), now=T0)
    bad = AppStatus(resources=[{"value": object()}])  # not JSON: refused before anything is written
    with pytest.raises(TypeError):
        store.apps.put_statuses([("syncwarden", "a", AppStatus(sync_status="Synced")), ("syncwarden", "b", bad)])
    assert store.apps.statuses() == {}
