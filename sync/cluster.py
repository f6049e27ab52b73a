"""The cluster seam: what the sync core may ask of a Kubernetes cluster, and the errors it gets back.

Who uses it: plan, engine and reconciler talk to a cluster only through the :class:`Cluster` protocol;
:mod:`sync.kube` (the only ``kubernetes`` importer) implements it over the official client;
:mod:`sync.cluster_cache` keeps a list+watch cache on top of it. Nothing here imports ``kubernetes``,
so the value types, the tracking selector and the error mapping are testable without a cluster.

Error tree (every error is raised with the client's original exception chained as ``__cause__``)::

    ClusterError
    ├── NotFound          404: the object (or its namespace) does not exist
    ├── Conflict          409: stale resourceVersion, or a server-side apply field conflict
    ├── AlreadyExists     409 AlreadyExists: create of an existing object
    ├── Forbidden         403, or outside the cluster's allowed namespaces
    │   └── Unauthorized  401: the credentials were rejected
    ├── Invalid           400/422: the server rejected the object
    ├── Unavailable       429/5xx, timeouts, refused or dropped connections; ``retry_after`` in seconds
    ├── Gone              410: a watch resourceVersion too old (the cache relists)
    ├── UnknownKind       the API server does not serve this apiVersion/kind (after a discovery refresh)
    ├── UnknownCluster    a destination that names no registered cluster
    └── ConfigError       a kubeconfig or in-cluster config that cannot be used

Messages never carry credentials: :func:`redact` strips bearer tokens and key material from any text
taken from a server or a config loader before it reaches a message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sync import tracking
from sync.models import ResourceKey, group_of

__all__ = [
    "AlreadyExists",
    "ApplyMode",
    "Cluster",
    "ClusterError",
    "ConfigError",
    "Conflict",
    "FieldValidation",
    "Forbidden",
    "Gone",
    "Invalid",
    "ListResult",
    "NotFound",
    "Propagation",
    "ResourceInfo",
    "ResourceKey",
    "TrackingSelector",
    "Unauthorized",
    "Unavailable",
    "UnknownCluster",
    "UnknownKind",
    "WatchEvent",
    "error_from_status",
    "key_of",
    "redact",
    "split_lines",
]

ApplyMode = Literal["server-side", "client-side", "replace"]
Propagation = Literal["Background", "Foreground", "Orphan"]
#: the API server's ``fieldValidation``: reject (Strict), or drop with a warning (Warn) or silently (Ignore)
#: unknown fields
FieldValidation = Literal["Strict", "Warn", "Ignore"]
TrackingMethod = tracking.TrackingMethod

#: server messages can be long (admission webhooks echo whole objects); keep errors readable
MAX_MESSAGE_CHARS = 500


class ClusterError(Exception):
    """Base of every cluster error. ``status`` is the HTTP status (0 when no response arrived)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        self.message = redact(message)
        self.status = status
        self.reason = reason
        super().__init__(self.message)


class NotFound(ClusterError):
    pass


class Conflict(ClusterError):
    pass


class AlreadyExists(ClusterError):
    pass


class Forbidden(ClusterError):
    pass


class Unauthorized(Forbidden):
    pass


class Invalid(ClusterError):
    pass


class Gone(ClusterError):
    pass


class UnknownKind(ClusterError):
    pass


class UnknownCluster(ClusterError):
    pass


class ConfigError(ClusterError):
    pass


