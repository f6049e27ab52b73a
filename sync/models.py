"""The sync core's value types: ``ResourceKey`` (the join key of desired and live objects) and ``Manifest``
(one desired object plus where it came from), and a re-export of the ``Application`` model.

Who uses them: the renderers (``sync.manifests``) produce ``Manifest`` lists; plan, diff, health and the
engine pair them with live objects by ``ResourceKey``; ``api`` (``syncwarden check``) hands them to the
policy gate. As in gitops-engine, the API *version* is not part of the key, and cluster-scoped objects
have an empty namespace.

The Application model lives in :mod:`sync.application` (it is large); it is re-exported here so callers
write ``from sync.models import Application``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync.application import (
    Application,
    ApplicationSource,
    Automated,
    Backoff,
    Destination,
    DirectorySource,
    HelmParameter,
    HelmSource,
    IgnoreDifference,
    InvalidApplication,
    KustomizeSource,
    Retry,
    SyncPolicy,
)

__all__ = [
    "Application",
    "ApplicationSource",
    "Automated",
    "Backoff",
    "Destination",
    "DirectorySource",
    "HelmParameter",
    "HelmSource",
    "IgnoreDifference",
    "InvalidApplication",
    "KustomizeSource",
    "Manifest",
    "ResourceKey",
    "Retry",
    "SyncPolicy",
    "group_of",
]


@dataclass(frozen=True, slots=True)
class ResourceKey:
    """(API group, kind, namespace, name): how a desired object is paired with a live one."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        # gitops-engine's "<group>/<kind>/<namespace>/<name>" form, used in messages
        return f"{self.group}/{self.kind}/{self.namespace}/{self.name}"


def group_of(api_version: str) -> str:
    """``apps/v1`` → ``apps``; ``v1`` (the core group) → ``""``."""
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _str_field(obj: dict[str, Any], *path: str) -> str:
    node: Any = obj
    for part in path:
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    return node if isinstance(node, str) else ""


@dataclass(frozen=True)
class Manifest:
    """One desired object.

    ``source`` is the file it came from, relative to the root the user gave (or to the app path for
    rendered sources; ``kustomize build`` / ``helm template`` output carries the tool's name), and
    ``index`` is the YAML document index inside that file. Both exist for error messages.
    """

    obj: dict[str, Any]
    source: str
    index: int

    @property
    def api_version(self) -> str:
        return _str_field(self.obj, "apiVersion")

    @property
    def kind(self) -> str:
        return _str_field(self.obj, "kind")

    @property
    def group(self) -> str:
        return group_of(self.api_version)

    @property
    def name(self) -> str:
        return _str_field(self.obj, "metadata", "name")

    @property
    def namespace(self) -> str:
        return _str_field(self.obj, "metadata", "namespace")

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(group=self.group, kind=self.kind, namespace=self.namespace, name=self.name)

    @property
    def where(self) -> str:
        """``file[index]``, the prefix of every message about this object."""
        return f"{self.source}[{self.index}]"
