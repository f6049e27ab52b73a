"""The one implementation of :class:`sync.cluster.Cluster`, over the official ``kubernetes`` client.

Who uses it: ``api`` (the composition root) calls :func:`connect` with a registry entry
(:mod:`sync.cluster_registry`) and hands the result to the engine, the reconciler and the watch cache.
This is the only module that imports ``kubernetes`` (import-linter enforces it); everything that can be
pure lives next to it: the error tree and tracking selector (:mod:`sync.cluster`), discovery
(:mod:`sync.cluster_discovery`), the token bucket (:mod:`sync.cluster_ratelimit`), client-side apply
patches (:mod:`sync.cluster_patch`) and the cache (:mod:`sync.cluster_cache`).

Requests go through ``kubernetes.dynamic.DynamicClient.request`` (our own discovery replaces its
file-backed one). Every request takes a token from the cluster's bucket, carries a timeout
(``_request_timeout``), and has its failures mapped onto the :mod:`sync.cluster` error tree with the
client's exception chained; connections are retried only when establishing them failed (the request was
never sent), so a write is never silently repeated.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from sync.cluster import (
    ApplyMode,
    Cluster,
    ClusterError,
    ConfigError,
    Conflict,
    FieldValidation,
    Forbidden,
    Invalid,
    ListResult,
    NotFound,
    Propagation,
    ResourceInfo,
    ResourceKey,
    TrackingSelector,
    Unavailable,
    WatchEvent,
    error_from_status,
    redact,
    split_lines,
)
from sync.cluster_discovery import Discovery
from sync.cluster_patch import last_applied, three_way_merge_patch, with_last_applied
from sync.cluster_ratelimit import TokenBucket
from sync.cluster_registry import ClusterEntry
from sync.models import group_of

__all__ = ["KubeCluster", "connect", "map_api_exception"]

log = logging.getLogger(__name__)

_JSON = "application/json"
_MERGE = "application/merge-patch+json"
_APPLY = "application/apply-patch+yaml"
_CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")


class _NoDiscovery:
    """Stands in for DynamicClient's discoverer, which would fetch at construction and cache to /tmp."""

    def __init__(self, client: object, cache_file: object) -> None:
        del client, cache_file


def _status_of_watch_error(obj: Mapping[str, Any]) -> int:
    try:
        return int(obj.get("code") or 500)
    except (TypeError, ValueError):
        return 500


def map_api_exception(exc: ApiException, *, what: str) -> ClusterError:
    """Our error for a client ``ApiException`` (callers raise it ``from exc``). Only the server's
    ``Status`` message and reason are used: never the request, whose headers carry the credentials."""
    headers = {str(k): str(v) for k, v in (exc.headers or {}).items()}
    return error_from_status(
        int(exc.status or 0), what=what, body=exc.body, headers=headers, http_reason=str(exc.reason or "")
    )


