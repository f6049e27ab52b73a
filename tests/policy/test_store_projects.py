"""policy.store projects and RBAC policy versions, on SQLite and PostgreSQL.

Covered: a project round-trips exactly (absent vs empty lists, key order); create/get/list/update/delete;
a write is validated before it is stored (the error names the field and nothing changes); optimistic
concurrency; every change is audited in its own transaction and a rejected write as ``rejected``; a change
is refused when its audit record cannot be written; RBAC policy versions with author and time, a bad
policy rejected whole, the live policy swapped atomically and the last good one kept.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from policy import audit
from policy import tokens as token_crypto
from policy.errors import ConflictError, InvalidPolicy, InvalidProject
from policy.store import LivePolicy, NotFound, Store, audit_read, open_store

T0 = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
RING = token_crypto.KeyRing(token_crypto.SigningKey("kid", b"b" * 32))
ALICE = audit.AuditContext(subject="alice", client="10.1.1.1", request_id="r-1")


def manifest(name: str = "web", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "description": "web apps",
        "sourceRepos": ["https://git.example/web/*"],
        "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "web-*"}],
        "clusterResourceWhitelist": [],
        "roles": [{"name": "ci", "policies": [f"p, proj:{name}:ci, applications, sync, {name}/*, allow"]}],
    }
    body.update(spec)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": name}, "spec": body}


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url, keyring=RING)
    try:
        yield opened
    finally:
        opened.close()


def actions(store: Store) -> list[tuple[str, str, str]]:
    return [(r.action, r.result, r.project) for r in audit_read.iter_records(store.engine)]


def test_round_trip_is_exact(store: Store) -> None:
    m = manifest(namespaceResourceBlacklist=[{"group": "", "kind": "ResourceQuota"}])
    del m["spec"]["description"]
    stored = store.projects.create(m, ctx=ALICE, now=T0)
    got = store.projects.get("web")
    assert got.manifest == m and list(got.manifest["spec"]) == list(m["spec"])
    assert got.manifest["spec"]["clusterResourceWhitelist"] == []  # empty list kept
    assert "namespaceResourceWhitelist" not in got.manifest["spec"]  # absent stays absent
    assert (stored.version, stored.updated_by, stored.created_at) == (1, "alice", T0)
    assert got.project().to_dict() == m


def test_create_list_update_delete(store: Store) -> None:
    store.projects.create(manifest("web"), ctx=ALICE, now=T0)
    store.projects.create(manifest("api"), ctx=ALICE, now=T0)
    assert [p.name for p in store.projects.list()] == ["api", "web"]
    changed = manifest("web", description="changed")
    updated = store.projects.update(changed, ctx=ALICE, now=T0 + timedelta(minutes=1), expected_version=1)
    assert updated.version == 2 and updated.manifest["spec"]["description"] == "changed"
    assert updated.updated_at == T0 + timedelta(minutes=1)
    store.projects.delete("web", ctx=ALICE, now=T0)
    assert store.projects.find("web") is None
    with pytest.raises(NotFound, match="'web' not found"):
        store.projects.get("web")
    assert actions(store) == [
        ("project.create", "ok", "web"),
        ("project.create", "ok", "api"),
        ("project.update", "ok", "web"),
        ("project.delete", "ok", "web"),
    ]
    first = next(audit_read.iter_records(store.engine))
    assert (first.subject, first.client, first.request_id) == ("alice", "10.1.1.1", "r-1")


def test_invalid_project_is_not_stored_and_names_the_field(store: Store) -> None:
    bad = manifest(destinations=[{"server": 5, "namespace": "x"}])
    with pytest.raises(InvalidProject) as info:
        store.projects.create(bad, ctx=ALICE, now=T0, source="web.yaml")
    assert "spec.destinations[0]" in str(info.value) and "web.yaml" in str(info.value)
    assert store.projects.list() == []
    with pytest.raises(InvalidProject, match="apiVersion"):
        store.projects.create({"sourceRepos": ["*"]}, ctx=ALICE, now=T0)
    assert actions(store) == [("project.create", "rejected", "web"), ("project.create", "rejected", "")]


def test_invalid_update_keeps_the_stored_project(store: Store) -> None:
    store.projects.create(manifest(), ctx=ALICE, now=T0)
    with pytest.raises(InvalidProject):
        store.projects.update(manifest(sourceRepos="nope"), ctx=ALICE, now=T0)
    assert store.projects.get("web").version == 1


def test_conflicts(store: Store) -> None:
    store.projects.create(manifest(), ctx=ALICE, now=T0)
    with pytest.raises(ConflictError, match="already exists"):
        store.projects.create(manifest(), ctx=ALICE, now=T0)
    store.projects.update(manifest(description="a"), ctx=ALICE, now=T0, expected_version=1)
    with pytest.raises(ConflictError, match="version 2, not 1"):
        store.projects.update(manifest(description="b"), ctx=ALICE, now=T0, expected_version=1)
    with pytest.raises(ConflictError):
        store.projects.delete("web", ctx=ALICE, now=T0, expected_version=1)
    with pytest.raises(NotFound):
        store.projects.update(manifest("ghost"), ctx=ALICE, now=T0)
    assert store.projects.get("web").manifest["spec"]["description"] == "a"
    assert [a[1] for a in actions(store)].count("rejected") == 4


def test_concurrent_updates_with_expected_version_one_wins(store: Store) -> None:
    store.projects.create(manifest(), ctx=ALICE, now=T0)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            store.projects.update(manifest(description=f"d{i}"), ctx=ALICE, now=T0, expected_version=1)
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]
    assert store.projects.get("web").version == 2


def test_change_refused_when_audit_cannot_be_written(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE audit_records"))
    with pytest.raises(audit.AuditUnavailable):
        store.projects.create(manifest(), ctx=ALICE, now=T0)
    assert store.projects.find("web") is None


def test_secrets_in_a_manifest_do_not_reach_the_audit_log(store: Store) -> None:
    m = manifest(description="see https://bob:hunter2@git.example/x")
    store.projects.create(copy.deepcopy(m), ctx=ALICE, now=T0)
    with pytest.raises(InvalidProject):
        store.projects.update(manifest(sourceRepos=[{"password": "hunter2"}]), ctx=ALICE, now=T0)
    exported = "".join(audit_read.export_jsonl(audit_read.iter_records(store.engine)))
    assert "hunter2" not in exported


# --- RBAC policy -----------------------------------------------------------------------------------------

GOOD = "p, role:dev, applications, get, */*, allow\ng, alice, role:dev\n"


def test_policy_versions_are_kept_with_author_and_time(store: Store) -> None:
    assert store.rbac.current() is None
    first = store.rbac.set(GOOD, ctx=ALICE, now=T0, expected_version=0, comment="initial")
    second = store.rbac.set(
        GOOD + "p, role:dev, applications, sync, */*, allow\n", ctx=ALICE, now=T0 + timedelta(hours=1),
        default_role="role:readonly", expected_version=1,
    )  # fmt: skip
    assert (first.version, second.version) == (1, 2)
    assert [p.version for p in store.rbac.history()] == [2, 1]
    assert store.rbac.get(1).policy_csv == GOOD and store.rbac.get(1).comment == "initial"
    assert (second.author, second.created_at, second.default_role) == (
        "alice",
        T0 + timedelta(hours=1),
        "role:readonly",
    )
    with pytest.raises(ConflictError, match="version 2, not 1"):
        store.rbac.set(GOOD, ctx=ALICE, now=T0, expected_version=1)
    with pytest.raises(NotFound):
        store.rbac.get(9)
    assert [a[:2] for a in actions(store)] == [
        ("rbac.update", "ok"),
        ("rbac.update", "ok"),
        ("rbac.update", "rejected"),
    ]


def test_bad_policy_rejected_whole_and_live_policy_swaps(store: Store) -> None:
    live = LivePolicy(store.rbac)
    assert live.refresh() and live.version == 0
    assert not live.authorizer().enforce("alice", "applications", "get", "web/app")
    store.rbac.set(GOOD, ctx=ALICE, now=T0)
    assert live.refresh() and live.version == 1
    assert live.authorizer().enforce("alice", "applications", "get", "web/app")
    with pytest.raises(InvalidPolicy, match="line 3"):
        store.rbac.set(GOOD + "p, role:dev, applications, get, */*, ALLOW\n", ctx=ALICE, now=T0)
    assert store.rbac.current().version == 1  # type: ignore[union-attr]
    assert live.refresh() and live.version == 1


def test_live_policy_keeps_last_good_when_a_stored_version_does_not_compile(store: Store) -> None:
    store.rbac.set(GOOD, ctx=ALICE, now=T0)
    live = LivePolicy(store.rbac)
    live.refresh()
    before = live.authorizer()
    with store.engine.begin() as conn:  # a version written by something that skipped validation
        conn.execute(
            sa.text(
                "INSERT INTO policy_rbac (version, policy_csv, default_role, match_mode, author, created_at, comment) "
                "VALUES (2, 'p, x, nonsense', NULL, 'glob', 'mallory', 0, '')"
            )
        )
    assert live.refresh() is False
    assert live.version == 1 and live.authorizer() is before
