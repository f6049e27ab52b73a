"""policy.store token registry on SQLite and PostgreSQL (difference 4, JWT-05, JWT-11, §3.5/§3.6).

Covered: mint and verify; unknown project/role and non-positive lifetimes refused; revocation takes effect
on the next use and a sibling minted in the same second stays valid (lookup by jti only); expiry by the
registry and bulk revocation of expired tokens; a role removed (and re-added) or a project deleted (and
recreated) does not revive old tokens; a validly signed token whose jti is unknown or names another
subject is refused; last-used times are coalesced (one write per interval); the token never reaches the
audit log, the registry or error messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from policy import audit, tokens
from policy.store import NotFound, Store, audit_read, open_store

T0 = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
RING = tokens.KeyRing(tokens.SigningKey("kid-a", b"c" * 32))
ADMIN = audit.AuditContext(subject="admin", client="cli", request_id="r")


def manifest(name: str = "web", roles: tuple[str, ...] = ("ci", "deploy")) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": name},
        "spec": {
            "sourceRepos": ["*"],
            "roles": [
                {"name": r, "policies": [f"p, proj:{name}:{r}, applications, get, {name}/*, allow"]} for r in roles
            ],
        },
    }


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url, keyring=RING, last_used_interval=60)
    opened.projects.create(manifest(), ctx=ADMIN, now=T0)
    try:
        yield opened
    finally:
        opened.close()


def mint(store: Store, role: str = "ci", **kw: Any) -> tuple[str, str]:
    issued = store.tokens.create("web", role, ctx=ADMIN, now=kw.pop("now", T0), **kw)
    return issued.token, issued.info.id


def test_mint_and_verify(store: Store) -> None:
    issued = store.tokens.create("web", "ci", ctx=ADMIN, now=T0, expires_in=timedelta(hours=1), description="pipeline")
    principal = store.tokens.verify(issued.token, now=T0 + timedelta(minutes=5))
    assert principal.subject == "proj:web:ci" and principal.token_id == issued.info.id
    info = store.tokens.get(issued.info.id)
    assert (info.project, info.role, info.issued_by, info.description) == ("web", "ci", "admin", "pipeline")
    assert info.expires_at == T0 + timedelta(hours=1) and info.revoked_at is None
    assert issued.token not in repr(issued)
    assert [i.id for i in store.tokens.list("web", "ci")] == [issued.info.id]


def test_refusals_when_minting(store: Store) -> None:
    with pytest.raises(NotFound, match="project 'nope'"):
        store.tokens.create("nope", "ci", ctx=ADMIN, now=T0)
    with pytest.raises(NotFound, match="role 'admin'"):
        store.tokens.create("web", "admin", ctx=ADMIN, now=T0)
    for bad in (timedelta(0), timedelta(seconds=-5)):
        with pytest.raises(ValueError, match="positive"):
            store.tokens.create("web", "ci", ctx=ADMIN, now=T0, expires_in=bad)


def test_revoked_token_fails_and_same_second_sibling_survives(store: Store) -> None:
    first, first_id = mint(store)
    second, _ = mint(store)
    assert store.tokens.revoke("web", "ci", first_id, ctx=ADMIN, now=T0) is not None
    with pytest.raises(tokens.InvalidToken, match="revoked"):
        store.tokens.verify(first, now=T0)
    assert store.tokens.verify(second, now=T0).role == "ci"
    assert store.tokens.revoke("web", "ci", "no-such-id", ctx=ADMIN, now=T0) is None
    assert store.tokens.revoke("web", "deploy", first_id, ctx=ADMIN, now=T0) is None  # wrong role: no-op


def test_expiry_and_bulk_revocation(store: Store) -> None:
    short, short_id = mint(store, expires_in=timedelta(minutes=10))
    forever, _ = mint(store)
    late = T0 + timedelta(minutes=10, seconds=tokens.LEEWAY_SECONDS + 1)
    with pytest.raises(tokens.InvalidToken, match="expired"):
        store.tokens.verify(short, now=late)
    assert store.tokens.verify(forever, now=late)
    assert store.tokens.revoke_expired(ctx=ADMIN, now=late) == 1
    assert store.tokens.get(short_id).state(now=late) == "revoked"
    assert store.tokens.revoke_expired(ctx=ADMIN, now=late) == 0


def test_removed_role_does_not_come_back(store: Store) -> None:
    token, token_id = mint(store, role="deploy")
    other, _ = mint(store, role="ci")
    store.projects.update(manifest(roles=("ci",)), ctx=ADMIN, now=T0)
    with pytest.raises(tokens.InvalidToken):
        store.tokens.verify(token, now=T0)
    store.projects.update(manifest(roles=("ci", "deploy")), ctx=ADMIN, now=T0)
    with pytest.raises(tokens.InvalidToken, match="unknown token"):
        store.tokens.verify(token, now=T0)
    with pytest.raises(NotFound):
        store.tokens.get(token_id)
    assert store.tokens.verify(other, now=T0).role == "ci"


def test_role_removed_behind_the_stores_back_is_refused(store: Store) -> None:
    token, _ = mint(store, role="deploy")
    with store.engine.begin() as conn:  # manifest edited directly in the database: rows still there
        conn.execute(
            sa.text("UPDATE policy_projects SET manifest = :m, version = version + 1 WHERE name = 'web'"),
            {"m": json.dumps(manifest(roles=("ci",)))},
        )
    with pytest.raises(tokens.InvalidToken, match="role no longer exists"):
        store.tokens.verify(token, now=T0)


def test_deleted_and_recreated_project_does_not_revive_tokens(store: Store) -> None:
    token, _ = mint(store)
    store.projects.delete("web", ctx=ADMIN, now=T0)
    store.projects.create(manifest(), ctx=ADMIN, now=T0)
    with pytest.raises(tokens.InvalidToken):
        store.tokens.verify(token, now=T0)
    assert store.tokens.list("web") == []


def test_recreated_project_with_surviving_rows_is_refused(store: Store) -> None:
    token, _ = mint(store)
    with store.engine.begin() as conn:  # a new incarnation of the project, old token rows left behind
        conn.execute(sa.text("UPDATE policy_projects SET uid = 'another-incarnation' WHERE name = 'web'"))
    with pytest.raises(tokens.InvalidToken, match="project no longer exists"):
        store.tokens.verify(token, now=T0)


def test_signed_but_unregistered_or_mismatched_tokens_are_refused(store: Store) -> None:
    def sign(project: str, role: str, jti: str) -> str:
        return tokens.mint(
            keyring=RING, project=project, role=role, jti=jti, issued_at=T0, expires_at=None,
            issuer="syncwarden", audience="syncwarden",
        )  # fmt: skip

    with pytest.raises(tokens.InvalidToken, match="unknown token"):
        store.tokens.verify(sign("web", "ci", "never-registered"), now=T0)
    _, jti = mint(store, role="ci")
    with pytest.raises(tokens.InvalidToken, match="does not belong"):
        store.tokens.verify(sign("web", "deploy", jti), now=T0)


def test_last_used_is_coalesced(store: Store) -> None:
    token, token_id = mint(store)
    for second in range(30):
        store.tokens.verify(token, now=T0 + timedelta(seconds=second))
    assert store.tokens.get(token_id).last_used_at is None  # nothing written yet: no write per request
    store.tokens.verify(token, now=T0 + timedelta(seconds=61))
    assert store.tokens.get(token_id).last_used_at == T0 + timedelta(seconds=61)
    store.tokens.verify(token, now=T0 + timedelta(seconds=70))
    assert store.tokens.flush_last_used() == 1
    assert store.tokens.get(token_id).last_used_at == T0 + timedelta(seconds=70)


def test_token_never_stored_or_audited(store: Store) -> None:
    token, token_id = mint(store)
    store.tokens.revoke("web", "ci", token_id, ctx=ADMIN, now=T0)
    exported = "".join(audit_read.export_jsonl(audit_read.iter_records(store.engine)))
    assert token_id in exported and token not in exported
    assert [r.action for r in audit_read.iter_records(store.engine)][-2:] == ["token.create", "token.revoke"]
    with store.engine.connect() as conn:
        dump = repr(conn.execute(sa.text("SELECT * FROM policy_tokens")).all())
    assert token not in dump and token.split(".")[2] not in dump
