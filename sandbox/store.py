"""Objects, the global resourceVersion and the recent event history that watches replay.

One ``Store`` per sandbox. Every write takes the next resourceVersion from one counter shared by all
resources (as etcd's revision is), records a watch event in a bounded window, and wakes watchers.
Stored objects are never mutated in place: a write replaces the dict, so readers may serialise what
they got outside the lock. Used by ``sandbox.verbs``, ``sandbox.lifecycle``, ``sandbox.watch`` and the
controller loop in ``sandbox.app``; ``save``/``load`` implement ``--state FILE``.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Event", "Key", "Store", "TooOld"]

# (group, plural, namespace, name); namespace is "" for cluster-scoped objects.
Key = tuple[str, str, str, str]

# How many events a watch can replay. Older starting points get 410 Gone, as etcd compaction causes.
DEFAULT_WINDOW = 10_000
STATE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: Key
    obj: dict[str, Any]
    prev: dict[str, Any] | None = None  # the object before this event, for selector transitions


class TooOld(Exception):
    """The requested resourceVersion is older than the retained event window."""


class Store:
    def __init__(self, *, window: int = DEFAULT_WINDOW) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._rv = 0
        self._by_resource: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._by_uid: dict[str, Key] = {}
        self._dependents: dict[str, set[Key]] = {}
        self._events: deque[Event] = deque(maxlen=window)
        self._oldest = 0  # watches from an rv below this cannot be served
        self.dirty = False

    # ---- reads -----------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    def get(self, key: Key) -> dict[str, Any] | None:
        with self.lock:
            return self._by_resource.get(key[:2], {}).get(key[2:])

    def objects(self, group: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            bucket = self._by_resource.get((group, plural), {})
            if namespace is None:
                return [bucket[k] for k in sorted(bucket)]
            return [obj for (ns, name), obj in sorted(bucket.items()) if ns == namespace]

    def keys(self, group: str, plural: str) -> list[Key]:
        with self.lock:
            return [(group, plural, ns, name) for ns, name in self._by_resource.get((group, plural), {})]

    def resources(self) -> list[tuple[str, str]]:
        with self.lock:
            return [r for r, bucket in self._by_resource.items() if bucket]

    def key_of_uid(self, uid: str) -> Key | None:
        with self.lock:
            return self._by_uid.get(uid)

    def dependents(self, uid: str) -> list[Key]:
        """Keys of objects whose ownerReferences name ``uid``."""
        with self.lock:
            return sorted(self._dependents.get(uid, ()))

    def in_namespace(self, namespace: str) -> list[Key]:
        with self.lock:
            return [
                (group, plural, ns, name)
                for (group, plural), bucket in self._by_resource.items()
                for (ns, name) in bucket
                if ns == namespace
            ]

    # ---- writes ----------------------------------------------------------------------------------

    def next_rv(self) -> int:
        with self.lock:
            self._rv += 1
            return self._rv

    def put(self, key: Key, obj: dict[str, Any], event_type: str) -> dict[str, Any]:
        """Store ``obj`` under ``key`` with a fresh resourceVersion and emit ``event_type``."""
        with self.lock:
            rv = self.next_rv()
            obj["metadata"]["resourceVersion"] = str(rv)
            bucket = self._by_resource.setdefault(key[:2], {})
            old = bucket.get(key[2:])
            if old is not None:
                self._unindex(key, old)
            bucket[key[2:]] = obj
            self._index(key, obj)
            self._emit(Event(rv, event_type, key, obj, old))
            return obj

    def remove(self, key: Key) -> dict[str, Any] | None:
        with self.lock:
            bucket = self._by_resource.get(key[:2], {})
            old = bucket.pop(key[2:], None)
            if old is None:
                return None
            self._unindex(key, old)
            rv = self.next_rv()
            gone = dict(old)
            gone["metadata"] = dict(old["metadata"], resourceVersion=str(rv))
            self._emit(Event(rv, "DELETED", key, gone, old))
            return gone

    def _emit(self, event: Event) -> None:
        if self._events.maxlen is not None and len(self._events) == self._events.maxlen:
            self._oldest = self._events[0].rv
        self._events.append(event)
        self.dirty = True
        self.changed.notify_all()

    def _index(self, key: Key, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self._by_uid[meta["uid"]] = key
        for ref in meta.get("ownerReferences") or ():
            if isinstance(ref, dict) and isinstance(ref.get("uid"), str):
                self._dependents.setdefault(ref["uid"], set()).add(key)

    def _unindex(self, key: Key, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self._by_uid.pop(meta["uid"], None)
        for ref in meta.get("ownerReferences") or ():
            if isinstance(ref, dict) and isinstance(ref.get("uid"), str):
                owners = self._dependents.get(ref["uid"])
                if owners is not None:
                    owners.discard(key)
                    if not owners:
                        del self._dependents[ref["uid"]]

    # ---- watch history ---------------------------------------------------------------------------

    def events_since(self, rv: int) -> list[Event]:
        """Events after ``rv``; raises ``TooOld`` when some of them are no longer retained."""
        with self.lock:
            if rv < self._oldest:
                raise TooOld(rv)
            if not self._events or self._events[-1].rv <= rv:
                return []
            return [e for e in self._events if e.rv > rv]

    # ---- persistence -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            objects = [obj for bucket in self._by_resource.values() for obj in bucket.values()]
            return {"format": STATE_FORMAT, "resourceVersion": self._rv, "objects": objects}

    def save(self, path: Path) -> None:
        """Write the state atomically (a temporary file renamed over the old one).

        Serialisation happens outside the lock (stored objects are never mutated in place); a write
        that lands meanwhile marks the store dirty again, so the next save picks it up.
        """
        with self.lock:
            state = self.snapshot()
            self.dirty = False
        try:
            data = json.dumps(state, separators=(",", ":"))
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(data, encoding="utf-8")
            os.replace(tmp, path)
        except BaseException:
            self.dirty = True
            raise

    def restore(self, state: dict[str, Any], keys: Iterable[tuple[Key, dict[str, Any]]]) -> None:
        """Load objects (already keyed by the caller, who knows the resource types) without events."""
        with self.lock:
            for key, obj in keys:
                self._by_resource.setdefault(key[:2], {})[key[2:]] = obj
                self._index(key, obj)
            self._rv = int(state.get("resourceVersion", 0))
            self._oldest = self._rv
            self.dirty = False