class KubeCluster:
    """A cluster reached through one ``ApiClient``. Thread-safe for the cache's watcher threads."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        entry: ClusterEntry,
        timeout_seconds: float = 30.0,
        connect_timeout_seconds: float = 5.0,
        qps: float = 50.0,
        burst: int = 100,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.entry = entry
        self._api = api_client
        self._dyn = DynamicClient(api_client, discoverer=_NoDiscovery)  # type: ignore[no-untyped-call]
        self._timeout = (connect_timeout_seconds, timeout_seconds)
        self.limiter = TokenBucket(qps, burst, clock=clock, sleep=sleep)
        self.discovery = Discovery(self._get_json, clock=clock)
        self.requests = 0
        """API requests sent (discovery and watches included): a figure for benchmarks and metrics."""

    @property
    def name(self) -> str:
        return self.entry.name

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    # -- transport -----------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        query: Iterable[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = _JSON,
        timeout: tuple[float, float] | None = None,
    ) -> Any:
        self.limiter.acquire()
        self.requests += 1
        try:
            return self._dyn.request(
                method,
                path,
                body=body,
                query_params=list(query),
                content_type=content_type,
                serialize=False,
                _request_timeout=timeout or self._timeout,
            )
        except ApiException as exc:
            raise map_api_exception(exc, what=what) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unavailable(f"{what}: {type(exc).__name__}: {redact(str(exc))}") from exc

    def _get_json(self, path: str) -> Any:
        return self._json(self._call("GET", path, what=f"GET {path}"), f"GET {path}")

    @staticmethod
    def _json(resp: Any, what: str) -> Any:
        try:
            return json.loads(resp.data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Unavailable(f"{what}: the server sent a body that is not JSON") from exc

    # -- discovery -----------------------------------------------------------------------------------

    def resource_for(self, api_version: str, kind: str) -> ResourceInfo:
        return self.discovery.resource_for(api_version, kind)

    def resource_for_group_kind(self, group: str, kind: str) -> ResourceInfo:
        return self.discovery.resource_for_group_kind(group, kind)

    def is_namespaced(self, group: str, kind: str) -> bool:
        return self.discovery.is_namespaced(group, kind)

    def served_resources(self) -> list[ResourceInfo]:
        return self.discovery.served()

    def invalidate_discovery(self) -> None:
        self.discovery.invalidate()

    # -- addressing ----------------------------------------------------------------------------------

    def _check_scope(self, info: ResourceInfo, namespace: str, what: str) -> str:
        """The namespace to address (``""`` for cluster-scoped kinds), enforcing allowed namespaces."""
        if not info.namespaced:
            if self.entry.namespaces:
                raise Forbidden(
                    f"{what}: cluster {self.name!r} is restricted to namespaces; "
                    f"cluster-scoped {info.kind} is not allowed"
                )
            return ""
        if not namespace:
            raise Invalid(f"{what}: namespace for {info.kind} is missing", reason="Invalid")
        if not self.entry.allows_namespace(namespace):
            raise Forbidden(f"{what}: namespace {namespace!r} is not allowed on cluster {self.name!r}")
        return namespace

    def _path_for_key(self, key: ResourceKey, verb: str) -> tuple[ResourceInfo, str, str]:
        info = self.resource_for_group_kind(key.group, key.kind)
        what = f"{verb} {key}"
        ns = self._check_scope(info, key.namespace, what)
        return info, info.path(namespace=ns, name=key.name), what

    # -- reading -------------------------------------------------------------------------------------

    def get(self, key: ResourceKey) -> dict[str, Any]:
        _, path, what = self._path_for_key(key, "get")
        return dict(self._json(self._call("GET", path, what=what), what))

    def list_objects(self, info: ResourceInfo, *, label_selector: str | None = None, namespace: str = "") -> ListResult:
        what = f"list {info}" + (f" in {namespace}" if namespace else "")
        query = [("labelSelector", label_selector)] if label_selector else []
        doc = self._json(self._call("GET", info.path(namespace=namespace), what=what, query=query), what)
        items = []
        for item in doc.get("items") or []:
            # list items carry no apiVersion/kind; give them back so keys and tracking work
            items.append({"apiVersion": info.api_version, "kind": info.kind, **item})
        return ListResult(items=items, resource_version=str((doc.get("metadata") or {}).get("resourceVersion") or ""))

    def list_managed(
        self, selector: TrackingSelector, *, kinds: Iterable[tuple[str, str]] | None = None
    ) -> list[dict[str, Any]]:
        """Objects ``selector.app`` tracks: one list per resource type (per allowed namespace when the
        cluster is namespace-restricted), filtered by label server-side or by annotation here."""
        infos = self.served_resources() if kinds is None else [self.resource_for_group_kind(g, k) for g, k in kinds]
        out: list[dict[str, Any]] = []
        for info in infos:
            if self.entry.namespaces and not info.namespaced:
                continue
            for ns in self.entry.namespaces if self.entry.namespaces and info.namespaced else ("",):
                listed = self.list_objects(info, label_selector=selector.label_selector(), namespace=ns)
                out.extend(obj for obj in listed.items if selector.matches(obj))
        return out

    def watch_objects(
        self,
        info: ResourceInfo,
        *,
        resource_version: str,
        label_selector: str | None = None,
        namespace: str = "",
        timeout_seconds: int = 60,
    ) -> Iterator[WatchEvent]:
        what = f"watch {info}" + (f" in {namespace}" if namespace else "")
        query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(timeout_seconds))]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        if label_selector:
            query.append(("labelSelector", label_selector))
        # the server ends the watch after timeout_seconds; the read timeout is a little longer
        timeout = (self._timeout[0], float(timeout_seconds) + 10.0)
        resp = self._call("GET", info.path(namespace=namespace), what=what, query=query, timeout=timeout)
        finished = False
        try:
            chunks: Iterable[bytes] = (  # each event as it arrives, whether chunked or not
                resp.stream(amt=None, decode_content=True) if resp.chunked else iter(lambda: resp.read1(65536), b"")
            )
            for line in split_lines(chunks):
                try:
                    event = json.loads(line)
                    obj = event["object"]
                    kind = str(event["type"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise Unavailable(f"{what}: unreadable watch event") from exc
                if kind == "ERROR":
                    raise error_from_status(_status_of_watch_error(obj), what=what, body=json.dumps(obj))
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if kind != "BOOKMARK" and "kind" not in obj:
                    obj = {"apiVersion": info.api_version, "kind": info.kind, **obj}
                yield WatchEvent(type=kind, obj=obj, resource_version=rv)
            finished = True
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unavailable(f"{what}: the watch broke: {type(exc).__name__}") from exc
        finally:
            if not finished:
                resp.close()  # a half-read stream must not go back to the pool
            resp.release_conn()

    # -- writing -------------------------------------------------------------------------------------

    def _target(self, obj: Mapping[str, Any], verb: str) -> tuple[ResourceInfo, str, str, str]:
        meta = obj.get("metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
            raise Invalid(f"{verb}: the object needs apiVersion and kind", reason="Invalid")
        if not isinstance(name, str) or not name:
            raise Invalid(f"{verb} {api_version}/{kind}: metadata.name is missing", reason="Invalid")
        assert isinstance(meta, Mapping)
        info = self.resource_for(api_version, kind)
        what = f"{verb} {info} {meta.get('namespace') or ''}/{name}".replace(" /", " ")
        ns = self._check_scope(info, str(meta.get("namespace") or ""), what)
        return info, ns, name, what

    def apply(
        self,
        obj: Mapping[str, Any],
        *,
        field_manager: str = "syncwarden",
        force: bool = False,
        dry_run: bool = False,
        mode: ApplyMode = "server-side",
        field_validation: FieldValidation = "Strict",
    ) -> dict[str, Any]:
        """Make the live object match ``obj``; returns what the server stored (or would, with ``dry_run``).

        ``server-side``: a server-side apply patch under ``field_manager``; ``force`` takes fields owned by
        other managers instead of failing with ``Conflict``. ``client-side``: kubectl's three-way apply
        with the last-applied annotation; ``force`` deletes and re-creates when the patch is rejected.
        ``replace``: a PUT at the live resourceVersion (create when absent); ``force`` deletes and
        re-creates. ``dry_run`` sends ``dryRun=All``: the server validates and nothing is stored.
        ``field_validation`` is sent as ``fieldValidation`` on every write: ``Strict`` makes the server
        reject an object with unknown fields (``Invalid``); ``Warn`` and ``Ignore`` let it drop them.
        """
        if field_validation not in ("Strict", "Warn", "Ignore"):
            raise Invalid(f"apply: unknown field validation {field_validation!r} (Strict, Warn or Ignore)")
        query = [("fieldManager", field_manager), ("fieldValidation", field_validation)]
        result = self._apply(obj, query + ([("dryRun", "All")] if dry_run else []), force, dry_run, mode)
        if not dry_run and (group_of(str(obj.get("apiVersion"))), obj.get("kind")) == _CRD:
            self.discovery.invalidate()  # the kind it defines appeared or changed
        return result

    def _apply(
        self, obj: Mapping[str, Any], query: list[tuple[str, str]], force: bool, dry_run: bool, mode: ApplyMode
    ) -> dict[str, Any]:
        if mode not in ("server-side", "client-side", "replace"):
            raise Invalid(f"apply: unknown mode {mode!r} (server-side, client-side or replace)")
        info, ns, name, what = self._target(obj, f"apply ({mode})")
        path = info.path(namespace=ns, name=name)
        body = {**obj, "metadata": {**obj["metadata"], **({"namespace": ns} if ns else {})}}
        if not ns:
            body["metadata"].pop("namespace", None)
        if mode == "server-side":
            query += [("force", "true")] if force else []
            resp = self._call("PATCH", path, what=what, query=query, body=body, content_type=_APPLY)
            return dict(self._json(resp, what))
        if mode == "client-side":
            body = with_last_applied(body)
        try:
            live = self._json(self._call("GET", path, what=what), what)
        except NotFound:
            return self._create(info, ns, body, query, what)
        try:
            if mode == "client-side":
                patch = three_way_merge_patch(last_applied(live), body, live)
                resp = self._call("PATCH", path, what=what, query=query, body=patch, content_type=_MERGE)
            else:
                rv = (live.get("metadata") or {}).get("resourceVersion")
                put = {**body, "metadata": {**body["metadata"], "resourceVersion": rv}}
                resp = self._call("PUT", path, what=what, query=query, body=put)
            return dict(self._json(resp, what))
        except (Invalid, Conflict) as exc:
            if not force or dry_run:
                raise
            log.info("%s rejected (%s); forcing: delete and re-create", what, exc.reason)
            self._call("DELETE", path, what=what, body={"propagationPolicy": "Background"})
            return self._create(info, ns, body, query, what)

    def _create(
        self, info: ResourceInfo, ns: str, body: Mapping[str, Any], query: list[tuple[str, str]], what: str
    ) -> dict[str, Any]:
        resp = self._call("POST", info.path(namespace=ns), what=what, query=query, body=dict(body))
        return dict(self._json(resp, what))

    def delete(self, key: ResourceKey, *, propagation: Propagation = "Background", dry_run: bool = False) -> None:
        """Delete with a propagation policy; ``NotFound`` when it is already gone."""
        if propagation not in ("Background", "Foreground", "Orphan"):
            raise Invalid(f"delete {key}: unknown propagation policy {propagation!r}")
        _, path, what = self._path_for_key(key, "delete")
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        query: list[tuple[str, str]] = [("propagationPolicy", propagation)]
        if dry_run:
            options["dryRun"] = ["All"]
            query.append(("dryRun", "All"))
        self._call("DELETE", path, what=what, query=query, body=options)
        if not dry_run and (key.group, key.kind) == _CRD:
            self.discovery.invalidate()


    def set_finalizers(self, key: ResourceKey, finalizers: Sequence[str], *, resource_version: str) -> dict[str, Any]:
        """A JSON merge patch of ``metadata.finalizers``; the resourceVersion in it is the server's precondition."""
        _, path, what = self._path_for_key(key, "update finalizers of")
        body = {"metadata": {"finalizers": list(finalizers) or None, "resourceVersion": resource_version}}
        return dict(self._json(self._call("PATCH", path, what=what, body=body, content_type=_MERGE), what))


