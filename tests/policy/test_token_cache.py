"""The verified-token cache of the registry (policy.store.token_cache), on SQLite and PostgreSQL.

Covered: a repeated token is answered without reading the registry (a change made behind this replica's back —
another replica — is seen only once the interval has passed); a revocation, bulk revocation of expired tokens,
a role removed or a project deleted through this replica take effect on the very next request; a cached token
still expires at its own time and when its signing key's grace period ends; ``verify_cached`` answers only from
memory and refuses to answer when the last-used times are due to be written; interval 0 reads every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from policy import tokens
from policy.store import Store, open_store, tables
from policy.store.token_cache import VerifiedCache
from tests.policy.test_tokens_registry import ADMIN, manifest

T0 = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
TTL = 2.0
RING = tokens.KeyRing(tokens.SigningKey("kid-a", b"c" * 32))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url, keyring=RING, last_used_interval=60, verify_cache_seconds=TTL)
    opened.projects.create(manifest(), ctx=ADMIN, now=T0)
    try:
        yield opened
    finally:
        opened.close()


def _revoke_behind_the_back(store: Store, token_id: str) -> None:
    """What another replica's revocation looks like from here: the row changes, this process is not told."""
    with store.engine.begin() as conn:
        conn.execute(sa.update(tables.tokens).where(tables.tokens.c.id == token_id).values(revoked_at=1))


def test_a_change_by_another_replica_is_seen_within_the_interval(store: Store) -> None:
    issued = store.tokens.create("web", "ci", ctx=ADMIN, now=T0)
    assert store.tokens.verify_cached(issued.token, now=T0) is None  # nothing verified yet
    assert store.tokens.verify(issued.token, now=T0).token_id == issued.info.id
    _revoke_behind_the_back(store, issued.info.id)
    # within the interval the cached answer stands (the documented bound for changes made elsewhere)
    assert store.tokens.verify_cached(issued.token, now=T0 + timedelta(seconds=1)) is not None
    assert store.tokens.verify(issued.token, now=T0 + timedelta(seconds=1)).token_id == issued.info.id
    # once it has passed, the registry is read again and the revocation holds
    with pytest.raises(tokens.InvalidToken, match="revoked"):
        store.tokens.verify(issued.token, now=T0 + timedelta(seconds=TTL))
    assert store.tokens.verify_cached(issued.token, now=T0 + timedelta(seconds=TTL)) is None


def test_revocation_through_this_replica_takes_effect_at_once(store: Store) -> None:
    issued = store.tokens.create("web", "ci", ctx=ADMIN, now=T0)
    store.tokens.verify(issued.token, now=T0)
    store.tokens.revoke("web", "ci", issued.info.id, ctx=ADMIN, now=T0)
    assert store.tokens.verify_cached(issued.token, now=T0) is None
    with pytest.raises(tokens.InvalidToken, match="revoked"):
        store.tokens.verify(issued.token, now=T0)


def test_bulk_revocation_of_expired_tokens_invalidates_the_cache(store: Store) -> None:
    issued = store.tokens.create("web", "ci", ctx=ADMIN, now=T0, expires_in=timedelta(hours=1))
    store.tokens.verify(issued.token, now=T0)
    later = T0 + timedelta(hours=2)
    store.tokens.revoke_expired(ctx=ADMIN, now=later)
    with pytest.raises(tokens.InvalidToken):
        store.tokens.verify(issued.token, now=T0 + timedelta(seconds=1))


def test_role_removed_or_project_deleted_through_this_replica_takes_effect_at_once(store: Store) -> None:
    issued = store.tokens.create("web", "ci", ctx=ADMIN, now=T0)
    store.tokens.verify(issued.token, now=T0)
    store.projects.update(manifest(roles=("deploy",)), ctx=ADMIN, now=T0)
    assert store.tokens.verify_cached(issued.token, now=T0) is None
    with pytest.raises(tokens.InvalidToken):
        store.tokens.verify(issued.token, now=T0)

    deploy = store.tokens.create("web", "deploy", ctx=ADMIN, now=T0)
    store.tokens.verify(deploy.token, now=T0)
    store.projects.delete("web", ctx=ADMIN, now=T0)
    assert store.tokens.verify_cached(deploy.token, now=T0) is None
    with pytest.raises(tokens.InvalidToken):
        store.tokens.verify(deploy.token, now=T0)


