"""The service-level API over apps that the CLI and the HTTP API call: create, get, list, update, delete,
confirm deletion, sync, history, rollback, refresh and waiting for an operation.

Who calls this: ``api`` (routes and the Typer CLI) after authentication and RBAC; this layer does not
authorise, it records who asked (``subject``) in the operation so the gate (RBAC, windows, ``override``)
and the audit log see it. Requests are validated here and refused with a clear error:

* a sync or rollback while another operation runs: ``OperationInProgress`` (HTTP 409), never two at once;
* a rollback while automated sync is on ("rollback cannot be initiated when auto-sync is enabled"), of an
  unknown history id, or of an entry without a source: ``InvalidAppRequest``;
* any operation on an app being deleted: ``InvalidAppRequest``.

Time is a parameter (``now``) everywhere except :meth:`AppService.wait_for_operation`, an entry point that
waits, with an injected ``clock`` and ``sleep``.
"""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sync import approval
from sync.autosync import spec_hash
from sync.engine_request import SelectedResource
from sync.operation import OperationState
from sync.oprequest import OperationRequest
from sync.reconcile_delete import RESOURCES_FINALIZER, RESOURCES_FINALIZERS
from sync.reconcile_delete_hooks import MANAGED_FINALIZERS
from sync.reconciler import Reconciler
from sync.render_cache import digest
from sync.store import (
    AppStatus,
    HistoryEntry,
    OperationRecord,
    RefreshLevel,
    StoredApp,
    SyncStore,
)

__all__ = ["AppService", "AppView", "InvalidAppRequest", "OperationWaitTimeout"]


class InvalidAppRequest(ValueError):
    """A request the app's state does not allow; the message says why (HTTP 400/409, CLI exit 2)."""


class OperationWaitTimeout(TimeoutError):
    pass


@dataclass(frozen=True)
class AppView:
    app: StoredApp
    status: AppStatus
    operation: OperationRecord | None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.app.manifest)
        status = self.status.to_dict()
        if self.operation is not None and self.operation.state is not None:
            status["operationState"] = self.operation.state
        if self.operation is not None and self.operation.in_progress:
            out["operation"] = self.operation.request
        out["status"] = status
        return out


