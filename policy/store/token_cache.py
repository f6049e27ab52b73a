"""A short-lived cache of verified project tokens: a repeated bearer token skips the signature check and the
registry read.

Who calls: :meth:`policy.store.tokens.TokenRegistry.verify` and ``verify_cached`` (the API's authentication
dependency tries the cached answer first, without leaving the event loop).

An entry is keyed by the SHA-256 of the presented token (the token itself is never kept) and holds the
verified principal, when it was verified, the local *generation* at that time and the instant at which the
token stops being valid by its own times (``exp`` claim and registry expiry, with the leeway). It answers only
while all of these hold at ``now``:

* ``0 <= now - verified_at < ttl``;
* the generation is unchanged: the registry bumps it on every revocation and every project write through this
  replica's stores bumps the projects' generation, so a change made on this replica takes effect on the next
  request (security-cases JWT-05);
* ``now`` is before the token's end, and its signing key still verifies (checked by the caller).

A change made by *another* replica sharing the database takes effect here within ``ttl`` — the same bound as the
RBAC policy cache (``api.state.PolicyCache``), and documented in the README. ``ttl`` 0 disables the cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

__all__ = ["VerifiedCache", "VerifiedEntry"]

T = TypeVar("T")

#: more distinct live tokens than this and the cache starts over (a bound on memory, not a tuning knob)
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class VerifiedEntry(Generic[T]):
    value: T
    kid: str
    verified_at: datetime
    generation: tuple[int, int]
    #: the token is no longer valid from this instant on (None: no expiry)
    ends_at: datetime | None


class VerifiedCache(Generic[T]):
    def __init__(self, ttl_seconds: float) -> None:
        if ttl_seconds < 0:
            raise ValueError("token cache ttl must not be negative")
        self._ttl = timedelta(seconds=ttl_seconds)
        self._entries: dict[bytes, VerifiedEntry[T]] = {}

    @property
    def enabled(self) -> bool:
        return self._ttl > timedelta(0)

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def get(self, token: str, *, now: datetime, generation: tuple[int, int]) -> VerifiedEntry[T] | None:
        if not self.enabled:
            return None
        entry = self._entries.get(self._key(token))
        if entry is None:
            return None
        age = now - entry.verified_at
        if (
            entry.generation != generation
            or not timedelta(0) <= age < self._ttl
            or (entry.ends_at is not None and now >= entry.ends_at)
        ):
            return None
        return entry

    def put(self, token: str, entry: VerifiedEntry[T]) -> None:
        if not self.enabled:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[self._key(token)] = entry

    def clear(self) -> None:
        self._entries.clear()
