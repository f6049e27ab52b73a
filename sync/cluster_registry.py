"""The cluster registry: which clusters exist, and which one an Application's destination means.

Who uses it: ``api`` builds one registry at start-up (:meth:`ClusterRegistry.load` seeds it from the
kubeconfig, each context becoming a cluster named after it with its server URL; platform teams add
labels and allowed namespaces with :meth:`ClusterRegistry.register`); the engine resolves a
destination with :meth:`ClusterRegistry.resolve` and hands the entry to :func:`sync.kube.connect`.

As in Argo CD, ``https://kubernetes.default.svc`` and the name ``in-cluster`` mean the cluster this
process runs in: the in-cluster service-account config when present, otherwise the kubeconfig's
current context. A destination that names no registered cluster is an :class:`UnknownCluster` error
listing the known names. Pure: the kubeconfig is parsed with ``config.yamlsafe``, never executed, and
no credential from it is kept here (only names, server URLs and the file path).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import yamlsafe
from sync.cluster import ConfigError, UnknownCluster

__all__ = ["IN_CLUSTER_NAME", "IN_CLUSTER_SERVER", "ClusterEntry", "ClusterRegistry", "default_kubeconfig_paths"]

log = logging.getLogger(__name__)

IN_CLUSTER_NAME = "in-cluster"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"


@dataclass(frozen=True)
class ClusterEntry:
    """One cluster: ``context`` selects it in ``kubeconfig``; both ``None`` means in-cluster config.

    ``namespaces`` empty means every namespace; otherwise only those namespaces may be read or written,
    and cluster-scoped objects may not (Argo CD's namespace-restricted cluster).
    """

    name: str
    server: str
    context: str | None = None
    kubeconfig: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    namespaces: tuple[str, ...] = ()

    @property
    def in_cluster(self) -> bool:
        return self.context is None

    def allows_namespace(self, namespace: str) -> bool:
        """May objects in ``namespace`` ("" = cluster-scoped) be touched on this cluster?"""
        if not self.namespaces:
            return True
        return bool(namespace) and namespace in self.namespaces


def _norm(server: str) -> str:
    return server.strip().rstrip("/")


def default_kubeconfig_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """``$KUBECONFIG`` (``:``-separated, first file wins) or ``~/.kube/config``."""
    env = os.environ if environ is None else environ
    if env.get("KUBECONFIG"):
        return [Path(p) for p in env["KUBECONFIG"].split(os.pathsep) if p]
    return [Path(env.get("HOME", str(Path.home()))) / ".kube" / "config"]


def _list_of_named(doc: Mapping[str, Any], section: str, inner: str, source: str) -> dict[str, dict[str, Any]]:
    raw = doc.get(section) or []
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: {section}: expected a list")
    out: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ConfigError(f"{source}: {section}[{i}].name: expected a non-empty string")
        body = item.get(inner) or {}
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: {section}[{i}].{inner}: expected a mapping")
        out.setdefault(item["name"], body)
    return out


class ClusterRegistry:
    """Named clusters plus the kubeconfig's current context. Lookups never touch the network."""

    def __init__(self, entries: Iterable[ClusterEntry] = (), *, current: str | None = None) -> None:
        self._entries: dict[str, ClusterEntry] = {}
        for entry in entries:
            self._entries.setdefault(entry.name, entry)
        self.current = current

    @classmethod
    def from_kubeconfig(cls, data: bytes | str, *, source: str) -> ClusterRegistry:
        """One entry per context (named after it, with its cluster's server URL)."""
        try:
            doc = yamlsafe.load_one(data, source=source)
        except yamlsafe.YamlError as exc:
            raise ConfigError(f"kubeconfig {exc}") from exc
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: a kubeconfig must be a mapping")
        clusters = _list_of_named(doc, "clusters", "cluster", source)
        contexts = _list_of_named(doc, "contexts", "context", source)
        entries = []
        for name, ctx in contexts.items():
            cluster = clusters.get(str(ctx.get("cluster") or ""))
            server = cluster.get("server") if cluster else None
            if not isinstance(server, str) or not server:
                log.warning("kubeconfig %s: context %r names no cluster with a server; skipped", source, name)
                continue
            entries.append(ClusterEntry(name=name, server=_norm(server), context=name, kubeconfig=source))
        current = doc.get("current-context")
        return cls(entries, current=current if isinstance(current, str) and current else None)

    @classmethod
    def load(cls, paths: Iterable[Path] | None = None, *, environ: Mapping[str, str] | None = None) -> ClusterRegistry:
        """Seed from kubeconfig files (default :func:`default_kubeconfig_paths`; missing files are
        skipped) and add ``in-cluster`` when running in a pod (``KUBERNETES_SERVICE_HOST`` set)."""
        env = os.environ if environ is None else environ
        registry = cls()
        for path in default_kubeconfig_paths(env) if paths is None else paths:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ConfigError(f"kubeconfig {path}: cannot read: {exc.strerror}") from exc
            loaded = cls.from_kubeconfig(data, source=str(path))
            for entry in loaded.entries():
                registry._entries.setdefault(entry.name, entry)
            registry.current = registry.current or loaded.current
        if env.get("KUBERNETES_SERVICE_HOST"):
            registry.register(ClusterEntry(name=IN_CLUSTER_NAME, server=IN_CLUSTER_SERVER))
        return registry

    def entries(self) -> list[ClusterEntry]:
        return list(self._entries.values())

    def register(self, entry: ClusterEntry) -> None:
        """Add a cluster, or replace the one with the same name (e.g. to set labels or namespaces)."""
        self._entries[entry.name] = entry

    def get(self, name: str) -> ClusterEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownCluster(f"cluster {name!r} is not registered; known: {self._known()}") from None

    def select(self, context: str | None = None) -> ClusterEntry:
        """Context selection as kubectl does it: the named context, else the current one."""
        if context:
            return self.get(context)
        if self.current and self.current in self._entries:
            return self._entries[self.current]
        raise UnknownCluster(f"no context given and no usable current-context; known: {self._known()}")

    def _known(self) -> str:
        return ", ".join(sorted(self._entries)) or "(none)"

    def _local(self, asked: str) -> ClusterEntry:
        if IN_CLUSTER_NAME in self._entries:
            return self._entries[IN_CLUSTER_NAME]
        if self.current and self.current in self._entries:
            return self._entries[self.current]
        raise UnknownCluster(
            f"destination {asked} means the local cluster, but there is no in-cluster config "
            f"and no current kubeconfig context; known clusters: {self._known()}"
        )

    def resolve(self, *, server: str = "", name: str = "") -> ClusterEntry:
        """The cluster an Application destination means (exactly one of ``server`` and ``name``)."""
        if server and name:
            raise UnknownCluster(f"destination sets both server {server!r} and name {name!r}; set only one")
        if name:
            if name in self._entries:
                return self._entries[name]
            if name == IN_CLUSTER_NAME:
                return self._local(f"name {name!r}")
            raise UnknownCluster(f"destination name {name!r} is not a registered cluster; known: {self._known()}")
        if not server:
            raise UnknownCluster("destination names no cluster: set spec.destination.server or .name")
        wanted = _norm(server)
        matches = [e for e in self._entries.values() if e.server == wanted]
        if matches:
            for entry in matches:
                if entry.name == self.current:
                    return entry
            return matches[0]
        if wanted == IN_CLUSTER_SERVER:
            return self._local(f"server {server!r}")
        raise UnknownCluster(f"destination server {server!r} is not a registered cluster; known: {self._known()}")
