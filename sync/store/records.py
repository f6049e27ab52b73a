"""What the sync store hands out: frozen records of apps, their status, operations, history and bookkeeping,
and the store's errors.

Who uses them: :class:`sync.store.apps.AppStore` and :class:`sync.store.operations.OperationStore` build
them; the reconciler and :class:`sync.appservice.AppService` read them; ``api`` turns them into responses.
The operation request and state are plain JSON-able mappings here: their shape belongs to
:mod:`sync.oprequest` and :mod:`sync.operation`, the store only keeps them.

Error tree::

    StoreError (Exception)
    ├── AppNotFound                no such app (or history id)
    ├── AppExists                  create of a name that is taken
    ├── VersionConflict            optimistic concurrency: the app changed since it was read
    ├── OperationInProgress        another operation is already running for the app (Argo CD's wording)
    └── StaleOperation             a tick tried to save the state of an operation that is no longer current
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sync.application import Application

__all__ = [
    "AppExists",
    "AppNotFound",
    "AppStatus",
    "AutoSyncRecord",
    "HistoryEntry",
    "OperationInProgress",
    "OperationRecord",
    "RefreshLevel",
    "RefreshRequest",
    "StaleOperation",
    "StoreError",
    "StoredApp",
    "VersionConflict",
]

RefreshLevel = Literal["normal", "hard"]


class StoreError(Exception):
    pass


class AppNotFound(StoreError):
    pass


class AppExists(StoreError):
    pass


class VersionConflict(StoreError):
    pass


class OperationInProgress(StoreError):
    pass


class StaleOperation(StoreError):
    pass


@dataclass(frozen=True)
class StoredApp:
    namespace: str
    name: str
    project: str
    #: the Application manifest (Argo CD shape)
    manifest: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    #: set once deletion was requested (Argo CD's deletionTimestamp)
    deleting_at: datetime | None = None

    def application(self) -> Application:
        return Application.from_dict(self.manifest, source=f"stored app {self.namespace}/{self.name}")


@dataclass(frozen=True)
class AppStatus:
    """The result of the last comparison (Argo CD's ``status.sync``/``health``/``resources``/``conditions``)."""

    sync_status: str = "Unknown"
    health_status: str = "Unknown"
    health_message: str = ""
    revisions: tuple[str, ...] = ()
    resources: list[dict[str, Any]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    compared_to: str = ""
    reconciled_at: datetime | None = None
    next_poll_at: datetime | None = None
    #: top-level objects in the destination namespace that no app tracks (:mod:`sync.orphans`); None when the
    #: app's project does not monitor orphaned resources
    orphaned_resources: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sync": {"status": self.sync_status, "revisions": list(self.revisions), "comparedTo": self.compared_to},
            "health": {"status": self.health_status, "message": self.health_message},
            "resources": self.resources,
            "conditions": self.conditions,
            "reconciledAt": self.reconciled_at.isoformat() if self.reconciled_at else None,
        }
        if self.orphaned_resources is not None:
            out["orphanedResources"] = self.orphaned_resources
        return out


@dataclass(frozen=True)
class OperationRecord:
    """The current or last operation of an app. ``request`` is None once the operation completed."""

    op_id: str
    request: dict[str, Any] | None
    state: dict[str, Any] | None
    phase: str
    version: int
    updated_at: datetime
    #: the managedNamespaceMetadata the last sync that applied one applied (this operation or an earlier
    #: one); None when none ever was
    namespace_metadata: dict[str, Any] | None = None

    @property
    def in_progress(self) -> bool:
        return self.request is not None


@dataclass(frozen=True)
class HistoryEntry:
    """One successful, non-dry-run, non-selective sync (Argo CD ``status.history[]``, §2.5)."""

    id: int
    revisions: tuple[str, ...]
    sources: list[dict[str, Any]]
    deploy_started_at: datetime
    deployed_at: datetime
    initiated_by: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "revisions": list(self.revisions),
            "sources": self.sources,
            "deployStartedAt": self.deploy_started_at.isoformat(),
            "deployedAt": self.deployed_at.isoformat(),
            "initiatedBy": self.initiated_by,
        }


@dataclass(frozen=True)
class AutoSyncRecord:
    """The last automated attempt: what it synced, and the self-heal counter against that combination."""

    revisions: tuple[str, ...]
    spec_hash: str
    attempted_at: datetime
    #: how that attempt ended (an operation phase) and its message
    phase: str = ""
    message: str = ""
    self_heal_attempts: int = 0
    last_finished_at: datetime | None = None


@dataclass(frozen=True)
class RefreshRequest:
    level: RefreshLevel
    requested_at: datetime
    requested_by: str = ""
