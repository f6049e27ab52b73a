"""policy.tokens: the hardened verify wrapper, minting, keys and durations (security-cases JWT rows).

Covered: round trip; JWT-01 alg none; JWT-02 other HMAC algorithms and a forged signature; JWT-04 exp in
the past, nbf/iat in the future (with the documented leeway); JWT-08 missing/other aud, other iss,
non-string claims; JWT-10 oversized and JWE-shaped tokens; unexpected header parameters and unknown kid;
subject shape; key rotation with a grace period; keys shorter than 32 bytes refused; the key file is
created once with mode 0600; JWT-13 token ids are random and distinct; ``--expires-in`` parsing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
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
