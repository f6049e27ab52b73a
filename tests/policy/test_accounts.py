"""Local-account rules (pure): scrypt hashes carry their cost and salt, verify in constant time, refuse
malformed hashes and oversized passwords; the throttle locks after N failures, doubles, caps and forgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from policy.accounts import (
    MAX_PASSWORD_BYTES,
    AccountError,
    PasswordHasher,
    ThrottleRules,
    ThrottleState,
    generate_password,
    validate_password,
)

HASHER = PasswordHasher(n=2**8)
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_hash_round_trip_and_salt() -> None:
    first, second = HASHER.hash("correct horse"), HASHER.hash("correct horse")
    assert first != second and first.startswith("scrypt$256$8$1$")
    assert HASHER.verify("correct horse", first)
    assert not HASHER.verify("correct horsE", first)


def test_a_hash_keeps_its_own_cost() -> None:
    stronger = PasswordHasher(n=2**10).hash("pw-12345678")
    assert HASHER.verify("pw-12345678", stronger)


@pytest.mark.parametrize("stored", ["", "plain", "md5$1$2$3$x$y", "scrypt$0$8$1$AA$AA", "scrypt$x$8$1$AA$AA",
                                    "scrypt$1048577$8$1$AA$AA"])
def test_malformed_hashes_never_match(stored: str) -> None:
    assert not HASHER.verify("anything", stored)


def test_oversized_passwords_never_match_and_are_refused() -> None:
    huge = "a" * (MAX_PASSWORD_BYTES + 1)
    assert not HASHER.verify(huge, HASHER.hash(huge[:MAX_PASSWORD_BYTES]))
    with pytest.raises(AccountError):
        validate_password(huge)
    with pytest.raises(AccountError):
        validate_password("short")


def test_generated_passwords_are_random_and_long() -> None:
    values = {generate_password() for _ in range(1000)}
    assert len(values) == 1000 and all(len(v) == 24 for v in values)


def test_dummy_hash_has_the_same_cost() -> None:
    assert HASHER.dummy_hash().split("$")[1:4] == ["256", "8", "1"]


def test_throttle_locks_doubles_caps_and_forgets() -> None:
    rules = ThrottleRules(max_failures=3, base_lock_seconds=10, max_lock_seconds=35, reset_after_seconds=600)
    state, last = ThrottleState(), None
    for _ in range(2):
        state = rules.after_failure(state, now=T0, last_failure=last)
        last = T0
        assert not state.locked(now=T0)
    locks = []
    for _ in range(4):
        state = rules.after_failure(state, now=T0, last_failure=last)
        assert state.locked_until is not None
        locks.append((state.locked_until - T0).total_seconds())
    assert locks == [10, 20, 35, 35]
    assert state.retry_after(now=T0) == 35 and state.retry_after(now=T0 + timedelta(seconds=40)) == 0
    forgotten = rules.after_failure(state, now=T0 + timedelta(hours=2), last_failure=T0)
    assert forgotten.failures == 1 and forgotten.locked_until is None
