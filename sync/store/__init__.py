"""Durable sync state: apps, their status, the operation in flight, history, auto-sync bookkeeping and
refresh requests, in the same database as the policy store but with its own tables and migration history.

SQLAlchemy and Alembic live only in this package (import-linter). ``api`` and the CLI open one
:class:`SyncStore` per process with :func:`open_sync_store` and hand it to the reconciler and to
:class:`sync.appservice.AppService`. Modules: ``db`` (engine, migrations; version table
``alembic_version_sync``), ``tables``, ``apps`` (apps and status), ``operations`` (operations, history,
bookkeeping, refresh requests), ``leases`` (which replica reconciles which app),
``records`` (what they return, and the error tree).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from sync.store import db
from sync.store.apps import AppStore
from sync.store.leases import Lease, LeaseStore
from sync.store.operations import OperationStore
from sync.store.records import (
    AppExists,
    AppNotFound,
    AppStatus,
    AutoSyncRecord,
    HistoryEntry,
    OperationInProgress,
    OperationRecord,
    RefreshLevel,
    RefreshRequest,
    StaleOperation,
    StoredApp,
    StoreError,
    VersionConflict,
)

__all__ = [
    "AppExists",
    "AppNotFound",
    "AppStatus",
    "AppStore",
    "AutoSyncRecord",
    "HistoryEntry",
    "Lease",
    "LeaseStore",
    "OperationInProgress",
    "OperationRecord",
    "OperationStore",
    "RefreshLevel",
    "RefreshRequest",
    "StaleOperation",
    "StoreError",
    "StoredApp",
    "SyncStore",
    "VersionConflict",
    "open_sync_store",
]


@dataclass(frozen=True, slots=True)
class SyncStore:
    engine: Engine
    apps: AppStore
    operations: OperationStore
    #: app leases shared by ``serve`` replicas (:mod:`sync.leases`)
    leases: LeaseStore

    def close(self) -> None:
        self.engine.dispose()


def open_sync_store(url: str, *, pool_size: int = 5, migrate: bool = True) -> SyncStore:
    """Connect, migrate (unless ``migrate=False``) and build the stores."""
    engine = db.create_engine(url, pool_size=pool_size)
    if migrate:
        db.migrate(engine)
    return SyncStore(engine=engine, apps=AppStore(engine), operations=OperationStore(engine),
                     leases=LeaseStore(engine))
