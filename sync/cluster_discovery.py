"""API discovery for one cluster, cached: which kinds exist, at which versions, and whether namespaced.

Who calls it: :class:`sync.kube.KubeCluster` answers ``resource_for`` / ``is_namespaced`` from here, and
the watch cache (:mod:`sync.cluster_cache`) asks it for every listable type. The index is built from
``/api`` and ``/apis`` and one document per group version, fetched through the ``fetch`` callable the
client passes in (so this module never imports ``kubernetes``).

Freshness: the index lives until :meth:`Discovery.invalidate` (the cache calls it when it sees a CRD
event) or until a lookup misses; a miss refreshes at most once per ``min_refresh_seconds`` (the clock is
a parameter), so a manifest with a misspelt kind does not cost a full discovery per object. A group
version that fails to answer (an aggregated API that is down) is skipped and logged, as Argo CD does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sync.cluster import NotFound, ResourceInfo, Unavailable, UnknownKind
from sync.models import group_of

__all__ = ["Discovery"]

log = logging.getLogger(__name__)

Fetch = Callable[[str], Any]


class Discovery:
    def __init__(
        self,
        fetch: Fetch,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_refresh_seconds: float = 2.0,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._min_refresh = min_refresh_seconds
        self._lock = threading.RLock()
        self._by_gvk: dict[tuple[str, str, str], ResourceInfo] = {}
        self._preferred: dict[tuple[str, str], ResourceInfo] = {}
        self._loaded_at: float | None = None
        self.refreshes = 0
        """How many times the index was (re)built; tests and benchmarks read it."""

    def invalidate(self) -> None:
        """Drop the index; the next lookup rebuilds it (e.g. after a CRD was created or deleted)."""
        with self._lock:
            self._loaded_at = None

    def _resources(self, path: str, group: str, version: str) -> list[ResourceInfo]:
        doc = self._fetch(path)
        out = []
        for res in (doc or {}).get("resources") or []:
            name = str(res.get("name") or "")
            if not name or "/" in name:
                continue  # subresources (status, scale, ...) are not object types
            out.append(
                ResourceInfo(
                    group=group,
                    version=version,
                    kind=str(res.get("kind") or ""),
                    plural=name,
                    namespaced=bool(res.get("namespaced")),
                    verbs=frozenset(str(v) for v in res.get("verbs") or []),
                )
            )
        return out

    def _load(self) -> None:
        by_gvk: dict[tuple[str, str, str], ResourceInfo] = {}
        preferred: dict[tuple[str, str], ResourceInfo] = {}
        # (group, version, is_preferred) in server order
        versions: list[tuple[str, str, bool]] = []
        core = self._fetch("/api") or {}
        for i, version in enumerate(core.get("versions") or []):
            versions.append(("", str(version), i == 0))
        for grp in (self._fetch("/apis") or {}).get("groups") or []:
            name = str(grp.get("name") or "")
            pref = str((grp.get("preferredVersion") or {}).get("version") or "")
            for ver in grp.get("versions") or []:
                version = str(ver.get("version") or "")
                versions.append((name, version, version == pref))
        fallback: dict[tuple[str, str], ResourceInfo] = {}
        for group, version, is_pref in versions:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                infos = self._resources(path, group, version)
            except (Unavailable, NotFound) as exc:
                log.warning("discovery of %s failed, skipping it: %s", path, exc)
                continue
            for info in infos:
                by_gvk[(group, version, info.kind)] = info
                if is_pref:
                    preferred[(group, info.kind)] = info
                else:
                    fallback.setdefault((group, info.kind), info)
        for gk, info in fallback.items():
            preferred.setdefault(gk, info)  # a kind served only by a non-preferred version
        self._by_gvk, self._preferred = by_gvk, preferred
        self._loaded_at = self._clock()
        self.refreshes += 1

    def _ensure(self) -> None:
        if self._loaded_at is None:
            self._load()

    def _lookup(self, find: Callable[[], ResourceInfo | None], what: str) -> ResourceInfo:
        with self._lock:
            self._ensure()
            found = find()
            if found is not None:
                return found
            assert self._loaded_at is not None
            if self._clock() - self._loaded_at >= self._min_refresh:
                log.info("discovery has no %s; refreshing", what)
                self._load()
                found = find()
                if found is not None:
                    return found
        raise UnknownKind(f"the cluster does not serve {what}", reason="UnknownKind")

    def resource_for(self, api_version: str, kind: str) -> ResourceInfo:
        group = group_of(api_version)
        version = api_version.rpartition("/")[2]
        if not kind or not version:
            raise UnknownKind(f"apiVersion {api_version!r} kind {kind!r} is incomplete", reason="UnknownKind")
        return self._lookup(lambda: self._by_gvk.get((group, version, kind)), f"{api_version}/{kind}")

    def resource_for_group_kind(self, group: str, kind: str) -> ResourceInfo:
        label = f"{group}/{kind}" if group else kind
        return self._lookup(lambda: self._preferred.get((group, kind)), label)

    def is_namespaced(self, group: str, kind: str) -> bool:
        return self.resource_for_group_kind(group, kind).namespaced

    def served(self) -> list[ResourceInfo]:
        """One resource per group/kind (preferred version) that can be listed and watched."""
        with self._lock:
            self._ensure()
            return [i for i in self._preferred.values() if {"list", "watch"} <= i.verbs]
