"""Checkpoints and chain verification for the audit log.

Pure. ``policy.store.audit`` signs checkpoints and retention anchors; ``policy.store.audit_read.verify``
and ``syncwarden audit verify`` stream records through :class:`ChainVerifier`.

A :class:`Checkpoint` is a signed (HMAC-SHA256 with the token signing key) statement "record ``seq`` has
hash ``hash``", exported outside the database so that a cut-off tail is detected; a retention anchor
(``kind="anchor"``) says "the first kept record is ``seq`` and its ``prev_hash`` is ``hash``". The verifier
stops at the first record that is missing, out of order, unlinked, modified or contradicts a checkpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from policy.audit import GENESIS_HASH, AuditRecord, chain_hash
from policy.errors import PolicyError

__all__ = ["ChainVerifier", "Checkpoint", "InvalidCheckpoint", "VerifyResult", "sign_checkpoint", "verify_chain"]


class InvalidCheckpoint(PolicyError):
    """A checkpoint that cannot be trusted: malformed, or signed with another key."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "record ``seq`` has hash ``hash``" (``kind="head"``), or for a retention anchor
    "the first kept record is ``seq`` and its ``prev_hash`` is ``hash``" (``kind="anchor"``)."""

    seq: int
    hash: str
    kind: str = "head"
    signature: str = ""

    def payload(self) -> bytes:
        return f"syncwarden-audit-checkpoint:v1:{self.kind}:{self.seq}:{self.hash}".encode()

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "kind": self.kind, "signature": self.signature}

    def signed_by_any(self, keys: Iterable[bytes]) -> bool:
        return any(hmac.compare_digest(sign_checkpoint(self, key=k).signature, self.signature) for k in keys)

    @classmethod
    def from_dict(cls, data: Any, *, keys: Iterable[bytes], source: str = "checkpoint") -> Checkpoint:
        """Parse and check the signature against any of ``keys`` (current and retired signing keys);
        :class:`InvalidCheckpoint` names ``source`` and the problem."""
        if not isinstance(data, Mapping):
            raise InvalidCheckpoint(f"{source}: a checkpoint is a mapping with seq, hash and signature")
        seq, digest, kind, sig = data.get("seq"), data.get("hash"), data.get("kind", "head"), data.get("signature")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise InvalidCheckpoint(f"{source}: seq must be a positive integer")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise InvalidCheckpoint(f"{source}: hash must be 64 lower-case hex digits")
        if kind not in ("head", "anchor"):
            raise InvalidCheckpoint(f"{source}: kind must be head or anchor")
        if not isinstance(sig, str):
            raise InvalidCheckpoint(f"{source}: signature is missing")
        point = cls(seq=seq, hash=digest, kind=kind, signature=sig)
        if not point.signed_by_any(keys):
            raise InvalidCheckpoint(f"{source}: the signature does not match this server's key")
        return point


def sign_checkpoint(point: Checkpoint, *, key: bytes) -> Checkpoint:
    mac = hmac.new(key, point.payload(), hashlib.sha256).digest()
    return replace(point, signature=base64.urlsafe_b64encode(mac).decode().rstrip("="))


# --- verification ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    #: seq of the first record that is wrong or missing; None when ok
    bad_seq: int | None = None
    reason: str = ""
    last_seq: int = 0


class ChainVerifier:
    """Streams records in seq order and stops at the first inconsistency.

    ``anchor`` is the retention anchor (first kept seq and its prev_hash), or None for a chain that starts
    at seq 1. ``checkpoints`` are trusted (already signature-checked) head checkpoints.
    """

    def __init__(self, *, anchor: Checkpoint | None = None, checkpoints: Iterable[Checkpoint] = ()) -> None:
        self._expected_seq = anchor.seq if anchor else 1
        self._prev_hash = anchor.hash if anchor else GENESIS_HASH
        self._checkpoints = {c.seq: c.hash for c in checkpoints if c.kind == "head"}
        self.checked = 0
        self.failure: VerifyResult | None = None

    def feed(self, record: AuditRecord) -> bool:
        """Check one record; False (and ``failure`` set) at the first bad one."""
        if self.failure is not None:
            return False
        seq = record.seq
        if seq != self._expected_seq:
            if seq > self._expected_seq:
                return self._fail(self._expected_seq, f"record {self._expected_seq} is missing (deleted)")
            return self._fail(seq, f"record {seq} is out of order (expected {self._expected_seq})")
        if record.prev_hash != self._prev_hash:
            return self._fail(seq, f"record {seq} does not link to record {seq - 1} (deleted or swapped)")
        if chain_hash(record) != record.hash:
            return self._fail(seq, f"record {seq} was modified (its hash does not match its content)")
        expected = self._checkpoints.get(seq)
        if expected is not None and expected != record.hash:
            return self._fail(seq, f"record {seq} does not match the exported checkpoint")
        self._expected_seq = seq + 1
        self._prev_hash = record.hash
        self.checked += 1
        return True

    def finish(self) -> VerifyResult:
        if self.failure is not None:
            return self.failure
        last = self._expected_seq - 1
        beyond = sorted(s for s in self._checkpoints if s > last)
        if beyond:
            return VerifyResult(
                False,
                self.checked,
                last + 1,
                f"record {last + 1} is missing: the log ends at seq {last} but a checkpoint covers seq "
                f"{beyond[-1]} (truncated)",
                last,
            )
        return VerifyResult(True, self.checked, None, "", last)

    def _fail(self, seq: int, reason: str) -> bool:
        self.failure = VerifyResult(False, self.checked, seq, reason, self._expected_seq - 1)
        return False


def verify_chain(
    records: Iterable[AuditRecord], *, anchor: Checkpoint | None = None, checkpoints: Iterable[Checkpoint] = ()
) -> VerifyResult:
    verifier = ChainVerifier(anchor=anchor, checkpoints=checkpoints)
    for record in records:
        if not verifier.feed(record):
            break
    return verifier.finish()