class Unavailable(ClusterError):
    """Temporary: try again, after ``retry_after`` seconds when the server said so (else ``None``)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, status=status, reason=reason)
        self.retry_after = retry_after


_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 <redacted>"),
    (
        re.compile(
            r"(?i)((?:client-key-data|client-certificate-data|token|password|secret)['\"]?\s*[:=]\s*['\"]?)"
            r"(?!<redacted>)[^\s,;'\"}]+"
        ),
        r"\1<redacted>",
    ),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S), "<redacted>"),
    # JWTs (service-account tokens) wherever they appear
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "<redacted>"),
)


def redact(text: str) -> str:
    """``text`` with bearer tokens, passwords and private keys replaced by ``<redacted>``, cut to length."""
    out = text
    for pattern, replacement in _SECRET_PATTERNS:
        out = pattern.sub(replacement, out)
    if len(out) > MAX_MESSAGE_CHARS:
        out = out[:MAX_MESSAGE_CHARS] + "…"
    return out


def split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Non-empty lines of a newline-delimited stream (a watch), yielded as soon as each is complete."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.strip():
                yield line.decode("utf-8", errors="replace")
    if buf.strip():
        yield buf.decode("utf-8", errors="replace")


def _retry_after(headers: Mapping[str, str] | None, details: Mapping[str, Any]) -> float | None:
    raw: Any = None
    if headers:
        for name, value in headers.items():
            if name.lower() == "retry-after":
                raw = value
    if raw is None:
        raw = details.get("retryAfterSeconds")
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def error_from_status(
    status: int,
    *,
    what: str,
    body: str | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    http_reason: str = "",
) -> ClusterError:
    """Our error for an HTTP error response. ``what`` says which request failed ("apply v1/ConfigMap a/b").

    The Kubernetes ``Status`` body, when there is one, supplies the message, the machine reason
    (``AlreadyExists`` vs ``Conflict``) and ``details.retryAfterSeconds``; a ``Retry-After`` header wins.
    """
    message, reason, details = "", "", {}
    if body:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            doc = None
        if isinstance(doc, dict):
            message = str(doc.get("message") or "")
            reason = str(doc.get("reason") or "")
            if isinstance(doc.get("details"), dict):
                details = doc["details"]
        elif isinstance(body, str):
            message = body.strip()
    text = f"{what}: {message or http_reason or 'HTTP ' + str(status)} (HTTP {status})"
    if status == 404:
        return NotFound(text, status=status, reason=reason or "NotFound")
    if status == 409:
        if reason == "AlreadyExists":
            return AlreadyExists(text, status=status, reason=reason)
        return Conflict(text, status=status, reason=reason or "Conflict")
    if status == 401:
        return Unauthorized(text, status=status, reason=reason or "Unauthorized")
    if status == 403:
        return Forbidden(text, status=status, reason=reason or "Forbidden")
    if status in (400, 422):
        return Invalid(text, status=status, reason=reason or "Invalid")
    if status == 410:
        return Gone(text, status=status, reason=reason or "Expired")
    if status == 429 or status >= 500 or status == 0:
        return Unavailable(
            text, status=status, reason=reason or "Unavailable", retry_after=_retry_after(headers, details)
        )
    return ClusterError(text, status=status, reason=reason)


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """One served resource type from discovery: what the API server calls it and how to address it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, *, namespace: str = "", name: str = "") -> str:
        """The REST path of the collection (``name`` empty) or of one object."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base

    def __str__(self) -> str:
        return f"{self.api_version}/{self.kind}"


def key_of(obj: Mapping[str, Any]) -> ResourceKey:
    """The join key of a Kubernetes object (the version is not part of it)."""
    meta = obj.get("metadata") or {}
    return ResourceKey(
        group=group_of(str(obj.get("apiVersion") or "")),
        kind=str(obj.get("kind") or ""),
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
    )


@dataclass(frozen=True, slots=True)
class TrackingSelector:
    """Which live objects belong to an app (``shared/reference/argocd-sync-semantics.md`` §3.3).

    ``app`` is the app instance name, or ``None`` for "tracked by any app" (what the cache keeps).
    Label tracking is selected by the API server; annotation tracking cannot be, so every object of a
    type is listed and the annotation ``<app>:<group>/<kind>:<namespace>/<name>`` is parsed here.
    Objects with ownerReferences are never considered (top-level objects only, as in Argo CD).
    """

    key: str = "syncwarden.io/tracking-id"
    method: TrackingMethod = "annotation"
    app: str | None = None

    def for_app(self, app: str) -> TrackingSelector:
        return TrackingSelector(key=self.key, method=self.method, app=app)

    def label_selector(self) -> str | None:
        """What to send as ``labelSelector`` so the server filters (label tracking only)."""
        if self.method != "label":
            return None
        return self.key if self.app is None else f"{self.key}={self.app}"

    def app_of(self, obj: Mapping[str, Any]) -> str | None:
        """The app that tracks ``obj`` (a top-level object), or ``None`` when untracked or invalid."""
        # one parser of the tracking id, in sync.tracking (malformed ids count as untracked)
        return tracking.owner_of(obj, method=self.method, annotation_key=self.key, label_key=self.key)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        app = self.app_of(obj)
        return app is not None and (self.app is None or app == self.app)


@dataclass(frozen=True, slots=True)
class ListResult:
    """One list call: the items and the collection's resourceVersion to start a watch from."""

    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """``ADDED`` / ``MODIFIED`` / ``DELETED`` with the object, or ``BOOKMARK`` with only a resourceVersion."""

    type: str
    obj: dict[str, Any]
    resource_version: str


class Cluster(Protocol):
    """What the sync core may do to one cluster. Every call may raise a :class:`ClusterError`."""

    @property
    def name(self) -> str: ...

    def resource_for(self, api_version: str, kind: str) -> ResourceInfo:
        """The served resource for an apiVersion/kind; refreshes discovery once before ``UnknownKind``."""

    def resource_for_group_kind(self, group: str, kind: str) -> ResourceInfo:
        """The preferred version's resource for a group/kind (for keys, which carry no version)."""

    def is_namespaced(self, group: str, kind: str) -> bool: ...

    def served_resources(self) -> list[ResourceInfo]:
        """Every listable resource type, one per group/kind at its preferred version."""

    def invalidate_discovery(self) -> None:
        """Forget discovery, so the next lookup sees CRDs that appeared since."""

    def get(self, key: ResourceKey) -> dict[str, Any]: ...

    def list_managed(
        self, selector: TrackingSelector, *, kinds: Iterable[tuple[str, str]] | None = None
    ) -> list[dict[str, Any]]:
        """Objects the selector's app tracks: one list per resource type (all types by default)."""

    def apply(
        self,
        obj: Mapping[str, Any],
        *,
        field_manager: str = "syncwarden",
        force: bool = False,
        dry_run: bool = False,
        mode: ApplyMode = "server-side",
        field_validation: FieldValidation = "Strict",
    ) -> dict[str, Any]: ...

    def delete(self, key: ResourceKey, *, propagation: Propagation = "Background", dry_run: bool = False) -> None: ...

    def set_finalizers(self, key: ResourceKey, finalizers: Sequence[str], *, resource_version: str) -> dict[str, Any]:
        """Replace ``metadata.finalizers`` if the object is still at ``resource_version`` (else ``Conflict``);
        returns what the server stored (an object whose last finalizer went may be gone right after)."""

    def list_objects(
        self, info: ResourceInfo, *, label_selector: str | None = None, namespace: str = ""
    ) -> ListResult: ...

    def watch_objects(
        self,
        info: ResourceInfo,
        *,
        resource_version: str,
        label_selector: str | None = None,
        namespace: str = "",
        timeout_seconds: int = 60,
    ) -> Iterator[WatchEvent]:
        """Events after ``resource_version`` until the server ends the watch; ``Gone`` when it is too old."""
