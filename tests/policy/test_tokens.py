"""policy.tokens: the hardened verify wrapper, minting, keys and durations (security-cases JWT rows).

Covered: round trip; JWT-01 alg none; JWT-02 other HMAC algorithms and a forged signature; JWT-04 exp in
the past, nbf/iat in the future (with the documented leeway); JWT-08 missing/other aud, other iss,
non-string claims; JWT-10 oversized and JWE-shaped tokens; unexpected header parameters and unknown kid;
subject shape; key rotation with a grace period (zero: at once), a ring following the rotated key file (looked at
with an injected clock; a broken file keeps the keys read before), an environment key without a retired key; keys
shorter than 32 bytes refused; the key file is created once with mode 0600; JWT-13 token ids are random and
distinct; ``--expires-in`` parsing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from policy import tokens

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
SECRET = b"s" * 40
RING = tokens.KeyRing(tokens.SigningKey("kid-1", SECRET))
ISS = AUD = "syncwarden"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def forge(
    claims: dict[str, Any], *, header: dict[str, Any] | None = None, key: bytes = SECRET, alg: str = "sha256"
) -> str:
    head = header if header is not None else {"alg": "HS256", "typ": "JWT", "kid": "kid-1"}
    signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}"
    sig = hmac.new(key, signing_input.encode(), getattr(hashlib, alg)).digest()
    return f"{signing_input}.{b64(sig)}"


def good_claims(**overrides: Any) -> dict[str, Any]:
    stamp = int(NOW.timestamp())
    claims = {
        "iss": ISS,
        "aud": AUD,
        "sub": "proj:web:ci",
        "iat": stamp,
        "nbf": stamp,
        "jti": "id-1",
        "exp": stamp + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def check(token: str, *, now: datetime = NOW, ring: tokens.KeyRing = RING) -> tokens.TokenClaims:
    return tokens.verify(token, keyring=ring, issuer=ISS, audience=AUD, now=now)


def test_mint_and_verify_round_trip() -> None:
    token = tokens.mint(
        keyring=RING, project="web", role="ci", jti="abc", issued_at=NOW, expires_at=NOW + timedelta(hours=1),
        issuer=ISS, audience=AUD,
    )  # fmt: skip
    claims = check(token)
    assert (claims.project, claims.role, claims.jti, claims.kid) == ("web", "ci", "abc", "kid-1")
    assert claims.expires_at == NOW + timedelta(hours=1)
    assert check(forge(good_claims())).jti == "id-1"


def test_mint_without_expiry_and_refuses_expiry_before_issue() -> None:
    token = tokens.mint(
        keyring=RING, project="web", role="ci", jti="x", issued_at=NOW, expires_at=None, issuer=ISS, audience=AUD
    )
    assert check(token, now=NOW + timedelta(days=3650)).expires_at is None
    with pytest.raises(ValueError, match="expire after"):
        tokens.mint(
            keyring=RING, project="w", role="r", jti="x", issued_at=NOW, expires_at=NOW, issuer=ISS, audience=AUD
        )


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            b64(b'{"alg":"none","typ":"JWT","kid":"kid-1"}') + "." + b64(json.dumps(good_claims()).encode()) + ".",
            id="JWT-01-alg-none-empty-sig",
        ),
        pytest.param(forge(good_claims(), header={"alg": "none", "typ": "JWT", "kid": "kid-1"}), id="JWT-01-alg-none"),
        pytest.param(
            forge(good_claims(), header={"alg": "HS384", "typ": "JWT", "kid": "kid-1"}, alg="sha384"), id="JWT-02-HS384"
        ),
        pytest.param(
            forge(good_claims(), header={"alg": "HS512", "typ": "JWT", "kid": "kid-1"}, alg="sha512"), id="JWT-02-HS512"
        ),
        pytest.param(forge(good_claims(), key=b"x" * 40), id="wrong-key"),
        pytest.param(forge(good_claims(exp=int(NOW.timestamp()) - 120)), id="JWT-04-expired"),
        pytest.param(forge(good_claims(nbf=int(NOW.timestamp()) + 120)), id="JWT-04-nbf-future"),
        pytest.param(forge(good_claims(iat=int(NOW.timestamp()) + 120)), id="JWT-04-iat-future"),
        pytest.param(forge(good_claims(iat=None)), id="no-iat"),
        pytest.param(forge(good_claims(iat="123")), id="iat-string"),
        pytest.param(forge(good_claims(aud=None)), id="JWT-08-no-aud"),
        pytest.param(forge(good_claims(aud="other-service")), id="JWT-08-other-aud"),
        pytest.param(forge(good_claims(aud=[AUD, "x"])), id="aud-list"),
        pytest.param(forge(good_claims(iss="other")), id="JWT-08-other-iss"),
        pytest.param(forge(good_claims(iss=None)), id="no-iss"),
        pytest.param(forge(good_claims(jti=None)), id="no-jti"),
        pytest.param(forge(good_claims(jti=5)), id="jti-number"),
        pytest.param(forge(good_claims(sub=["proj:web:ci"])), id="sub-list"),
        pytest.param(forge(good_claims(sub="admin")), id="sub-not-project"),
        pytest.param(forge(good_claims(sub="proj:web:ci:extra")), id="sub-four-parts"),
        pytest.param(forge(good_claims(), header={"alg": "HS256", "typ": "JWT"}), id="no-kid"),
        pytest.param(forge(good_claims(), header={"alg": "HS256", "typ": "JWT", "kid": "nope"}), id="unknown-kid"),
        pytest.param(forge(good_claims(), header={"alg": "HS256", "kid": "kid-1"}), id="no-typ"),
        pytest.param(
            forge(good_claims(), header={"alg": "HS256", "typ": "JWT", "kid": "kid-1", "crit": ["exp"]}),
            id="crit-header",
        ),
        pytest.param(
            forge(good_claims(), header={"alg": "HS256", "typ": "JWT", "kid": "kid-1", "zip": "DEF"}), id="zip"
        ),
        pytest.param("a.b.c.d.e", id="JWT-10-jwe-five-parts"),
        pytest.param("a" * 9000, id="JWT-10-oversized"),
        pytest.param(forge(good_claims()) + "." + "x" * 10, id="four-parts"),
        pytest.param("not a token", id="garbage"),
        pytest.param("e30.e30.", id="empty-signature"),
        pytest.param(b64(b"[1]") + "." + b64(b"{}") + ".c2ln", id="header-not-object"),
    ],
)
def test_rejected(token: str) -> None:
    with pytest.raises(tokens.InvalidToken) as info:
        check(token)
    assert token not in str(info.value)


def test_leeway_is_small_and_documented() -> None:
    stamp = int(NOW.timestamp())
    assert check(forge(good_claims(iat=stamp + tokens.LEEWAY_SECONDS - 1)))
    assert check(forge(good_claims(exp=stamp - tokens.LEEWAY_SECONDS + 1)))
    assert tokens.LEEWAY_SECONDS <= 60


def test_long_token_is_rejected_before_parsing() -> None:
    huge = forge(good_claims(pad="x" * tokens.MAX_TOKEN_BYTES))
    with pytest.raises(tokens.InvalidToken, match="longer than"):
        check(huge)


def test_rotation_keeps_the_old_key_for_the_grace_period(tmp_path: Path) -> None:
    ring = tokens.load_keyring(signing_key=None, data_dir=tmp_path)
    old = tokens.mint(
        keyring=ring, project="web", role="ci", jti="1", issued_at=NOW, expires_at=None, issuer=ISS, audience=AUD
    )
    rotated = tokens.rotate_key_file(tmp_path, now=NOW, grace=timedelta(hours=1))
    assert rotated.current.kid != ring.current.kid
    assert tokens.load_keyring(signing_key=None, data_dir=tmp_path) == rotated
    assert check(old, ring=rotated, now=NOW + timedelta(minutes=59)).jti == "1"
    with pytest.raises(tokens.InvalidToken, match="retired"):
        check(old, ring=rotated, now=NOW + timedelta(hours=1, seconds=1))
    new = tokens.mint(
        keyring=rotated, project="web", role="ci", jti="2", issued_at=NOW, expires_at=None, issuer=ISS, audience=AUD
    )
    assert check(new, ring=rotated, now=NOW + timedelta(days=1)).kid == rotated.current.kid


@dataclass
class Monotonic:
    """An injected monotonic clock for the key file's reload checks."""

    value: float = 0.0

    def __call__(self) -> float:
        return self.value


