"""Remember each app's last comparison, so a poll that finds nothing changed does not compare again.

Who calls this: :class:`sync.reconciler.Reconciler`, for poll and drift comparisons only (a refresh request
or a spec change always compares afresh). A comparison is a pure function of the app's spec, the rendered
manifests, the live objects, the project's ``permitted`` verdicts, the cluster's scope lookup, and whatever
``fetch`` returned for target keys missing from the live objects (:func:`sync.compare.compare`). An entry is
reused only when every one of those is known to be the same:

* the spec: the stored app's version (bumped by every write of its manifest) and creation time;
* the manifests: the resolved commit of every source (a render at one commit of one spec is the same render;
  the reconciler resolves the revisions before looking here);
* the live objects: uid and resourceVersion of every object passed in (the server changes the
  resourceVersion on every write, so the watch cache's copies tell any change);
* ``permitted`` and the scope lookup: asked again for the entry's objects, and compared with the answers
  recorded (a project edit or a CRD change is seen at the next poll);
* ``fetch``: an entry is only kept when the comparison fetched nothing and has no conditions (warnings or
  errors), so nothing outside the inputs above was read.

The entry also holds the row dicts the reconciler stores and hands to the automated-sync decision, so a hit
costs no serialisation either. Callers must not mutate what they get back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sync.compare import Comparison
from sync.compare_targets import ScopeLookup

__all__ = ["CachedComparison", "ComparisonMemo", "SpecKey", "live_key"]

Obj = Mapping[str, Any]
#: (version, created_at) of a stored app
SpecKey = tuple[int, datetime]
LiveKey = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class CachedComparison:
    comparison: Comparison
    #: ``ResourceResult.to_dict()`` of every row (the automated-sync decision reads these)
    rows: tuple[dict[str, Any], ...]
    #: the same rows without ``diff`` (what the status stores)
    status_rows: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class _Entry:
    spec: SpecKey
    revisions: tuple[str, ...]
    live: LiveKey
    verdicts: tuple[bool, ...]
    scopes: tuple[bool | None, ...]
    cached: CachedComparison


def live_key(live: Iterable[Obj]) -> LiveKey | None:
    """What identifies these live objects' content; None when one lacks a resourceVersion (not memoisable)."""
    out = []
    for obj in live:
        meta = obj.get("metadata")
        if not isinstance(meta, Mapping) or not meta.get("resourceVersion"):
            return None
        out.append((str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""), str(meta.get("namespace") or ""),
                    str(meta.get("name") or ""), str(meta.get("uid") or ""), str(meta["resourceVersion"])))
    out.sort()
    return tuple(out)


def _objects(comparison: Comparison, live: Sequence[Obj]) -> list[Obj]:
    return [*comparison.targets, *live]


def _scope_kinds(objs: Iterable[Obj]) -> list[tuple[str, str]]:
    kinds = set()
    for obj in objs:
        api_version = str(obj.get("apiVersion") or "")
        kinds.add((api_version.rpartition("/")[0] if "/" in api_version else "", str(obj.get("kind") or "")))
    return sorted(kinds)


def cached_rows(comparison: Comparison) -> CachedComparison:
    rows = tuple(r.to_dict() for r in comparison.resources)
    return CachedComparison(comparison, rows, tuple({k: v for k, v in r.items() if k != "diff"} for r in rows))


class ComparisonMemo:
    """One entry per app (thread-safe); :meth:`retain` drops the entries of apps that are gone."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def lookup(self, app: tuple[str, str], *, spec: SpecKey, revisions: tuple[str, ...], live: Sequence[Obj],
               permitted: Callable[[Obj], bool], namespaced: ScopeLookup) -> CachedComparison | None:
        with self._lock:
            entry = self._entries.get(app)
        key = live_key(live)
        if entry is None or key is None or entry.spec != spec or entry.revisions != revisions or entry.live != key:
            self.misses += 1
            return None
        objs = _objects(entry.cached.comparison, live)
        if (tuple(bool(permitted(o)) for o in objs) != entry.verdicts
                or tuple(namespaced(g, k) for g, k in _scope_kinds(objs)) != entry.scopes):
            self.misses += 1
            return None
        self.hits += 1
        return entry.cached

    def remember(self, app: tuple[str, str], *, spec: SpecKey, revisions: tuple[str, ...], live: Sequence[Obj],
                 comparison: Comparison, fetched: bool, permitted: Callable[[Obj], bool],
                 namespaced: ScopeLookup) -> CachedComparison:
        """Keep ``comparison`` for ``app`` when it qualifies (see the module docstring); returns its rows."""
        cached = cached_rows(comparison)
        key = live_key(live)
        if fetched or comparison.conditions or key is None or not all(revisions):
            self.forget(app)
            return cached
        objs = _objects(comparison, live)
        entry = _Entry(spec=spec, revisions=revisions, live=key, verdicts=tuple(bool(permitted(o)) for o in objs),
                       scopes=tuple(namespaced(g, k) for g, k in _scope_kinds(objs)), cached=cached)
        with self._lock:
            self._entries[app] = entry
        return cached

    def forget(self, app: tuple[str, str]) -> None:
        with self._lock:
            self._entries.pop(app, None)

    def retain(self, apps: Iterable[tuple[str, str]]) -> None:
        keep = set(apps)
        with self._lock:
            for app in [a for a in self._entries if a not in keep]:
                del self._entries[app]
