"""Deletion confirmation: ``Prune=confirm`` / ``Delete=confirm`` and the app's ``deletion-approved`` annotation.

Who calls this: the sync engine (:mod:`sync.engine_steps`: a prune of a ``Prune=confirm`` object waits until
the app approves deletions made after the operation started), app finalisation (:mod:`sync.reconcile_delete`:
``Delete=confirm`` waits for an approval after the deletion mark), the comparison (:mod:`sync.compare`: the
``requiresDeletionConfirmation`` of a resource row) and :class:`sync.appservice.AppService` (``app
confirm-deletion`` writes the annotation). Pure; the caller passes the times (``argocd-sync-semantics.md`` §0,
§1.10, §2.4, §4.6, §4.16).

The approval is ``argocd.argoproj.io/deletion-approved: <RFC3339 time>`` on the Application. It counts only
when it is at or after the moment it approves (the operation's start, the deletion mark); Argo CD keeps that
moment with second precision, so it is compared at second precision here too (an approval written by hand
within the same second as the start counts). A value that is not an RFC3339 time with an offset approves
nothing (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sync import hooks

__all__ = ["DELETION_APPROVED", "approval_value", "approved_at", "approved_since", "option",
           "requires_confirmation"]

DELETION_APPROVED = "argocd.argoproj.io/deletion-approved"

#: RFC 3339 ``date-time`` (section 5.6): a full date, ``T``, a time with optional fraction, ``Z`` or an offset
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def approved_at(annotations: Mapping[str, Any]) -> datetime | None:
    """The time in the app's ``deletion-approved`` annotation; None when absent or not an RFC3339 time."""
    raw = annotations.get(DELETION_APPROVED)
    if not isinstance(raw, str) or not _RFC3339.fullmatch(raw.strip()):
        return None
    try:
        return datetime.fromisoformat(raw.strip().upper())
    except ValueError:  # e.g. month 13: the shape matched, the date does not exist
        return None


def approved_since(annotations: Mapping[str, Any], since: datetime) -> bool:
    """Does the annotation approve deletions from ``since`` on (at second precision, as Argo CD)?"""
    at = approved_at(annotations)
    return at is not None and at >= since.replace(microsecond=0)


def approval_value(now: datetime) -> str:
    """The annotation value approving deletions up to ``now`` (RFC3339 in UTC, seconds, as ``argocd`` writes)."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def option(objects: Iterable[Mapping[str, Any] | None], app_options: Iterable[str], key: str) -> str | None:
    """The value of sync option ``key`` for a resource: the first of ``objects`` (target, then live) whose
    ``argocd.argoproj.io/sync-options`` annotation sets it, else the app-level option (last one wins)."""
    for obj in objects:
        own = hooks.sync_options(obj).get(key)
        if own is not None:
            return own
    found = None
    for raw in app_options:
        name, sep, value = raw.partition("=")
        if sep and name.strip() == key:
            found = value.strip()
    return found


def requires_confirmation(
    target: Mapping[str, Any] | None, live: Mapping[str, Any] | None, app_options: Iterable[str]
) -> bool:
    """``requiresDeletionConfirmation`` of a resource (§2.4): the target or the live object says
    ``Delete=confirm`` or ``Prune=confirm``, or neither sets that option and the app-level one is ``confirm``."""
    app_options = tuple(app_options)
    for key in ("Delete", "Prune"):
        own = [value for obj in (target, live) if (value := hooks.sync_options(obj).get(key)) is not None]
        if "confirm" in own or (not own and option((), app_options, key) == "confirm"):
            return True
    return False