def test_a_ring_read_from_the_key_file_follows_a_rotation(tmp_path: Path) -> None:
    clock = Monotonic()
    ring = tokens.load_keyring(signing_key=None, data_dir=tmp_path, check_seconds=5, clock=clock)
    before = ring.current
    old = tokens.mint(keyring=ring, project="web", role="ci", jti="1", issued_at=NOW, expires_at=None, issuer=ISS,
                      audience=AUD)
    rotated = tokens.rotate_key_file(tmp_path, now=NOW, grace=timedelta(hours=2))
    clock.value = 4.9
    assert ring.current == before  # looked at most every 5 s
    clock.value = 5.0
    assert ring.current == rotated.current and ring == rotated
    assert ring.retired == (tokens.SigningKey(before.kid, before.secret, NOW + timedelta(hours=2)),)
    new = tokens.mint(keyring=ring, project="web", role="ci", jti="2", issued_at=NOW, expires_at=None, issuer=ISS,
                      audience=AUD)
    assert check(new, ring=ring).kid == rotated.current.kid != before.kid
    assert check(old, ring=ring, now=NOW + timedelta(hours=2) - timedelta(seconds=1)).kid == before.kid
    with pytest.raises(tokens.InvalidToken, match="retired"):
        check(old, ring=ring, now=NOW + timedelta(hours=2))


