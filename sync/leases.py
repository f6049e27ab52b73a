"""Sharing apps between ``syncwarden serve`` replicas on one database: each app is reconciled by exactly one
replica at a time, and a replica that dies hands its apps over within a bounded time.

Who calls it: ``api.serve`` before every reconcile pass (:meth:`AppLeases.acquire`), then hands
:meth:`AppLeases.holds` to the reconciler (``Reconciler.holds``), which skips the apps it does not hold.

Before each pass a replica (1) renews its heartbeat and learns the live replicas, (2) renews its app leases, (3)
releases what exceeds its fair share ``ceil(apps / live replicas)`` — the highest app keys first, so the split is
stable — and (4) claims free or expired apps up to that share. Leases and heartbeats last ``lease_seconds``
(3× the renewal interval by default): a replica that stops renewing loses everything after at most
``lease_seconds``, and the survivors claim its apps on their next round (``api.serve`` runs one between passes
and one every third of ``lease_seconds`` without releasing), so a handover takes at most about
``4/3 × lease_seconds``. A clean stop (:meth:`retire`) hands over at once. Operations carry their own
lease (``OperationStore.claim``), so an operation is never ticked twice even while an app changes hands.
Time is a parameter (``now``).
"""

from __future__ import annotations

import logging
import math
import threading
from datetime import datetime

from sync.store import LeaseStore

__all__ = ["AppLeases"]

log = logging.getLogger(__name__)

AppKey = tuple[str, str]


class AppLeases:
    def __init__(self, store: LeaseStore, *, owner: str, lease_seconds: float) -> None:
        self.store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._held: frozenset[AppKey] = frozenset()
        self._lock = threading.Lock()
        self._round = threading.Lock()

    def acquire(self, apps: list[AppKey], *, now: datetime, release: bool = True) -> frozenset[AppKey]:
        """One round of the protocol above; the apps this replica holds until ``now + lease_seconds``. Without
        ``release`` a surplus is kept (for a round that runs while a pass may be reconciling those apps)."""
        with self._round:
            return self._acquire(apps, now=now, release=release)

    def _acquire(self, apps: list[AppKey], *, now: datetime, release: bool) -> frozenset[AppKey]:
        live = self.store.heartbeat(self.owner, now=now, seconds=self.lease_seconds)
        if self.owner not in live:
            live.append(self.owner)
        self.store.renew(self.owner, now=now, seconds=self.lease_seconds)
        leases = self.store.leases()
        existing = set(apps)
        mine = sorted(k for k, lease in leases.items() if lease.owner == self.owner and k in existing)
        share = math.ceil(len(existing) / len(live)) if existing else 0
        if release and len(mine) > share:
            surplus = mine[share:]
            self.store.release(self.owner, surplus)
            mine = mine[:share]
            log.info("replica %s: handed %d app(s) to other replicas (share %d of %d)", self.owner, len(surplus),
                     share, len(existing))
        held = set(mine)
        for key in sorted(existing - held):
            if len(held) >= share:
                break
            lease = leases.get(key)
            if lease is not None and lease.owner != self.owner and lease.expires_at >= now:
                continue
            if self.store.claim(self.owner, key, now=now, seconds=self.lease_seconds):
                if lease is not None:
                    log.info("replica %s: took over app %s/%s from %s", self.owner, *key, lease.owner)
                held.add(key)
        with self._lock:
            self._held = frozenset(held)
        return self._held

    def holds(self, key: AppKey) -> bool:
        with self._lock:
            return key in self._held

    def held(self) -> frozenset[AppKey]:
        with self._lock:
            return self._held

    def retire(self) -> None:
        """Stop cleanly: every lease and the heartbeat go, so the other replicas take over on their next pass."""
        with self._round, self._lock:
            self._held = frozenset()
            self.store.retire(self.owner)
