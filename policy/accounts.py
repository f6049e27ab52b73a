"""Local accounts, pure parts: password hashing, the dummy hash for unknown users, and the login throttle rules.

Who calls: :mod:`policy.store.accounts` (stores hashes and throttle state) and ``api.auth`` (login). No
database and no clock here: times come in as parameters.

* Passwords are hashed with scrypt from the standard library (``hashlib.scrypt``), a random 16-byte salt per
  hash, and the cost parameters stored in the hash string (``scrypt$<n>$<r>$<p>$<salt>$<digest>``, base64url),
  so the cost can be raised later without invalidating old hashes. Comparison is constant-time.
* Unknown users are checked against a dummy hash with the same cost (security-cases AUTH-04), so that the
  answer and its latency do not tell whether a user exists.
* Throttle (AUTH-01): after :attr:`ThrottleRules.max_failures` consecutive failures a user name is locked;
  each further failure doubles the lock, up to :attr:`ThrottleRules.max_lock_seconds`. A success resets it.
  The state is kept per user name in the database (it survives a restart and spraying other names cannot
  evict it: there is no bounded in-memory table to evict from).

Error tree::

    PolicyError
    └── AccountError     e.g. a password that is too short or too long
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from policy.errors import PolicyError

__all__ = [
    "MAX_PASSWORD_BYTES",
    "MIN_PASSWORD_CHARS",
    "AccountError",
    "PasswordHasher",
    "ThrottleRules",
    "ThrottleState",
    "generate_password",
    "validate_password",
]

#: scrypt's memory use is 128 * n * r bytes: n=2**15, r=8 is 32 MiB and about 0.1 s per hash
DEFAULT_N = 2**15
DEFAULT_R = 8
DEFAULT_P = 1
MIN_PASSWORD_CHARS = 8
#: longer passwords only cost hashing time (a denial-of-service lever), never security
MAX_PASSWORD_BYTES = 1024
_SALT_BYTES = 16
_DIGEST_BYTES = 32


class AccountError(PolicyError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def validate_password(password: str) -> None:
    """A new password must have at least 8 characters and at most 1 KiB."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise AccountError(f"the password must be at most {MAX_PASSWORD_BYTES} bytes")


def generate_password() -> str:
    """A random initial password: 144 bits from ``secrets`` (security-cases AUTH-06)."""
    return secrets.token_urlsafe(18)


@dataclass(frozen=True, slots=True)
class PasswordHasher:
    """scrypt with the given cost. Tests pass a small ``n``; the stored hash carries its own cost."""

    n: int = DEFAULT_N
    r: int = DEFAULT_R
    p: int = DEFAULT_P

    def _derive(self, password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
        return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 1024 * 1024,
                              dklen=_DIGEST_BYTES)

    def hash(self, password: str) -> str:
        salt = secrets.token_bytes(_SALT_BYTES)
        digest = self._derive(password.encode("utf-8"), salt, self.n, self.r, self.p)
        return f"scrypt${self.n}${self.r}${self.p}${_b64(salt)}${_b64(digest)}"

    def verify(self, password: str, stored: str) -> bool:
        """Constant-time check of ``password`` against a stored hash. A malformed hash never matches."""
        raw = password.encode("utf-8")[: MAX_PASSWORD_BYTES + 1]
        try:
            scheme, n_text, r_text, p_text, salt_text, digest_text = stored.split("$")
            n, r, p = int(n_text), int(r_text), int(p_text)
            salt, digest = _unb64(salt_text), _unb64(digest_text)
        except ValueError:
            self._derive(raw, b"\0" * _SALT_BYTES, self.n, self.r, self.p)  # same work as a real check
            return False
        if scheme != "scrypt" or not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):
            self._derive(raw, b"\0" * _SALT_BYTES, self.n, self.r, self.p)
            return False
        candidate = self._derive(raw, salt, n, r, p)
        return hmac.compare_digest(candidate, digest) and len(raw) <= MAX_PASSWORD_BYTES

    def dummy_hash(self) -> str:
        """A hash of a random password with this cost: checked for unknown users so timing matches."""
        return self.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class ThrottleState:
    """Consecutive failures of one user name and until when it is locked (None: not locked)."""

    failures: int = 0
    locked_until: datetime | None = None

    def locked(self, *, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def retry_after(self, *, now: datetime) -> int:
        """Whole seconds until the lock ends (at least 1 while locked)."""
        if self.locked_until is None or now >= self.locked_until:
            return 0
        return max(1, int((self.locked_until - now).total_seconds() + 0.999))


@dataclass(frozen=True, slots=True)
class ThrottleRules:
    #: failures allowed before the first lock (Argo CD's default is 5)
    max_failures: int = 5
    #: first lock; each further failure doubles it
    base_lock_seconds: float = 30.0
    max_lock_seconds: float = 900.0
    #: failures older than this are forgotten when the next one arrives
    reset_after_seconds: float = 3600.0

    def after_failure(self, state: ThrottleState, *, now: datetime, last_failure: datetime | None) -> ThrottleState:
        failures = state.failures
        if last_failure is not None and now - last_failure > timedelta(seconds=self.reset_after_seconds):
            failures = 0
        failures += 1
        if failures < self.max_failures:
            return ThrottleState(failures, None)
        exponent = min(failures - self.max_failures, 20)
        seconds = min(self.base_lock_seconds * (2**exponent), self.max_lock_seconds)
        return ThrottleState(failures, now + timedelta(seconds=seconds))
