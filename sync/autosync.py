"""The automated-sync decision (Argo CD ``autoSync``, ``alreadyAttemptedSync``, ``selfHealRemainingBackoff``).

Who calls this: :mod:`sync.reconciler`, at the end of every full comparison. Pure: it gets the app, the
fresh comparison's statuses, whether an operation is in progress, the bookkeeping of the last attempt and
``now``, and says what to do (``argocd-sync-semantics.md`` §5.4–§5.6):

* no automated policy, an operation in progress, an app being deleted, or a status other than OutOfSync:
  nothing;
* automated prune off and only pruning is needed: nothing ("need to prune extra resources only...");
* already attempted (same resolved revisions *and* same spec-source hash): if that attempt did not succeed,
  a ``SyncError`` ("Failed last sync attempt to ...") and no sync, so a failed revision is never retried
  beyond the operation's own retry budget; if it succeeded, nothing unless self-heal is on, in which case
  the self-heal backoff ``0, base, base×factor, ...`` (capped) must have elapsed since the last operation
  ended, and the sync is restricted to the resources that are not Synced (a selective sync: no hooks,
  no history entry);
* the empty-sync guard: with automated prune on and ``allowEmpty`` off, a sync in which every resource
  would be pruned is refused with a ``SyncError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sync import appparse
from sync.application import Application
from sync.engine_request import SelectedResource
from sync.operation import DEFAULT_AUTOMATED_RETRY
from sync.oprequest import OperationRequest
from sync.render_cache import digest
from sync.store.records import AutoSyncRecord

__all__ = ["AutoSyncDecision", "SelfHealBackoff", "decide", "spec_hash"]

SYNC_ERROR = "SyncError"


@dataclass(frozen=True)
class SelfHealBackoff:
    """Argo CD's controller flags: 2 s base, ×3, capped at 300 s (§5.6)."""

    base_seconds: float = 2.0
    factor: float = 3.0
    cap_seconds: float = 300.0

    def delay(self, attempts: int) -> timedelta:
        """0 for the first self-heal, then ``min(cap, base × factor^(n−1))``."""
        if attempts <= 0:
            return timedelta(0)
        try:
            seconds = self.base_seconds * self.factor ** (attempts - 1)
        except OverflowError:
            seconds = self.cap_seconds
        return timedelta(seconds=min(self.cap_seconds, seconds))


@dataclass(frozen=True)
class AutoSyncDecision:
    """``request`` set: start this operation. ``error`` set: the ``SyncError`` condition's message.
    ``retry_at`` set: nothing now, but look again then (self-heal backoff)."""

    request: OperationRequest | None = None
    error: str = ""
    reason: str = ""
    retry_at: datetime | None = None


def spec_hash(app: Application) -> str:
    """A hash of the spec source(s): a changed path, parameter or targetRevision is a new combination."""
    return digest([appparse.source_to_dict(s) for s in app.sources])


def _revs(revisions: Sequence[str]) -> str:
    return ", ".join(r[:12] for r in revisions)


def decide(
    app: Application,
    *,
    sync_status: str,
    resources: Sequence[Mapping[str, Any]],
    revisions: tuple[str, ...],
    operation_in_progress: bool,
    deleting: bool,
    last: AutoSyncRecord | None,
    now: datetime,
    backoff: SelfHealBackoff,
) -> AutoSyncDecision:
    """What the reconciler should do about automated sync after a comparison (see the module docstring).

    ``resources`` are the comparison's rows (``status``: Synced/OutOfSync/Unknown or "" for hooks,
    ``requiresPruning``).
    """
    policy = app.sync_policy
    automated = policy.automated if policy is not None else None
    if automated is None or not automated.enabled:
        return AutoSyncDecision(reason="auto-sync is disabled")
    if operation_in_progress:
        return AutoSyncDecision(reason="another operation is in progress")
    if deleting:
        return AutoSyncDecision(reason="the app is being deleted")
    if sync_status != "OutOfSync":
        return AutoSyncDecision(reason=f"sync status is {sync_status}")
    if not automated.prune and all(
        r.get("status") == "Synced" or bool(r.get("requiresPruning")) for r in resources
    ):
        return AutoSyncDecision(reason="need to prune extra resources only but automated prune is disabled")
    current_hash = spec_hash(app)
    attempts = 0
    selected: tuple[SelectedResource, ...] = ()
    trigger: Any = "auto"
    if last is not None and last.revisions == revisions and last.spec_hash == current_hash:
        if last.phase != "Succeeded":
            return AutoSyncDecision(
                error=f"Failed last sync attempt to {_revs(revisions)}: {last.message}".rstrip(": "),
                reason="already attempted and failed",
            )
        if not automated.self_heal:
            return AutoSyncDecision(reason=f"most recent sync already to {_revs(revisions)}")
        attempts = last.self_heal_attempts
        ended = last.last_finished_at or last.attempted_at
        due = ended + backoff.delay(attempts)
        if due > now:
            return AutoSyncDecision(reason="self-heal backoff", retry_at=due)
        attempts += 1
        trigger = "self-heal"
        selected = tuple(
            SelectedResource(group=str(r.get("group") or ""), kind=str(r["kind"]), name=str(r["name"]),
                             namespace=str(r.get("namespace") or ""))
            for r in resources if r.get("status") != "Synced" and r.get("kind") and r.get("name")
        )
    if automated.prune and not automated.allow_empty and all(bool(r.get("requiresPruning")) for r in resources):
        return AutoSyncDecision(
            error=f"Skipping sync attempt to {_revs(revisions)}: auto-sync will wipe out all resources",
            reason="empty-sync guard",
        )
    retry = policy.retry if policy is not None and policy.retry is not None else DEFAULT_AUTOMATED_RETRY
    request = OperationRequest(
        trigger=trigger,
        revision=revisions[0] if len(revisions) == 1 else "",
        prune=automated.prune,
        resources=selected,
        sync_options=tuple(policy.sync_options) if policy is not None else (),
        retry=retry,
        self_heal_attempts=attempts,
        spec_hash=current_hash,
    )
    return AutoSyncDecision(request=request, reason="self-heal" if trigger == "self-heal" else "new revision")