class AppService:
    def __init__(self, store: SyncStore, *, reconciler: Reconciler | None = None) -> None:
        """With a ``reconciler`` (local mode), waiting for an operation drives it; without one a server loop
        elsewhere does, and waiting only watches the store."""
        self.store = store
        self.reconciler = reconciler

    # -- apps ----------------------------------------------------------------------------------------------

    def create(self, manifest: Mapping[str, Any], *, now: datetime, source: str = "") -> StoredApp:
        app = self.store.apps.create(manifest, now=now, source=source)
        self._wake()
        return app

    def get(self, namespace: str, name: str) -> AppView:
        stored = self.store.apps.get(namespace, name)
        status = self.store.apps.status(namespace, name)
        return AppView(stored, status, self.store.operations.operation(namespace, name))

    def list(self, *, project: str | None = None) -> list[StoredApp]:
        return self.store.apps.list(project=project)

    def update(self, manifest: Mapping[str, Any], *, now: datetime, expected_version: int | None = None,
               source: str = "") -> StoredApp:
        # the PreDelete/PostDelete finalizers the reconciler put on stay: an edit must not let a deletion skip hooks
        app = self.store.apps.update(manifest, now=now, expected_version=expected_version, source=source,
                                     keep_finalizers=MANAGED_FINALIZERS)
        self._wake()
        return app

    def delete(self, namespace: str, name: str, *, now: datetime, cascade: bool = True) -> StoredApp:
        """Mark the app deleted; with ``cascade`` (Argo CD's default) its resources are deleted first."""
        current = self.store.apps.get(namespace, name)
        kept = tuple(f for f in current.application().finalizers if f not in RESOURCES_FINALIZERS)
        has = [f for f in current.application().finalizers if f in RESOURCES_FINALIZERS]
        finalizers = (*kept, *(has or [RESOURCES_FINALIZER])) if cascade else kept
        app = self.store.apps.mark_deleting(namespace, name, now=now, finalizers=finalizers)
        self._wake()
        return app

    def confirm_deletion(self, namespace: str, name: str, *, now: datetime) -> StoredApp:
        """Approve deletions up to ``now`` (Argo CD ``argocd app confirm-deletion``): sets the app's
        ``argocd.argoproj.io/deletion-approved`` to ``now``, which lets the prunes of a running operation that
        wait for ``Prune=confirm`` go on, and a cascading deletion waiting for ``Delete=confirm``."""
        app = self.store.apps.annotate(namespace, name, {approval.DELETION_APPROVED: approval.approval_value(now)},
                                       now=now)
        self._wake()
        return app

    # -- operations ----------------------------------------------------------------------------------------

    def sync(self, namespace: str, name: str, *, now: datetime, subject: str | None,
             groups: Sequence[str] = (), revision: str = "", prune: bool = False, dry_run: bool = False,
             resources: Sequence[SelectedResource] = (), apply_strategy: bool = False, force: bool = False,
             override_reason: str | None = None, sync_options: Sequence[str] | None = None) -> str:
        """Request a manual sync; returns the operation id. ``OperationInProgress`` if one is running."""
        stored = self._live_app(namespace, name)
        app = stored.application()
        policy = app.sync_policy
        if revision and len(app.sources) > 1:
            raise InvalidAppRequest("revision: applies to single-source apps only")
        if override_reason is not None and not override_reason.strip():
            raise InvalidAppRequest("override reason: must not be empty")
        request = OperationRequest(
            trigger="manual", subject=subject, groups=tuple(groups), revision=revision, prune=prune,
            dry_run=dry_run, apply_strategy=apply_strategy, force=force, resources=tuple(resources),
            sync_options=tuple(sync_options) if sync_options is not None else (
                tuple(policy.sync_options) if policy else ()),
            override_reason=override_reason, retry=policy.retry if policy else None, spec_hash=spec_hash(app),
        )
        return self._start(stored, request, now)

    def rollback(self, namespace: str, name: str, history_id: int, *, now: datetime, subject: str | None,
                 groups: Sequence[str] = (), prune: bool = False, dry_run: bool = False) -> str:
        """Sync to the source and revision of a history entry (hooks skipped, as in Argo CD)."""
        stored = self._live_app(namespace, name)
        app = stored.application()
        if app.automated:
            raise InvalidAppRequest("rollback cannot be initiated when auto-sync is enabled")
        entry = self.store.operations.history_entry(namespace, name, history_id)
        if not entry.sources:
            raise InvalidAppRequest(f"history entry {history_id} has no source to roll back to")
        policy = app.sync_policy
        request = OperationRequest(
            trigger="rollback", subject=subject, groups=tuple(groups),
            revision=entry.revisions[0] if len(entry.revisions) == 1 else "", prune=prune, dry_run=dry_run,
            apply_strategy=True, sources=tuple(entry.sources),
            sync_options=tuple(policy.sync_options) if policy else (), retry=policy.retry if policy else None,
            spec_hash=digest(entry.sources), rollback_id=history_id,
        )
        return self._start(stored, request, now)

    def terminate(self, namespace: str, name: str, *, now: datetime, subject: str | None) -> str:
        """Stop the running operation at its next tick (also cancels a pending retry); returns its id."""
        record = self.store.operations.operation(namespace, name)
        if record is None or record.request is None:
            raise InvalidAppRequest(f"application {namespace}/{name} has no operation in progress")
        request = replace(OperationRequest.from_dict(record.request), terminate=True, terminated_by=subject)
        self.store.operations.update_request(namespace, name, op_id=record.op_id, request=request.to_dict(), now=now)
        self._wake()
        return record.op_id

    def history(self, namespace: str, name: str) -> builtins.list[HistoryEntry]:
        self.store.apps.get(namespace, name)
        return self.store.operations.history(namespace, name)

    def refresh(self, namespace: str, name: str, *, now: datetime, level: RefreshLevel = "normal",
                requested_by: str = "") -> None:
        """Ask for a comparison now (``hard`` also re-renders); a Git webhook passes
        ``requested_by=sync.reconciler.WEBHOOK``, so an automatic sync it leads to reaches the gate as one."""
        self.store.apps.get(namespace, name)
        self.store.operations.request_refresh(namespace, name, level=level, now=now, requested_by=requested_by)
        self._wake()

    def operation_state(self, namespace: str, name: str) -> OperationState | None:
        record = self.store.operations.operation(namespace, name)
        if record is None or record.state is None:
            return None
        return OperationState.from_dict(record.state)

    def wait_for_operation(self, namespace: str, name: str, *, timeout_seconds: float,
                           op_id: str | None = None, poll_seconds: float = 0.2,
                           clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                           sleep: Callable[[float], None] = time.sleep) -> OperationState:
        """Wait until the app's operation (``op_id``, or the current one) completes; returns its final state.

        In local mode (a reconciler was given) each wait step advances the operation by one tick.
        ``OperationWaitTimeout`` after ``timeout_seconds``; the operation goes on.
        """
        start = clock()
        while True:
            record = self.store.operations.operation(namespace, name)
            if record is None:
                raise InvalidAppRequest(f"application {namespace}/{name} has no operation")
            if op_id is not None and record.op_id != op_id:
                raise InvalidAppRequest(f"operation {op_id} of {namespace}/{name} was replaced by {record.op_id}")
            if not record.in_progress and record.state is not None:
                return OperationState.from_dict(record.state)
            if (clock() - start).total_seconds() >= timeout_seconds:
                raise OperationWaitTimeout(
                    f"operation {record.op_id} of {namespace}/{name} still {record.phase} after {timeout_seconds:g}s"
                )
            if self.reconciler is not None:
                self.reconciler.process_app(namespace, name, now=clock())
            current = self.store.operations.operation(namespace, name)
            if current is not None and current.in_progress:
                sleep(poll_seconds)

    # -- helpers -------------------------------------------------------------------------------------------

    def _live_app(self, namespace: str, name: str) -> StoredApp:
        stored = self.store.apps.get(namespace, name)
        if stored.deleting_at is not None:
            raise InvalidAppRequest(f"application {namespace}/{name} is being deleted")
        return stored

    def _start(self, stored: StoredApp, request: OperationRequest, now: datetime) -> str:
        op_id = secrets.token_hex(8)
        self.store.operations.start(stored.namespace, stored.name, op_id=op_id, request=request.to_dict(), now=now)
        self._wake()
        return op_id

    def _wake(self) -> None:
        if self.reconciler is not None:
            self.reconciler.wake()