def test_a_broken_key_file_keeps_the_keys_read_before(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Monotonic()
    ring = tokens.load_keyring(signing_key=None, data_dir=tmp_path, check_seconds=1, clock=clock)
    before = ring.current
    (tmp_path / tokens.KEY_FILE_NAME).write_text('{"current": {"kid": "x", "secret": "c2hvcnQ="}}')
    clock.value = 1.0
    with caplog.at_level(logging.ERROR, logger="policy.tokens"):
        assert ring.current == before
    assert "signing-keys.json" in caplog.text and "at least 32 bytes" in caplog.text
    caplog.clear()
    clock.value = 2.0
    with caplog.at_level(logging.ERROR, logger="policy.tokens"):
        assert ring.current == before
    assert caplog.text == ""  # said once per change of the file, not at every look
    assert before.secret.hex() not in repr(ring) and "secret" not in repr(ring)


def test_an_environment_key_has_no_retired_key_and_does_not_follow_files(tmp_path: Path) -> None:
    clock = Monotonic()
    ring = tokens.load_keyring(signing_key="e" * 40, data_dir=tmp_path, check_seconds=0, clock=clock)
    assert ring.retired == ()
    assert not (tmp_path / tokens.KEY_FILE_NAME).exists()
    with pytest.raises(tokens.SigningKeyError, match="no signing key file to rotate"):
        tokens.rotate_key_file(tmp_path, now=NOW, grace=timedelta(hours=1))
    assert not (tmp_path / tokens.KEY_FILE_NAME).exists()


def test_a_zero_grace_stops_the_old_key_at_once_and_a_later_rotation_drops_it(tmp_path: Path) -> None:
    first = tokens.load_keyring(signing_key=None, data_dir=tmp_path).current
    old = tokens.mint(keyring=tokens.KeyRing(first), project="web", role="ci", jti="1", issued_at=NOW,
                      expires_at=None, issuer=ISS, audience=AUD)
    second = tokens.rotate_key_file(tmp_path, now=NOW, grace=timedelta(0))
    with pytest.raises(tokens.InvalidToken, match="retired"):
        check(old, ring=second)
    assert [k.kid for k in second.retired] == [first.kid]
    third = tokens.rotate_key_file(tmp_path, now=NOW + timedelta(seconds=1), grace=timedelta(hours=1))
    assert [k.kid for k in third.retired] == [second.current.kid]
    with pytest.raises(ValueError, match="negative"):
        tokens.rotate_key_file(tmp_path, now=NOW, grace=timedelta(seconds=-1))


def test_short_key_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(tokens.SigningKeyError, match="SYNCWARDEN_SIGNING_KEY: .* at least 32 bytes") as info:
        tokens.load_keyring(signing_key="short-key", data_dir=tmp_path)
    assert "short-key" not in str(info.value)


def test_env_key_wins_and_gives_a_stable_kid(tmp_path: Path) -> None:
    a = tokens.load_keyring(signing_key="k" * 32, data_dir=tmp_path)
    b = tokens.load_keyring(signing_key="k" * 32, data_dir=tmp_path / "other")
    assert a == b and a.current.secret == b"k" * 32
    assert not (tmp_path / tokens.KEY_FILE_NAME).exists()
    assert "kkkk" not in repr(a)


def test_generated_key_file_is_private_and_stable(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = tokens.load_keyring(signing_key=None, data_dir=data_dir)
    path = data_dir / tokens.KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.current.secret) >= tokens.MIN_KEY_BYTES
    assert tokens.load_keyring(signing_key=None, data_dir=data_dir) == first


def test_malformed_key_file_is_named(tmp_path: Path) -> None:
    (tmp_path / tokens.KEY_FILE_NAME).write_text("{not json")
    with pytest.raises(tokens.SigningKeyError, match="signing-keys.json: the signing key file is malformed"):
        tokens.load_keyring(signing_key=None, data_dir=tmp_path)


def test_token_ids_are_random_and_long() -> None:
    ids = {tokens.new_token_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(base64.urlsafe_b64decode(i + "=" * (-len(i) % 4))) >= 16 for i in list(ids)[:100])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)), ("1h", timedelta(hours=1)),
     ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2))],
)  # fmt: skip
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert tokens.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["0h", "-1d", "1y", "h", "", "1.5h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        tokens.parse_duration(text)
