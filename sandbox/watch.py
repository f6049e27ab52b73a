"""Watch streams: the events of one resource (optionally one namespace and selector) from a
resourceVersion on, as newline-delimited JSON ``{"type": ..., "object": ...}`` frames.

Semantics follow the API server: no resourceVersion (or "0") starts with a synthetic ADDED per existing
object; a resourceVersion older than the retained history gets an ERROR event carrying a 410 Expired
``Status`` (which the official client turns into ``ApiException(410)``); a selector change in an update
shows up as ADDED or DELETED for that watcher; ``allowWatchBookmarks`` adds BOOKMARK events;
``timeoutSeconds`` ends the stream. Called by ``sandbox.server`` with a frame writer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.core import Core
from sandbox.errors import ApiError, status_object
from sandbox.store import Event, TooOld
from sandbox.verbs import Target, render, selector

__all__ = ["stream"]

# Upper bound on a watch without timeoutSeconds (the API server picks 30-60 minutes at random).
MAX_TIMEOUT = 1800.0
# How often a waiting watcher wakes to check whether the server is stopping.
POLL = 0.25


def _gone(rv: int, oldest: int) -> dict[str, Any]:
    return {
        "type": "ERROR",
        "object": status_object(410, f"too old resource version: {rv} ({oldest})", reason="Expired"),
    }


def stream(
    core: Core,
    target: Target,
    query: Mapping[str, str],
    write: Callable[[dict[str, Any]], None],
    *,
    stopping: threading.Event,
    bookmark_interval: float,
) -> None:
    """Write frames until the timeout, the server stops, or the client goes away (``OSError``)."""
    rtype = target.rtype
    match = selector(query)
    bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
    try:
        timeout = min(float(query.get("timeoutSeconds") or MAX_TIMEOUT), MAX_TIMEOUT)
    except ValueError:
        raise ApiError(400, f"timeoutSeconds: invalid value {query.get('timeoutSeconds')!r}") from None
    raw_rv = query.get("resourceVersion") or "0"
    try:
        since = int(raw_rv)
    except ValueError:
        raise ApiError(400, f'resourceVersion: invalid value "{raw_rv}"') from None

    def visible(obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if target.namespace is not None and obj["metadata"].get("namespace", "") != target.namespace:
            return False
        return match.matches(obj)

    def frames(events: list[Event]) -> list[dict[str, Any]]:
        out = []
        for event in events:
            if event.key[:2] != (rtype.group, rtype.plural):
                continue
            now_in, was_in = visible(event.obj) and event.type != "DELETED", visible(event.prev)
            if event.type == "ADDED" and now_in:
                kind = "ADDED"
            elif event.type == "MODIFIED" and (now_in or was_in):
                kind = "MODIFIED" if now_in and was_in else ("ADDED" if now_in else "DELETED")
            elif event.type == "DELETED" and (was_in or visible(event.obj)):
                kind = "DELETED"
            else:
                continue
            out.append({"type": kind, "object": render(rtype, event.obj)})
        return out

    def bookmark(rv: int, initial_end: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"type": "BOOKMARK", "object": {"kind": rtype.kind, "apiVersion": rtype.api_version,
                                               "metadata": meta}}

    pending: list[dict[str, Any]] = []
    with core.store.lock:
        if since == 0 or query.get("sendInitialEvents") == "true":
            since = core.store.resource_version
            pending = [{"type": "ADDED", "object": render(rtype, o)}
                       for o in core.store.objects(rtype.group, rtype.plural, target.namespace) if visible(o)]
            if query.get("sendInitialEvents") == "true" and bookmarks:
                pending.append(bookmark(since, initial_end=True))
        else:
            try:
                core.store.events_since(since)
            except TooOld:
                pending, since = [_gone(since, core.store.resource_version)], -1
    for frame in pending:
        write(frame)
    if since < 0:
        return
    started = time.monotonic()
    deadline = started + timeout
    next_bookmark = started + bookmark_interval
    while not stopping.is_set():
        now = time.monotonic()
        if now >= deadline:
            break
        with core.store.changed:
            try:
                events = core.store.events_since(since)
            except TooOld:
                write(_gone(since, core.store.resource_version))
                return
            if not events:
                wait = min(POLL, deadline - now)
                if bookmarks:
                    wait = min(wait, max(next_bookmark - now, 0.01))
                core.store.changed.wait(wait)
            else:
                since = events[-1].rv
        for frame in frames(events):
            write(frame)
        if bookmarks and time.monotonic() >= next_bookmark:
            write(bookmark(since))
            next_bookmark = time.monotonic() + bookmark_interval
    if bookmarks and not stopping.is_set():
        write(bookmark(since))
