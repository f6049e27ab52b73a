"""Resource tracking: how an object says which app owns it (``argocd-sync-semantics.md`` §0, §3.3).

Who calls this: :mod:`sync.compare` stamps tracking metadata on every target and decides ownership of live
objects; :class:`sync.cluster.TrackingSelector` (used by ``KubeCluster.list_managed`` and the cluster cache)
delegates :meth:`TrackingSelector.app_of` to :func:`owner_of`, so there is exactly one parser of the id.

The tracking id is ``<instance>:<group>/<kind>:<namespace>/<name>``. ``instance`` is the app's name when the
Application lives in the control-plane namespace, else ``<appNamespace>_<app>``; the namespace part is the
object's namespace, or the app's destination namespace for objects without one, so cluster-scoped objects
carry the destination namespace. Parsing is strict: anything that is not exactly that shape, with a
non-empty instance, kind and name and no whitespace, is *untracked* (never an error, never an owner).

Methods (setting ``sync.tracking_method``):

* ``annotation`` (default): annotation ``sync.tracking_key`` holds the id; ownership reads it.
* ``label``: label ``sync.instance_label_key`` holds the instance name; ownership reads it; no
  self-reference check is possible, so every labelled object counts as self-referencing.
* ``annotation+label``: both are written (the label cut to 63 characters, trailing non-alphanumerics
  stripped); ownership reads the annotation only.

CRDs never get tracking metadata (deleting a CRD deletes every custom resource of its kind).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sync.models import group_of

if TYPE_CHECKING:
    from config.settings import SyncSettings
    from sync.cluster import TrackingSelector

__all__ = [
    "DEFAULT_ANNOTATION_KEY",
    "DEFAULT_LABEL_KEY",
    "Tracking",
    "TrackingId",
    "TrackingMethod",
    "format_id",
    "instance_name",
    "is_crd",
    "owner_of",
    "parse_id",
]

TrackingMethod = Literal["annotation", "label", "annotation+label"]

DEFAULT_ANNOTATION_KEY = "syncwarden.io/tracking-id"
DEFAULT_LABEL_KEY = "app.kubernetes.io/instance"
DEFAULT_CONTROL_PLANE_NAMESPACE = "syncwarden"

#: Kubernetes label values are at most 63 characters
_LABEL_MAX = 63
_WHITESPACE = re.compile(r"\s")


@dataclass(frozen=True, slots=True)
class TrackingId:
    """A parsed tracking id. ``namespace`` is empty only for cluster-scoped objects of an app without a
    destination namespace."""

    instance: str
    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return format_id(self.instance, group=self.group, kind=self.kind, namespace=self.namespace, name=self.name)


def instance_name(app: str, app_namespace: str, *, control_plane_namespace: str) -> str:
    """The app instance name written into tracking metadata (Argo CD ``InstanceName``)."""
    if not app_namespace or app_namespace == control_plane_namespace:
        return app
    return f"{app_namespace}_{app}"


def format_id(instance: str, *, group: str, kind: str, namespace: str, name: str) -> str:
    return f"{instance}:{group}/{kind}:{namespace}/{name}"


def parse_id(value: object) -> TrackingId | None:
    """The id in ``value``, or ``None`` when it is not a well-formed tracking id (untracked).

    Split on the first two ``:`` (names such as ``system:controller:x`` keep their colons); each of the
    group/kind and namespace/name parts has exactly one ``/``.
    """
    if not isinstance(value, str) or _WHITESPACE.search(value):
        return None
    parts = value.split(":", 2)
    if len(parts) != 3 or parts[1].count("/") != 1 or parts[2].count("/") != 1:
        return None
    instance = parts[0]
    group, kind = parts[1].split("/")
    namespace, name = parts[2].split("/")
    if not instance or not kind or not name:
        return None
    return TrackingId(instance=instance, group=group, kind=kind, namespace=namespace, name=name)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _str_map(meta: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    value = meta.get(field)
    return value if isinstance(value, Mapping) else {}


def is_crd(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "CustomResourceDefinition" and group_of(str(obj.get("apiVersion") or "")) == (
        "apiextensions.k8s.io"
    )


def owner_of(
    obj: Mapping[str, Any],
    *,
    method: TrackingMethod = "annotation",
    annotation_key: str = DEFAULT_ANNOTATION_KEY,
    label_key: str = DEFAULT_LABEL_KEY,
    top_level_only: bool = True,
) -> str | None:
    """The app instance that tracks ``obj``, or ``None`` when untracked, malformed, or not top-level
    (objects with ownerReferences belong to their owner, never to an app; ``top_level_only=False`` reads
    the claim anyway, to refuse adopting an object another app's id names)."""
    meta = _meta(obj)
    if top_level_only and meta.get("ownerReferences"):
        return None
    if method == "label":
        value = _str_map(meta, "labels").get(label_key)
        return value if isinstance(value, str) and value and not _WHITESPACE.search(value) else None
    parsed = parse_id(_str_map(meta, "annotations").get(annotation_key))
    return parsed.instance if parsed else None


def _label_value(instance: str, method: TrackingMethod) -> str:
    if method == "label":
        return instance  # not truncated: a name over 63 characters fails at apply, visibly
    return instance[:_LABEL_MAX].rstrip("-_.")


@dataclass(frozen=True, slots=True)
class Tracking:
    """The tracking configuration of one installation: method and keys."""

    method: TrackingMethod = "annotation"
    annotation_key: str = DEFAULT_ANNOTATION_KEY
    label_key: str = DEFAULT_LABEL_KEY
    control_plane_namespace: str = DEFAULT_CONTROL_PLANE_NAMESPACE

    @classmethod
    def from_settings(cls, settings: SyncSettings) -> Tracking:
        return cls(
            method=settings.tracking_method,
            annotation_key=settings.tracking_key,
            label_key=settings.instance_label_key,
            control_plane_namespace=settings.control_plane_namespace,
        )

    def instance(self, app: str, app_namespace: str) -> str:
        return instance_name(app, app_namespace, control_plane_namespace=self.control_plane_namespace)

    def selector(self, instance: str | None = None) -> TrackingSelector:
        """The cluster-layer selector for this configuration (``None``: objects of any app)."""
        from sync.cluster import TrackingSelector  # local: sync.cluster imports this module

        key = self.label_key if self.method == "label" else self.annotation_key
        return TrackingSelector(key=key, method=self.method, app=instance)

    def owner_of(self, obj: Mapping[str, Any], *, top_level_only: bool = True) -> str | None:
        return owner_of(
            obj,
            method=self.method,
            annotation_key=self.annotation_key,
            label_key=self.label_key,
            top_level_only=top_level_only,
        )

    def id_of(self, obj: Mapping[str, Any]) -> TrackingId | None:
        """The parsed tracking annotation of ``obj`` (``None`` under label tracking or when malformed)."""
        if self.method == "label":
            return None
        return parse_id(_str_map(_meta(obj), "annotations").get(self.annotation_key))

    def stamp(self, obj: Mapping[str, Any], *, instance: str, destination_namespace: str) -> dict[str, Any]:
        """A copy of target ``obj`` carrying this app's tracking metadata (CRDs are returned unchanged).

        Any tracking value the manifest brought along is overwritten: Git cannot claim another app's id.
        """
        out = copy.deepcopy(dict(obj))
        if is_crd(out):
            return out
        meta = dict(out.get("metadata") or {})
        if self.method in ("annotation", "annotation+label"):
            namespace = str(meta.get("namespace") or destination_namespace)
            annotations = dict(_str_map(meta, "annotations"))
            annotations[self.annotation_key] = format_id(
                instance,
                group=group_of(str(out.get("apiVersion") or "")),
                kind=str(out.get("kind") or ""),
                namespace=namespace,
                name=str(meta.get("name") or ""),
            )
            meta["annotations"] = annotations
        if self.method in ("label", "annotation+label"):
            labels = dict(_str_map(meta, "labels"))
            labels[self.label_key] = _label_value(instance, self.method)
            meta["labels"] = labels
        out["metadata"] = meta
        return out

    def is_self_referencing(self, live: Mapping[str, Any] | None, target: Mapping[str, Any] | None) -> bool:
        """Is ``live`` really the object its tracking id describes, or a copy carrying a cloned annotation?

        Label tracking cannot tell, so it always answers yes. With a target, the id the target would carry is
        used (so an API group upgrade of the same object still matches); without one, the live annotation.
        A live object without a namespace (cluster-scoped) matches any id namespace.
        """
        if live is None or self.method == "label":
            return True
        ident: TrackingId | None
        if target is not None:
            meta = _meta(target)
            ident = TrackingId(
                instance="",
                group=group_of(str(target.get("apiVersion") or "")),
                kind=str(target.get("kind") or ""),
                namespace=str(meta.get("namespace") or ""),
                name=str(meta.get("name") or ""),
            )
        else:
            ident = self.id_of(live)
            if ident is None:
                return True
        live_meta = _meta(live)
        live_ns = str(live_meta.get("namespace") or "")
        return (
            (live_ns == "" or live_ns == ident.namespace)
            and str(live_meta.get("name") or "") == ident.name
            and group_of(str(live.get("apiVersion") or "")) == ident.group
            and str(live.get("kind") or "") == ident.kind
        )

    def migrate(self, live: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``live`` normalised for a change of tracking method (§3.3), applied before diffing.

        Under annotation methods, a live object tracked only by the instance label gets the desired
        annotation copied onto it (switching from label tracking shows no diff), and loses the label when
        the desired object has none. A live annotation that differs is kept: a sync must repair it.
        """
        out = copy.deepcopy(dict(live))
        if self.method == "label" or is_crd(out):
            return out
        meta = dict(_meta(out))
        annotations = dict(_str_map(meta, "annotations"))
        labels = dict(_str_map(meta, "labels"))
        if self.annotation_key in annotations or not labels.get(self.label_key):
            return out
        wanted = _str_map(_meta(desired), "annotations").get(self.annotation_key)
        if isinstance(wanted, str):
            annotations[self.annotation_key] = wanted
            meta["annotations"] = annotations
        if self.label_key not in _str_map(_meta(desired), "labels"):
            labels.pop(self.label_key, None)
            meta["labels"] = labels
        out["metadata"] = meta
        return out

    def with_tracking_of(self, desired: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``desired`` whose tracking metadata is ``live``'s: compares content only (used for an
        object another app owns, which this app will not write, so its claim is not a difference)."""
        out = copy.deepcopy(dict(desired))
        meta = dict(_meta(out))
        for field, key in (("annotations", self.annotation_key), ("labels", self.label_key)):
            values = dict(_str_map(meta, field))
            theirs = _str_map(_meta(live), field)
            if key in theirs:
                values[key] = theirs[key]
            else:
                values.pop(key, None)
            if values:
                meta[field] = values
            else:
                meta.pop(field, None)
        out["metadata"] = meta
        return out
