"""Cluster calls on behalf of the sync engine: bounded retries of transient errors, and how to apply a task.

Who calls it: :mod:`sync.engine` and :mod:`sync.engine_steps`, for every read and write of an operation.
Transient errors (``Unavailable``: 429/5xx, timeouts, dropped connections; ``Conflict``: 409) are retried
within the tick a bounded number of times, waiting the server's ``Retry-After`` when it gave one (capped,
so a tick never blocks for long) and an exponential backoff otherwise; the wait goes through the injected
``sleep``. Everything else (``Invalid``, ``Forbidden``, ``NotFound`` ...) is raised at once: retrying a
rejected object cannot help (security-cases REL-03). A task whose write succeeded is recorded before the
next call, so a retry never repeats a write that already took effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sync import hooks
from sync.cluster import (
    ApplyMode,
    Cluster,
    Conflict,
    FieldValidation,
    NotFound,
    Propagation,
    Unavailable,
    UnknownKind,
)
from sync.engine_request import SyncOptions
from sync.models import ResourceKey

__all__ = ["FIELD_MANAGER", "ClusterCalls", "apply_mode", "field_validation", "namespaced_lookup"]

log = logging.getLogger(__name__)

#: the field manager of every server-side apply (Argo CD uses ``argocd-controller``)
FIELD_MANAGER = "syncwarden"

T = TypeVar("T")


class ClusterCalls:
    """One engine's access to its cluster: ``call`` retries transient failures, the rest raise."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        attempts: int,
        base_delay: float,
        max_delay: float,
        sleep: Callable[[float], None],
    ) -> None:
        self.cluster = cluster
        self.attempts = max(1, attempts)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep

    def call(self, what: str, fn: Callable[[], T]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except (Unavailable, Conflict) as exc:
                if attempt == self.attempts:
                    raise
                hint = exc.retry_after if isinstance(exc, Unavailable) else None
                delay = min(self.max_delay, hint if hint is not None else self.base_delay * 2 ** (attempt - 1))
                log.info("%s: %s; retrying in %.2fs (attempt %d of %d)", what, exc, delay, attempt, self.attempts)
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def get(self, key: ResourceKey) -> dict[str, Any] | None:
        """The live object, or None when it does not exist (or its kind is not served)."""
        try:
            return self.call(f"get {key}", lambda: self.cluster.get(key))
        except (NotFound, UnknownKind):
            return None

    def apply(
        self,
        obj: Mapping[str, Any],
        *,
        mode: ApplyMode,
        force: bool,
        dry_run: bool,
        field_validation: FieldValidation = "Strict",
    ) -> dict[str, Any]:
        what = f"apply {obj.get('kind')} {(obj.get('metadata') or {}).get('name')}"
        return self.call(
            what,
            lambda: self.cluster.apply(
                obj, field_manager=FIELD_MANAGER, force=force, dry_run=dry_run, mode=mode,
                field_validation=field_validation,
            ),
        )

    def delete(self, key: ResourceKey, *, propagation: Propagation) -> bool:
        """Delete; False when the object was already gone."""
        try:
            self.call(f"delete {key}", lambda: self.cluster.delete(key, propagation=propagation))
        except NotFound:
            return False
        return True


def apply_mode(
    target: Mapping[str, Any], live: Mapping[str, Any] | None, options: SyncOptions
) -> tuple[ApplyMode, bool]:
    """How to write one object, and whether to force (§4.7).

    ``Replace=true`` (app, target or live) wins; otherwise server-side apply with forced conflicts unless
    disabled app-wide or by ``ServerSideApply=false`` on the resource (then client-side apply).
    ``Force=true`` comes from the target or the live object, or the operation's strategy.
    """
    on_target = hooks.sync_options(target)
    on_live = hooks.sync_options(live)
    force = options.force or "true" in (on_target.get("Force"), on_live.get("Force"))
    if options.replace or "true" in (on_target.get("Replace"), on_live.get("Replace")):
        return "replace", force
    ssa = on_target.get("ServerSideApply", "true" if options.server_side_apply else "false").lower() != "false"
    if ssa:
        return "server-side", True
    return "client-side", force


def field_validation(target: Mapping[str, Any], options: SyncOptions) -> FieldValidation:
    """``Ignore`` when ``Validate=false`` is an app sync option or on the resource, else ``Strict`` (§4.7).

    A resource can only turn validation off, as in Argo CD; dry runs and writes use the same setting.
    """
    if not options.validate or hooks.sync_options(target).get("Validate", "").lower() == "false":
        return "Ignore"
    return "Strict"


def namespaced_lookup(cluster: Cluster) -> Callable[[str, str], bool | None]:
    """``(group, kind) → namespaced?`` for the planner; None for kinds the cluster does not serve."""
    cache: dict[tuple[str, str], bool | None] = {}

    def lookup(group: str, kind: str) -> bool | None:
        if (group, kind) not in cache:
            try:
                cache[(group, kind)] = cluster.is_namespaced(group, kind)
            except UnknownKind:
                cache[(group, kind)] = None
        return cache[(group, kind)]

    return lookup
