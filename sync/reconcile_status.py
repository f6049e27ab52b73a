"""The status a reconciler pass stores for each app, and the pass's batched reads and writes of it.

Who calls this: :class:`sync.reconciler.Reconciler` only. A pass reads every status in one query at its start
and keeps its writes in :class:`PassState` until :func:`flush` commits them in one transaction (before any
operation starts, and at the end of the pass), so a pass over 1,000 unchanged apps costs two statements, not
2,000 (issue 6). If that one transaction fails, the writes are retried app by app so that one bad status is
reported against its own app, as a failure in the app's processing would be.

The status itself (``argocd-sync-semantics.md`` §2.6, §5): conditions keep the time they first appeared while
their (type, message) stays the same; a poll records its time and schedules the next poll; a drift comparison
keeps the last poll's time and schedule (an automated-sync retry time may bring the next look forward).
Orphaned resources (:func:`orphans_of`, when the app's project monitors them) are stored with the status and
raise their warning next to the comparison's conditions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sync import orphans
from sync.application import Application
from sync.autosync import AutoSyncDecision
from sync.cluster import ClusterError
from sync.compare import Comparison
from sync.compare_memo import CachedComparison
from sync.reconcile_env import Environment
from sync.store import AppStatus, SyncStore
from sync.store.apps import StatusIndex

__all__ = [
    "COMPARISON_ERROR",
    "DELETION_ERROR",
    "SYNC_ERROR",
    "PassState",
    "compared_status",
    "failed_status",
    "flush",
    "orphans_of",
    "with_condition",
]

log = logging.getLogger(__name__)

SYNC_ERROR = "SyncError"
COMPARISON_ERROR = "ComparisonError"
#: app deletion cannot go on (a PreDelete hook failed, a hook was denied, a delete failed); set by
#: :mod:`sync.reconcile_delete`, the one producer of this type
DELETION_ERROR = "DeletionError"

AppKey = tuple[str, str]


@dataclass
class PassState:
    """What the apps of one pass share: the statuses read at its start (None: read per app), the status
    writes not yet committed, and the repositories whose listing this pass already asked for afresh."""

    statuses: StatusIndex | None = None
    writes: list[tuple[str, str, AppStatus]] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)
    #: (namespace, name) of every app (None: read when first needed, for orphaned-resource detection)
    apps: set[AppKey] | None = None

    def app_keys(self, store: SyncStore) -> set[AppKey]:
        if self.apps is None:
            self.apps = {(namespace, name) for namespace, name, _ in store.apps.names()}
        return self.apps

    def status(self, store: SyncStore, key: AppKey) -> AppStatus:
        if self.statuses is None:
            return store.apps.status(*key)
        return self.statuses.get(key) or AppStatus()

    def schedule(self, store: SyncStore, key: AppKey) -> tuple[str, datetime | None]:
        """(compared_to, next_poll_at): all that deciding whether to compare needs."""
        if self.statuses is None:
            status = store.apps.status(*key)
            return status.compared_to, status.next_poll_at
        return self.statuses.schedule(key)


def flush(store: SyncStore, state: PassState, on_error: Callable[[AppKey, Exception], None]) -> None:
    """Commit the pending writes at once; if that fails, app by app, handing each failure to ``on_error``."""
    writes, state.writes = state.writes, []
    if not writes:
        return
    try:
        store.apps.put_statuses(writes)
        return
    except Exception:
        log.warning("writing %d statuses in one transaction failed; writing them one by one", len(writes),
                    exc_info=True)
    for namespace, name, status in writes:
        try:
            store.apps.put_status(namespace, name, status)
        except Exception as exc:  # as a failure inside the app's own processing: logged with the app
            log.exception("app %s/%s: storing the status failed", namespace, name)
            on_error((namespace, name), exc)


def _conditions(previous: AppStatus, fresh: list[dict[str, str]], now: datetime) -> list[dict[str, Any]]:
    """Fresh conditions; an unchanged (type, message) keeps its first timestamp (§2.6)."""
    seen = {(c.get("type"), c.get("message")): c.get("lastTransitionTime") for c in previous.conditions}
    return [{**c, "lastTransitionTime": seen.get((c["type"], c["message"])) or now.isoformat()} for c in fresh]


def with_condition(previous: AppStatus, kind: str, message: str | None, *, now: datetime) -> AppStatus:
    """``previous`` with its conditions of type ``kind`` replaced by one saying ``message`` (none when None);
    conditions of other types are kept, and an unchanged message keeps its first timestamp (§2.6)."""
    others = [c for c in previous.conditions if c.get("type") != kind]
    fresh = [{"type": kind, "message": message}] if message is not None else []
    return replace(previous, conditions=others + _conditions(previous, fresh, now))


def orphans_of(env: Environment, app: Application, comparison: Comparison, previous: AppStatus,
               ctx: PassState) -> tuple[list[dict[str, str]] | None, list[dict[str, str]]]:
    """The orphaned resources to store for ``app`` (None: its project does not monitor them) and the conditions
    they raise (:mod:`sync.orphans`). A namespace that cannot be listed keeps what the last status said."""
    def known_apps() -> set[str]:
        return {env.tracker.instance(name, namespace) for namespace, name in ctx.app_keys(env.store)}

    try:
        found = env.orphaned(app, comparison, known_apps=known_apps)
    except ClusterError as exc:
        log.warning("app %s/%s: listing its destination namespace for orphaned resources failed: %s",
                    app.namespace, app.name, exc)
        kept = [{"type": c["type"], "message": c["message"]} for c in previous.conditions
                if c.get("type") == orphans.ORPHANED_RESOURCE_WARNING]
        return previous.orphaned_resources, kept
    if found is None:
        return None, []
    resources, monitor = found
    warning = orphans.condition(resources, monitor)
    return resources, [] if warning is None else [warning.to_dict()]


def compared_status(previous: AppStatus, cached: CachedComparison, revisions: tuple[str, ...],
                    decision: AutoSyncDecision, *, compared_to: str, poll: bool,
                    next_poll: Callable[[], datetime], now: datetime,
                    orphaned: tuple[list[dict[str, str]] | None, list[dict[str, str]]] = (None, [])) -> AppStatus:
    """The status after a comparison; ``poll``: it was a poll (or stronger), not a drift comparison;
    ``next_poll()`` draws the next poll time (with its jitter) and is called only when one is needed;
    ``orphaned``: what :func:`orphans_of` found."""
    comparison = cached.comparison
    fresh = [c.to_dict() for c in comparison.conditions] + list(orphaned[1])
    if decision.error:
        fresh.append({"type": SYNC_ERROR, "message": decision.error})
    scheduled = next_poll() if poll else previous.next_poll_at
    if decision.retry_at is not None:
        scheduled = min(scheduled, decision.retry_at) if scheduled is not None else decision.retry_at
    return AppStatus(
        sync_status=comparison.sync_status.value,
        health_status=comparison.health.status.value,
        health_message=comparison.health.message,
        revisions=revisions,
        resources=list(cached.status_rows),
        conditions=_conditions(previous, fresh, now),
        compared_to=compared_to,
        reconciled_at=now if poll or previous.reconciled_at is None else previous.reconciled_at,
        next_poll_at=scheduled,
        orphaned_resources=orphaned[0],
    )


def failed_status(previous: AppStatus, message: str, *, compared_to: str, poll: bool,
                  next_poll: Callable[[], datetime], now: datetime) -> AppStatus:
    """The status of an app whose desired state could not be loaded: Unknown, with a ComparisonError."""
    return replace(
        previous,
        sync_status="Unknown",
        health_status="Unknown",
        health_message=message,
        conditions=_conditions(previous, [{"type": COMPARISON_ERROR, "message": message}], now),
        compared_to=compared_to,
        reconciled_at=now,
        next_poll_at=next_poll() if poll else previous.next_poll_at or next_poll(),
    )
