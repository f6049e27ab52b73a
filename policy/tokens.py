"""Project-scoped API tokens: mint and verify HS256 JWTs, and hold the signing keys.

The only module that imports ``jose`` (import-linter enforces it). ``policy.store.tokens`` calls
:func:`mint` and :func:`verify` around its registry; ``api`` builds the :class:`KeyRing` at startup with
:func:`load_keyring`, which refuses a key shorter than 32 bytes (the service does not start).

Verification is one hardened wrapper (security-cases §B.2, rows JWT-01..13), in this order:

1. length cap (:data:`MAX_TOKEN_BYTES`) before any parsing; compact JWS only: three non-empty base64url
   parts (so JWE and ``alg: none`` with an empty signature never reach the library);
2. header: exactly ``alg: HS256``, ``typ: JWT`` and a known ``kid``; no other header parameters;
3. signature with the key named by ``kid`` (a retired key only inside its grace period);
4. claims: ``iss``, ``aud``, ``sub``, ``jti`` strings, exact ``iss`` and ``aud`` (a token without ``aud``
   fails: python-jose's default would accept it), ``iat`` integer and not in the future, ``exp``/``nbf``
   integers when present, checked against ``now`` with :data:`LEEWAY_SECONDS`;
5. ``sub`` must be ``proj:<project>:<role>``.

The registry then checks that the ``jti`` exists, is not revoked or expired and that its role still exists
(deliberate difference 4: looked up by ``jti`` only). Errors never contain the token.

Keys: ``SYNCWARDEN_SIGNING_KEY`` gives exactly one key and no retired one, so it cannot be rotated with a grace
period (changing it invalidates every token signed with the old value at once). Otherwise the keys live in
``<data dir>/signing-keys.json``; :func:`rotate_key_file` (``syncwarden admin signing-key rotate``) makes a new
current key and keeps the old one verifying until its grace period ends. A ring read from that file follows it:
a running process looks at the file's identity (inode, mtime, size) at most every :data:`RELOAD_SECONDS` and
reads it again when it changed, so servers sharing the data directory sign with the new key within a few
seconds, without a restart. A file that became unreadable or malformed is logged and the keys last read stay.

Error tree::

    PolicyError
    └── TokenError
        ├── InvalidToken       the presented token is not acceptable (message says why, not the token)
        └── SigningKeyError    the signing key is missing, too short or unreadable (startup)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jose import jwt
from jose.exceptions import JOSEError

from policy.errors import PolicyError

__all__ = [
    "ALGORITHM",
    "LEEWAY_SECONDS",
    "MAX_TOKEN_BYTES",
    "MIN_KEY_BYTES",
    "RELOAD_SECONDS",
    "InvalidToken",
    "KeyRing",
    "SigningKey",
    "SigningKeyError",
    "TokenClaims",
    "TokenError",
    "load_keyring",
    "mint",
    "new_token_id",
    "parse_duration",
    "rotate_key_file",
    "subject_for",
    "verify",
]

ALGORITHM = "HS256"
#: a project token is a few hundred bytes; anything this long is an attack on the parser (JWT-10)
MAX_TOKEN_BYTES = 8 * 1024
#: clock skew tolerated on exp, nbf and iat between replicas, in seconds
LEEWAY_SECONDS = 30
#: HS256 keys shorter than the hash output are refused (RFC 7518 §3.2)
MIN_KEY_BYTES = 32
KEY_FILE_NAME = "signing-keys.json"
#: a ring read from the key file looks for a rotated file at most this often, in seconds
RELOAD_SECONDS = 2.0

log = logging.getLogger(__name__)

_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_SUBJECT = re.compile(r"proj:([^:]+):([^:]+)")
_HEADER_KEYS = {"alg", "typ", "kid"}
_DURATION = re.compile(r"\s*(-?\d+)\s*([smhdw])\s*")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class TokenError(PolicyError):
    pass


class InvalidToken(TokenError):
    """Reasons are for logs and the audit record; callers answer 401 without detail."""


class SigningKeyError(TokenError):
    pass


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    secret: bytes = b""
    #: for a retired key: verification stops at this time (the grace period's end)
    retire_at: datetime | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"SigningKey(kid={self.kid!r}, retire_at={self.retire_at!r})"


class KeyRing:
    """The current key (signs) and retired keys (verify only, until their grace period ends).

    A ring built with ``follow`` (the key file it was read from) reads that file again when it changed, looked
    at most every ``check_seconds`` of ``clock`` (monotonic seconds); see the module docstring. Equality compares
    the keys held now."""

    __slots__ = ("_check_seconds", "_clock", "_follow", "_identity", "_keys", "_lock", "_next_check")

    def __init__(self, current: SigningKey, retired: tuple[SigningKey, ...] = (), *, follow: Path | None = None,
                 check_seconds: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._keys = (current, tuple(retired))
        self._follow = follow
        self._check_seconds = RELOAD_SECONDS if check_seconds is None else check_seconds
        self._clock = clock
        self._identity = _identity(follow) if follow is not None else None
        self._next_check = clock() + self._check_seconds
        self._lock = threading.Lock()

    @property
    def current(self) -> SigningKey:
        return self.keys()[0]

    @property
    def retired(self) -> tuple[SigningKey, ...]:
        return self.keys()[1]

    def keys(self) -> tuple[SigningKey, tuple[SigningKey, ...]]:
        """(current, retired) as one consistent pair (a reload between two reads cannot mix them)."""
        if self._follow is not None and self._clock() >= self._next_check:
            self._reload(self._follow)
        return self._keys

    def key_for(self, kid: str, *, now: datetime) -> SigningKey | None:
        current, retired = self.keys()
        if kid == current.kid:
            return current
        for key in retired:
            if key.kid == kid and key.retire_at is not None and now < key.retire_at:
                return key
        return None

    def _reload(self, path: Path) -> None:
        with self._lock:
            if self._clock() < self._next_check:  # another thread looked meanwhile
                return
            self._next_check = self._clock() + self._check_seconds
            identity = _identity(path)
            if identity == self._identity:
                return
            self._identity = identity  # one message per change of the file, not one per look
            try:
                fresh = _read_key_file(path)
            except SigningKeyError as exc:  # keep signing and verifying with the keys last read
                log.error("signing keys not reloaded, the keys read before stay in use: %s", exc)
                return
            if fresh._keys != self._keys:
                self._keys = fresh._keys
                log.info("signing keys reloaded from %s: current key %s, %d retired", path, fresh._keys[0].kid,
                         len(fresh._keys[1]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyRing) and self.keys() == other.keys()

    __hash__ = None  # type: ignore[assignment]  # the keys may change (a followed file)

    def __repr__(self) -> str:  # SigningKey's repr leaves the secrets out
        current, retired = self.keys()
        return f"KeyRing(current={current!r}, retired={retired!r})"


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What changes when the key file is replaced or rewritten (None: it cannot be looked at)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    project: str
    role: str
    jti: str
    issued_at: datetime
    expires_at: datetime | None
    kid: str


def _check_secret(secret: bytes, source: str) -> bytes:
    if len(secret) < MIN_KEY_BYTES:
        raise SigningKeyError(
            f"{source}: the token signing key must be at least {MIN_KEY_BYTES} bytes (got {len(secret)}); "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    return secret


def _kid_of(secret: bytes) -> str:
    return hashlib.sha256(b"syncwarden-kid:" + secret).hexdigest()[:16]


def new_token_id() -> str:
    """192 random bits from ``secrets`` (JWT-13), URL-safe."""
    return secrets.token_urlsafe(24)


def subject_for(project: str, role: str) -> str:
    return f"proj:{project}:{role}"


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``7d``, ``2w`` → a positive timedelta; ``ValueError`` otherwise."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit s, m, h, d or w (e.g. 7d)")
    amount = int(match.group(1))
    if amount <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return timedelta(seconds=amount * _UNIT_SECONDS[match.group(2)])


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("token times must be timezone-aware")
    return int(moment.timestamp())


def mint(
    *,
    keyring: KeyRing,
    project: str,
    role: str,
    jti: str,
    issued_at: datetime,
    expires_at: datetime | None,
    issuer: str,
    audience: str,
) -> str:
    """Sign a token for ``proj:<project>:<role>`` with the current key. The caller stores the registry row."""
    if expires_at is not None and expires_at <= issued_at:
        raise ValueError("a token must expire after it is issued")
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject_for(project, role),
        "iat": _epoch(issued_at),
        "nbf": _epoch(issued_at),
        "jti": jti,
    }
    if expires_at is not None:
        claims["exp"] = _epoch(expires_at)
    key = keyring.current
    token: str = jwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"})
    return token


def _b64json(part: str, what: str) -> Mapping[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidToken(f"malformed token {what}") from exc
    if not isinstance(value, dict):
        raise InvalidToken(f"malformed token {what}")
    return value


def _int_claim(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidToken(f"claim {name} must be an integer")
    return value


def verify(token: str, *, keyring: KeyRing, issuer: str, audience: str, now: datetime) -> TokenClaims:
    """Check a presented token completely (see the module docstring) and return its claims."""
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken(f"token longer than {MAX_TOKEN_BYTES} bytes")
    if not _COMPACT_JWS.fullmatch(token):
        raise InvalidToken("not a compact JWS (three base64url parts)")
    header = _b64json(token.split(".", 1)[0], "header")
    if set(header) - _HEADER_KEYS:
        raise InvalidToken(f"unexpected header parameters {sorted(set(header) - _HEADER_KEYS)}")
    if header.get("alg") != ALGORITHM or header.get("typ") != "JWT":
        raise InvalidToken(f"header must say alg {ALGORITHM} and typ JWT")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise InvalidToken("header kid missing")
    key = keyring.key_for(kid, now=now)
    if key is None:
        raise InvalidToken("unknown or retired signing key")
    options = {
        "verify_exp": False,  # time is checked below against ``now``, not the library's clock
        "verify_nbf": False,
        "verify_iat": False,
        "require_aud": True,
        "require_iat": True,
        "require_iss": True,
        "require_sub": True,
        "require_jti": True,
    }
    try:
        claims = jwt.decode(
            token, key.secret, algorithms=[ALGORITHM], audience=audience, issuer=issuer, options=options
        )
    except JOSEError as exc:
        raise InvalidToken(f"rejected by signature or claim check: {type(exc).__name__}") from None
    for name in ("iss", "aud", "sub", "jti"):
        if not isinstance(claims.get(name), str):
            raise InvalidToken(f"claim {name} must be a string")
    if claims["iss"] != issuer or claims["aud"] != audience:
        raise InvalidToken("wrong issuer or audience")
    iat, nbf, exp = _int_claim(claims, "iat"), _int_claim(claims, "nbf"), _int_claim(claims, "exp")
    stamp = now.timestamp()
    if iat is None or iat > stamp + LEEWAY_SECONDS:
        raise InvalidToken("token issued in the future")
    if nbf is not None and nbf > stamp + LEEWAY_SECONDS:
        raise InvalidToken("token not yet valid")
    if exp is not None and exp <= stamp - LEEWAY_SECONDS:
        raise InvalidToken("token expired")
    match = _SUBJECT.fullmatch(claims["sub"])
    if not match:
        raise InvalidToken("subject is not a project role (proj:<project>:<role>)")
    return TokenClaims(
        project=match.group(1),
        role=match.group(2),
        jti=claims["jti"],
        issued_at=datetime.fromtimestamp(iat, UTC),
        expires_at=datetime.fromtimestamp(exp, UTC) if exp is not None else None,
        kid=kid,
    )


# --- keys -----------------------------------------------------------------------------------------------


def load_keyring(*, signing_key: str | None, data_dir: Path, check_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> KeyRing:
    """The key ring for this process.

    ``signing_key`` (``SYNCWARDEN_SIGNING_KEY``) wins: one key, its id derived from it, no retired key. Otherwise
    the key file in ``data_dir`` is read, or created once with a random 48-byte key (mode 0600); that ring
    follows the file (a rotation is picked up, see :class:`KeyRing`). Raises :class:`SigningKeyError` naming the
    variable or the file.
    """
    if signing_key:
        secret = _check_secret(signing_key.encode("utf-8"), "SYNCWARDEN_SIGNING_KEY")
        return KeyRing(SigningKey(_kid_of(secret), secret))
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_bytes(48)
        _write_key_file(path, KeyRing(SigningKey(_kid_of(secret), secret)))
    current, retired = _read_key_file(path).keys()
    return KeyRing(current, retired, follow=path, check_seconds=check_seconds, clock=clock)


def rotate_key_file(data_dir: Path, *, now: datetime, grace: timedelta) -> KeyRing:
    """Make a new current key; the old one keeps verifying until ``now + grace`` (at once with a zero grace).
    Retired keys whose grace ended go. The file must exist (:class:`SigningKeyError` naming it otherwise:
    a rotation in the wrong data directory must not quietly create keys nobody uses)."""
    if grace < timedelta(0):
        raise ValueError("the grace period must not be negative")
    path = data_dir / KEY_FILE_NAME
    if not path.is_file():
        raise SigningKeyError(f"{path}: no signing key file to rotate (a server creates it on its first start; is "
                              "the data directory right?)")
    current, retired = _read_key_file(path).keys()
    secret = secrets.token_bytes(48)
    old = SigningKey(current.kid, current.secret, now + grace)
    kept = tuple(k for k in retired if k.retire_at is not None and k.retire_at > now)
    new_ring = KeyRing(SigningKey(_kid_of(secret), secret), (old, *kept))
    _write_key_file(path, new_ring)
    return new_ring


def _write_key_file(path: Path, ring: KeyRing) -> None:
    def entry(key: SigningKey) -> dict[str, Any]:
        return {
            "kid": key.kid,
            "secret": base64.b64encode(key.secret).decode(),
            "retire_at": key.retire_at.isoformat() if key.retire_at else None,
        }

    current, retired = ring.keys()
    body = json.dumps({"current": entry(current), "retired": [entry(k) for k in retired]}, indent=2)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _read_key_file(path: Path) -> KeyRing:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))

        def key(entry: Mapping[str, Any]) -> SigningKey:
            secret = _check_secret(base64.b64decode(entry["secret"], validate=True), str(path))
            retire = entry.get("retire_at")
            return SigningKey(str(entry["kid"]), secret, datetime.fromisoformat(retire) if retire else None)

        return KeyRing(key(data["current"]), tuple(key(e) for e in data.get("retired", [])))
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read the signing key file: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise SigningKeyError(f"{path}: the signing key file is malformed") from None
