"""``spec.syncPolicy.managedNamespaceMetadata``: labels and annotations CreateNamespace keeps on the destination
namespace (``argocd-sync-semantics.md`` §1.9, §2.1, §3.1 step 7, §3.7, §4.2).

Who calls this: :mod:`sync.appparse` validates the field when an Application is read; the engine
(:mod:`sync.engine`) builds the namespace it creates or updates from it and records what it applied;
:func:`sync.compare.compare` synthesises the comparison-only Namespace target and applies the "will be created"
special case; the reconciler (through :class:`sync.reconcile_env.Environment`) makes the app OutOfSync when the
metadata differs from what the last sync applied. Pure.

The rules:

* The metadata is *effective* only with ``CreateNamespace=true`` among the app's sync options and a non-empty
  destination namespace; the engine goes by the operation's own copy of the options.
* A Namespace of that name among the app's (non-hook) resources in Git wins: the metadata is not applied and
  not compared.
* The namespace is applied with server-side apply under syncwarden's field manager: labels and annotations
  other tools set survive, and an entry removed from the metadata is removed from the namespace.
* The namespace is not tracked (never pruned, not deleted with the app) unless the metadata itself carries
  the tracking annotation (or label); then the comparison compares it against a target built from the
  metadata instead of offering it for pruning.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sync import appfields as f
from sync import hooks
from sync.appfields import InvalidApplication
from sync.application import Application
from sync.models import ResourceKey, group_of

__all__ = [
    "NamespaceMetadata",
    "checked",
    "creates_namespace",
    "declared",
    "defined_in_git",
    "destination_key",
    "differs_from_applied",
    "effective",
    "namespace_object",
]

_FIELDS = ("labels", "annotations")


@dataclass(frozen=True)
class NamespaceMetadata:
    """Labels and annotations, sorted, so that equal metadata compares equal however it was written."""

    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> NamespaceMetadata | None:
        """From the spec field (validated by :func:`checked`) or from what the store recorded; None stays None."""
        if raw is None:
            return None

        def pairs(name: str) -> tuple[tuple[str, str], ...]:
            values = raw.get(name)
            return tuple(sorted((str(k), str(v)) for k, v in values.items())) if isinstance(values, Mapping) else ()

        return cls(labels=pairs("labels"), annotations=pairs("annotations"))

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"labels": dict(self.labels), "annotations": dict(self.annotations)}


def checked(raw: dict[str, Any] | None, path: str) -> dict[str, Any] | None:
    """A copy of the spec field after checking its shape: ``labels`` and ``annotations``, each a map of strings.
    Raises :class:`sync.appfields.InvalidApplication` naming the field."""
    if raw is None:
        return None
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise InvalidApplication(f"{path}.{unknown[0]}", "unknown field (expected labels and annotations)")
    for name in _FIELDS:
        f.string_map(raw, name, path)
    return copy.deepcopy(raw)


def creates_namespace(options: Iterable[str]) -> bool:
    """Does ``CreateNamespace=true`` hold among these ``Key=value`` options (the last occurrence wins)?"""
    found = False
    for raw in options:
        key, sep, value = raw.strip().partition("=")
        if sep and key.strip() == "CreateNamespace":
            found = value.strip().lower() == "true"
    return found


def declared(app: Application) -> NamespaceMetadata | None:
    """The app's managedNamespaceMetadata when it has one and a destination namespace (sync options aside)."""
    policy = app.sync_policy
    if policy is None or policy.managed_namespace_metadata is None or not app.destination.namespace:
        return None
    return NamespaceMetadata.parse(policy.managed_namespace_metadata)


def effective(app: Application) -> NamespaceMetadata | None:
    """:func:`declared`, but only when the app's sync options create the namespace."""
    if app.sync_policy is None or not creates_namespace(app.sync_policy.sync_options):
        return None
    return declared(app)


def destination_key(app: Application) -> ResourceKey:
    return ResourceKey("", "Namespace", "", app.destination.namespace)


def namespace_object(name: str, metadata: NamespaceMetadata | None) -> dict[str, Any]:
    """The Namespace CreateNamespace applies (carrying the metadata, when there is some)."""
    meta: dict[str, Any] = {"name": name}
    if metadata is not None:
        for field_name, values in (("labels", metadata.labels), ("annotations", metadata.annotations)):
            if values:
                meta[field_name] = dict(values)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def defined_in_git(app: Application, targets: Iterable[Mapping[str, Any]]) -> bool:
    """Is the destination Namespace among these desired objects, hooks aside? (Then it wins over the metadata;
    a Namespace declared only as a hook does not, as in Argo CD, §10 quirk 4.)"""
    ns = app.destination.namespace
    for obj in targets:
        meta = obj.get("metadata")
        if hooks.is_hook(obj):
            continue
        if (obj.get("kind") == "Namespace" and group_of(str(obj.get("apiVersion") or "")) == ""
                and isinstance(meta, Mapping) and meta.get("name") == ns):
            return True
    return False


def differs_from_applied(app: Application, targets: Iterable[Mapping[str, Any]],
                         applied: Mapping[str, Any] | None) -> bool:
    """§2.1: is the app's effective metadata other than what the last sync applied (``applied``; None when no
    sync ever applied any)? False when there is none, or when Git defines the namespace."""
    wanted = effective(app)
    if wanted is None or defined_in_git(app, targets):
        return False
    return NamespaceMetadata.parse(applied) != wanted