def test_a_cached_token_still_expires_at_its_own_time(store: Store) -> None:
    issued = store.tokens.create("web", "ci", ctx=ADMIN, now=T0, expires_in=timedelta(seconds=30))
    ends = T0 + timedelta(seconds=30 + tokens.LEEWAY_SECONDS)
    store.tokens.verify(issued.token, now=ends - timedelta(seconds=1))
    assert store.tokens.verify_cached(issued.token, now=ends - timedelta(milliseconds=500)) is not None
    assert store.tokens.verify_cached(issued.token, now=ends) is None
    with pytest.raises(tokens.InvalidToken, match="expired"):
        store.tokens.verify(issued.token, now=ends)


def test_a_cached_token_stops_with_its_retired_keys_grace(database_url: str) -> None:
    old = tokens.SigningKey("kid-old", b"o" * 32)
    retire_at = T0 + timedelta(seconds=1)
    opened = open_store(database_url, keyring=tokens.KeyRing(old), verify_cache_seconds=60)
    try:
        opened.projects.create(manifest(), ctx=ADMIN, now=T0)
        issued = opened.tokens.create("web", "ci", ctx=ADMIN, now=T0)
    finally:
        opened.close()
    rotated = tokens.KeyRing(tokens.SigningKey("kid-new", b"n" * 32), (tokens.SigningKey("kid-old", b"o" * 32,
                                                                                          retire_at),))
    store = open_store(database_url, keyring=rotated, verify_cache_seconds=60, migrate=False)
    try:
        store.tokens.verify(issued.token, now=T0)
        assert store.tokens.verify_cached(issued.token, now=T0 + timedelta(milliseconds=900)) is not None
        assert store.tokens.verify_cached(issued.token, now=retire_at) is None
        with pytest.raises(tokens.InvalidToken, match="retired"):
            store.tokens.verify(issued.token, now=retire_at)
    finally:
        store.close()


def test_verify_cached_leaves_the_due_last_used_write_to_the_blocking_path(store: Store) -> None:
    issued = store.tokens.create("web", "ci", ctx=ADMIN, now=T0)
    store.tokens.verify(issued.token, now=T0)  # starts the last-used interval (60 s)
    # ... a minute later the cache still holds the token (re-verified just before), but a write is due
    store.tokens.verify(issued.token, now=T0 + timedelta(seconds=59))
    assert store.tokens.verify_cached(issued.token, now=T0 + timedelta(seconds=60)) is None
    store.tokens.verify(issued.token, now=T0 + timedelta(seconds=60))  # writes the last-used time
    assert store.tokens.get(issued.info.id).last_used_at == T0 + timedelta(seconds=60)
    assert store.tokens.verify_cached(issued.token, now=T0 + timedelta(seconds=60.5)) is not None


def test_interval_zero_reads_the_registry_every_time(database_url: str) -> None:
    opened = open_store(database_url, keyring=RING)
    try:
        opened.projects.create(manifest(), ctx=ADMIN, now=T0)
        issued = opened.tokens.create("web", "ci", ctx=ADMIN, now=T0)
        opened.tokens.verify(issued.token, now=T0)
        assert opened.tokens.verify_cached(issued.token, now=T0) is None
        _revoke_behind_the_back(opened, issued.info.id)
        with pytest.raises(tokens.InvalidToken, match="revoked"):
            opened.tokens.verify(issued.token, now=T0)
    finally:
        opened.close()


def test_cache_keeps_no_token_and_rejects_a_negative_interval(store: Store) -> None:
    issued = store.tokens.create("web", "ci", ctx=ADMIN, now=T0)
    store.tokens.verify(issued.token, now=T0)
    held = repr(vars(store.tokens)) + repr(store.tokens._verified._entries)  # everything the registry holds
    assert issued.token not in held and repr(issued.token.encode()) not in held
    assert VerifiedCache[str](1.0).enabled and not VerifiedCache[str](0.0).enabled
    with pytest.raises(ValueError, match="negative"):
        VerifiedCache[str](-1.0)
