"""What an operation was asked to do, as stored with it: Argo CD's ``operation.sync`` plus who asked and why.

Who builds it: the reconciler (automated sync, self-heal) and :class:`sync.appservice.AppService` (manual
sync, rollback). The store keeps :meth:`OperationRequest.to_dict`; every tick of the operation reads it back
with :meth:`OperationRequest.from_dict` and turns it into the engine's options with :meth:`sync_options`.
The request keeps its own copy of the sync options (copied from the spec when it was created, §1.9), the
pinned revision and, for a rollback, the source taken from history.

Error tree::

    InvalidRequest (ValueError)   a request that cannot be honoured or read back; the message names the field
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync.application import Backoff, Retry
from sync.engine_request import SelectedResource, SyncOptions
from sync.gate import SyncTrigger

__all__ = ["TRIGGERS", "InvalidRequest", "OperationRequest", "retry_from_dict", "retry_to_dict"]

TRIGGERS: tuple[SyncTrigger, ...] = ("auto", "self-heal", "retry", "webhook", "manual", "rollback")


class InvalidRequest(ValueError):
    pass


def retry_to_dict(retry: Retry | None) -> dict[str, Any] | None:
    if retry is None:
        return None
    out: dict[str, Any] = {"limit": retry.limit, "refresh": retry.refresh}
    if retry.backoff is not None:
        out["backoff"] = {"duration": retry.backoff.duration, "factor": retry.backoff.factor,
                          "maxDuration": retry.backoff.max_duration}
    return out


def retry_from_dict(data: Any) -> Retry | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise InvalidRequest("retry: must be an object")
    backoff = data.get("backoff")
    return Retry(
        limit=int(data.get("limit", 0)),
        refresh=bool(data.get("refresh", False)),
        backoff=None if not isinstance(backoff, Mapping) else Backoff(
            duration=str(backoff.get("duration", "5s")), factor=int(backoff.get("factor", 2)),
            max_duration=str(backoff.get("maxDuration", "3m")),
        ),
    )


@dataclass(frozen=True)
class OperationRequest:
    """One requested sync. ``revision`` empty means the source's target revision, resolved on the first tick."""

    trigger: SyncTrigger
    #: ``alice`` / ``proj:web:ci``; None for the reconciler itself (Argo CD's ``initiatedBy.automated``)
    subject: str | None = None
    groups: tuple[str, ...] = ()
    revision: str = ""
    prune: bool = False
    dry_run: bool = False
    #: ``syncStrategy.apply``: skip hooks (rollbacks use it, as in Argo CD)
    apply_strategy: bool = False
    force: bool = False
    resources: tuple[SelectedResource, ...] = ()
    sync_options: tuple[str, ...] = ()
    #: a rollback's source(s), taken from history (Argo CD ``operation.sync.source``); empty: the spec's
    sources: tuple[dict[str, Any], ...] = ()
    override_reason: str | None = None
    retry: Retry | None = None
    #: the self-heal counter this operation carries (Argo CD ``autoHealAttemptsCount``)
    self_heal_attempts: int = 0
    #: hash of the spec sources this operation was created from (for the "already attempted" rule)
    spec_hash: str = ""
    #: the history id a rollback goes back to
    rollback_id: int | None = None
    #: set by a user's terminate request: the next tick stops the operation (no further retries)
    terminate: bool = False
    terminated_by: str | None = None

    @property
    def automated(self) -> bool:
        return self.subject is None and self.trigger in ("auto", "self-heal", "retry", "webhook")

    @property
    def selective(self) -> bool:
        return bool(self.resources)

    def initiated_by(self) -> dict[str, Any]:
        return {"automated": True} if self.subject is None else {"username": self.subject}

    def sync_options_for_engine(self, *, allow_empty: bool = False) -> SyncOptions:
        """The engine's options: the request's ``Key=value`` options, then its own flags."""
        return SyncOptions.parse(
            self.sync_options, prune=self.prune, dry_run=self.dry_run,
            skip_hooks=self.apply_strategy or self.selective, resources=self.resources,
            force=self.force, allow_empty=allow_empty,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "initiatedBy": self.initiated_by(),
            "subject": self.subject,
            "groups": list(self.groups),
            "revision": self.revision,
            "prune": self.prune,
            "dryRun": self.dry_run,
            "syncStrategy": "apply" if self.apply_strategy else "hook",
            "force": self.force,
            "resources": [{"group": r.group, "kind": r.kind, "name": r.name, "namespace": r.namespace}
                          for r in self.resources],
            "syncOptions": list(self.sync_options),
            "sources": [dict(s) for s in self.sources],
            "overrideReason": self.override_reason,
            "retry": retry_to_dict(self.retry),
            "autoHealAttemptsCount": self.self_heal_attempts,
            "specHash": self.spec_hash,
            "rollbackId": self.rollback_id,
            "terminate": self.terminate,
            "terminatedBy": self.terminated_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OperationRequest:
        if not isinstance(data, Mapping):
            raise InvalidRequest("operation request: must be an object")
        trigger = data.get("trigger")
        if trigger not in TRIGGERS:
            raise InvalidRequest(f"operation request: trigger: {trigger!r} is not one of {', '.join(TRIGGERS)}")
        resources = []
        for i, item in enumerate(data.get("resources") or []):
            if not isinstance(item, Mapping) or not item.get("kind") or not item.get("name"):
                raise InvalidRequest(f"operation request: resources[{i}]: needs kind and name")
            resources.append(SelectedResource(group=str(item.get("group") or ""), kind=str(item["kind"]),
                                              name=str(item["name"]), namespace=str(item.get("namespace") or "")))
        subject = data.get("subject")
        rollback_id = data.get("rollbackId")
        return cls(
            trigger=trigger,
            subject=None if subject is None else str(subject),
            groups=tuple(str(g) for g in data.get("groups") or ()),
            revision=str(data.get("revision") or ""),
            prune=bool(data.get("prune", False)),
            dry_run=bool(data.get("dryRun", False)),
            apply_strategy=data.get("syncStrategy") == "apply",
            force=bool(data.get("force", False)),
            resources=tuple(resources),
            sync_options=tuple(str(o) for o in data.get("syncOptions") or ()),
            sources=tuple(dict(s) for s in data.get("sources") or () if isinstance(s, Mapping)),
            override_reason=data.get("overrideReason"),
            retry=retry_from_dict(data.get("retry")),
            self_heal_attempts=int(data.get("autoHealAttemptsCount") or 0),
            spec_hash=str(data.get("specHash") or ""),
            rollback_id=None if rollback_id is None else int(rollback_id),
            terminate=bool(data.get("terminate", False)),
            terminated_by=None if data.get("terminatedBy") is None else str(data["terminatedBy"]),
        )
