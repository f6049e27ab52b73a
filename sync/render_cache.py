"""Render cache: rendered manifests keyed by what they were made from, so unchanged apps are not re-rendered.

Who calls this: :mod:`sync.render` only. An entry is found by two parts:

* the *identity* of a source: normalised repo URL, credential identity, app path, the source's parameters
  (its YAML), the render inputs taken from the app (name, destination namespace) and the tool versions;
* the *fingerprint* of its inputs at a commit: the git tree ids of every repository path the render read
  (the app path, Kustomize bases and components, Helm value files, ``manifest-generate-paths``).

A new commit that changes nothing under those paths has the same fingerprint, so the previous render is
reused without checking the commit out (the ids are read from the mirror in-process). The dependency list
of a source is remembered from its last render; if it changed, some file under the old list changed too,
so the fingerprint differs and the source is rendered again. Entries live in memory and, when a directory
is given, as JSON files under it (so the CLI reuses them across runs). Callers get private copies.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sync.models import Manifest

__all__ = ["CachedRender", "RenderCache", "digest"]

log = logging.getLogger(__name__)


def digest(value: Any) -> str:
    """A stable hash of JSON-able data (keys sorted)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class CachedRender:
    commit: str
    deps: tuple[str, ...]
    manifests: tuple[Manifest, ...]


class RenderCache:
    """In-memory LRU (``max_entries``) with an optional JSON directory behind it. Thread-safe."""

    def __init__(self, directory: Path | None = None, *, max_entries: int = 2000) -> None:
        self.directory = directory
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, str], CachedRender] = OrderedDict()
        self._deps: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def _file(self, identity: str, name: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / identity[:2] / identity / f"{name}.json"

    def deps_for(self, identity: str) -> tuple[str, ...] | None:
        """The repository paths the last render of this source read, or None if it was never rendered."""
        with self._lock:
            if identity in self._deps:
                return self._deps[identity]
        path = self._file(identity, "deps")
        if path is None or not path.is_file():
            return None
        try:
            deps = tuple(str(d) for d in json.loads(path.read_text()))
        except (OSError, ValueError):
            return None
        with self._lock:
            self._deps[identity] = deps
        return deps

    def get(self, identity: str, fingerprint: str) -> CachedRender | None:
        with self._lock:
            entry = self._entries.get((identity, fingerprint))
            if entry is not None:
                self._entries.move_to_end((identity, fingerprint))
        if entry is None:
            entry = self._load(identity, fingerprint)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        return CachedRender(
            commit=entry.commit,
            deps=entry.deps,
            manifests=tuple(Manifest(obj=copy.deepcopy(m.obj), source=m.source, index=m.index)
                            for m in entry.manifests),
        )

    def put(self, identity: str, fingerprint: str, entry: CachedRender) -> None:
        frozen = CachedRender(
            commit=entry.commit,
            deps=entry.deps,
            manifests=tuple(Manifest(obj=copy.deepcopy(m.obj), source=m.source, index=m.index)
                            for m in entry.manifests),
        )
        with self._lock:
            self._entries[(identity, fingerprint)] = frozen
            self._entries.move_to_end((identity, fingerprint))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            self._deps[identity] = entry.deps
        self._store(identity, fingerprint, frozen)

    def _load(self, identity: str, fingerprint: str) -> CachedRender | None:
        path = self._file(identity, fingerprint)
        if path is None or not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text())
            entry = CachedRender(
                commit=str(raw["commit"]),
                deps=tuple(raw["deps"]),
                manifests=tuple(Manifest(obj=m["obj"], source=m["source"], index=int(m["index"]))
                                for m in raw["manifests"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged entry is a miss; it is rewritten after the render
        with self._lock:
            self._entries[(identity, fingerprint)] = entry
        return entry

    def _store(self, identity: str, fingerprint: str, entry: CachedRender) -> None:
        path = self._file(identity, fingerprint)
        deps_path = self._file(identity, "deps")
        if path is None or deps_path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("render cache: cannot create %s: %s", path.parent, exc.strerror or exc)
            return
        body = {
            "commit": entry.commit,
            "deps": list(entry.deps),
            "manifests": [{"obj": m.obj, "source": m.source, "index": m.index} for m in entry.manifests],
        }
        for target, data in ((path, body), (deps_path, list(entry.deps))):
            # one temp file per writer (threads of one process render the same source at once, e.g. two sync
            # requests for one app): a shared name let one writer's rename steal the other's file
            tmp = target.with_name(f"{target.stem}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex}.tmp")
            try:
                tmp.write_text(json.dumps(data))
                tmp.replace(target)
            except OSError as exc:  # the disk copy is an optimisation: a write that fails is a later miss
                log.warning("render cache: cannot write %s: %s", target.name, exc.strerror or exc)
                tmp.unlink(missing_ok=True)
