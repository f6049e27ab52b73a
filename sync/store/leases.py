"""App leases in the database: which ``serve`` replica reconciles which app, and which replicas are alive.

Who calls it: :class:`sync.leases.AppLeases` (the sharing policy) through :attr:`sync.store.SyncStore.leases`.
Every write is one short transaction; a claim only ever inserts a missing lease or takes over an expired one, so
two replicas never hold one app's unexpired lease at once (the primary key and the expiry test decide).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sync.store import db, tables

__all__ = ["Lease", "LeaseStore"]

_L = tables.app_leases
_R = tables.replicas
_A = tables.apps

AppKey = tuple[str, str]


@dataclass(frozen=True)
class Lease:
    owner: str
    expires_at: datetime


class LeaseStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def heartbeat(self, owner: str, *, now: datetime, seconds: float) -> list[str]:
        """Record that ``owner`` is alive until ``now + seconds``, forget dead replicas; the live ones, sorted."""
        until = db.micros(now + timedelta(seconds=seconds))
        with db.write_connection(self._engine) as conn, conn.begin():
            conn.execute(sa.delete(_R).where(_R.c.expires_at < db.micros(now)))
            updated = conn.execute(_R.update().where(_R.c.owner == owner).values(expires_at=until)).rowcount
            if not updated:
                conn.execute(_R.insert().values(owner=owner, expires_at=until))
            rows = conn.execute(sa.select(_R.c.owner).order_by(_R.c.owner)).all()
        return [r.owner for r in rows]

    def leases(self) -> dict[AppKey, Lease]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_L)).all()
        return {(r.namespace, r.name): Lease(r.owner, db.from_micros(r.expires_at)) for r in rows}

    def renew(self, owner: str, *, now: datetime, seconds: float) -> None:
        """Extend every lease ``owner`` holds (one statement); leases of deleted apps are dropped."""
        until = db.micros(now + timedelta(seconds=seconds))
        gone = ~sa.exists().where(_A.c.namespace == _L.c.namespace, _A.c.name == _L.c.name)
        with db.write_connection(self._engine) as conn, conn.begin():
            conn.execute(sa.delete(_L).where(gone))
            conn.execute(_L.update().where(_L.c.owner == owner).values(expires_at=until))

    def claim(self, owner: str, key: AppKey, *, now: datetime, seconds: float) -> bool:
        """Take the app's lease when nobody holds it or its holder let it expire."""
        until = db.micros(now + timedelta(seconds=seconds))
        where = sa.and_(_L.c.namespace == key[0], _L.c.name == key[1])
        try:
            with db.write_connection(self._engine) as conn, conn.begin():
                taken = conn.execute(_L.update().where(where, sa.or_(_L.c.expires_at < db.micros(now),
                                                                     _L.c.owner == owner))
                                     .values(owner=owner, expires_at=until)).rowcount
                if taken:
                    return True
                if conn.execute(sa.select(_L.c.owner).where(where)).first() is not None:
                    return False
                conn.execute(_L.insert().values(namespace=key[0], name=key[1], owner=owner, expires_at=until))
                return True
        except sa.exc.IntegrityError:  # another replica inserted it first
            return False

    def release(self, owner: str, keys: Iterable[AppKey]) -> None:
        """Give up these leases (another replica may claim them at once)."""
        with db.write_connection(self._engine) as conn, conn.begin():
            for namespace, name in keys:
                conn.execute(sa.delete(_L).where(_L.c.owner == owner, _L.c.namespace == namespace,
                                                 _L.c.name == name))

    def retire(self, owner: str) -> None:
        """A replica that stops cleanly hands everything over at once."""
        with db.write_connection(self._engine) as conn, conn.begin():
            conn.execute(sa.delete(_L).where(_L.c.owner == owner))
            conn.execute(sa.delete(_R).where(_R.c.owner == owner))