def connect(
    entry: ClusterEntry,
    *,
    timeout_seconds: float = 30.0,
    qps: float = 50.0,
    burst: int = 100,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> KubeCluster:
    """A :class:`KubeCluster` for a registry entry: its kubeconfig context, or the in-cluster config."""
    cfg = kubernetes.client.Configuration()
    try:
        if entry.in_cluster:
            kubernetes.config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=entry.kubeconfig, context=entry.context, client_configuration=cfg, persist_config=False
            )
    except (kubernetes.config.ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
        source = "in-cluster config" if entry.in_cluster else f"kubeconfig {entry.kubeconfig or '(default)'}"
        raise ConfigError(f"cluster {entry.name!r}: cannot load {source}: {redact(str(exc))}") from exc
    # Retry only connection set-up (nothing was sent), never a read, so a write is never repeated; and
    # never on a status: 429/503 with Retry-After reach the caller as Unavailable(retry_after).
    cfg.retries = urllib3.util.Retry(
        total=2, connect=2, read=0, status=0, other=0, redirect=0, respect_retry_after_header=False
    )
    cfg.connection_pool_maxsize = 64  # one connection per watched type, plus the engine's requests
    return KubeCluster(
        kubernetes.client.ApiClient(cfg),
        entry=entry,
        timeout_seconds=timeout_seconds,
        qps=qps,
        burst=burst,
        clock=clock,
        sleep=sleep,
    )


def _implements_cluster(kube_cluster: KubeCluster) -> Cluster:
    """Never called: makes mypy prove that KubeCluster satisfies the Cluster protocol."""
    return kube_cluster
