"""``policy.store.accounts`` on SQLite and PostgreSQL: accounts are created once (audited), sessions are stored
hashed and die on expiry, revocation, disabling and password change, and the throttle counts atomically,
resets on success and forgets old unlocked rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from policy import audit, tokens
from policy.accounts import PasswordHasher, ThrottleRules
from policy.store import Store, open_store
from policy.store.accounts import AccountStore, session_id_hash

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CTX = audit.AuditContext(subject="test")
HASH = PasswordHasher(n=2**8).hash("password-1")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url, keyring=tokens.KeyRing(tokens.SigningKey("k", b"s" * 32)))
    yield opened
    opened.close()


def test_accounts_sessions_and_throttle(store: Store) -> None:
    accounts = AccountStore(store.engine)
    assert accounts.create("alice", HASH, ctx=CTX, now=T0) is True
    assert accounts.create("alice", HASH, ctx=CTX, now=T0) is False
    token, session = accounts.create_session("alice", now=T0, ttl=timedelta(hours=1))
    assert session.username == "alice" and session.expires_at == T0 + timedelta(hours=1)
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT id_hash FROM policy_sessions")).scalars().all()
    assert stored == [session_id_hash(token)] and token not in stored
    assert accounts.verify_session(token, now=T0 + timedelta(minutes=59)) is not None
    assert accounts.verify_session(token, now=T0 + timedelta(hours=1)) is None
    assert accounts.verify_session("sws_forged", now=T0) is None
    assert accounts.revoke_session(token, now=T0) and accounts.verify_session(token, now=T0) is None

    rules = ThrottleRules(max_failures=2, base_lock_seconds=10)
    assert accounts.record_failure("alice", rules=rules, now=T0).locked_until is None
    locked = accounts.record_failure("alice", rules=rules, now=T0)
    assert locked.locked(now=T0) and accounts.throttle("alice") == locked
    accounts.record_success("alice")
    assert accounts.throttle("alice").failures == 0
    accounts.record_failure("old-name", rules=rules, now=T0)
    assert accounts.purge_throttle(older_than=T0 + timedelta(hours=2)) == 1
    assert accounts.throttle("old-name").failures == 0


def test_account_creation_is_audited(store: Store) -> None:
    AccountStore(store.engine).create("bob", HASH, ctx=CTX, now=T0)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT action, object FROM audit_records")).all()
    assert [tuple(r) for r in rows] == [("account.create", "account/bob")]
