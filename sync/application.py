"""The Argo CD ``Application`` model: load the YAML users already have, unchanged, into frozen dataclasses.

Who calls this: ``syncwarden app manifests`` and ``syncwarden check --app`` (through ``api``), the
renderers (``sync.manifests``), and later the store and the reconciler. Parsing and validation happen once,
here, at the edge; every error is an :class:`InvalidApplication` whose ``field`` is the path users see in
their YAML (``spec.source.repoURL``, ``spec.sources[1].helm.valueFiles[0]``).

Behaviour follows ``shared/reference/argocd-sync-semantics.md`` §1: ``spec.sources`` wins over
``spec.source`` when non-empty; an empty project means ``default``; ``destination`` needs ``server`` xor
``name``; a trailing ``/`` of the server is trimmed; ``revisionHistoryLimit`` defaults to 10; an
``automated`` block enables auto-sync unless ``enabled: false``. Fields we do not model (``info``,
``plugin`` options, ``sourceHydrator`` ...) are kept verbatim so :meth:`Application.to_dict` gives them back.

Error tree::

    InvalidApplication (ValueError)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sync import appfields as f
from sync.appfields import InvalidApplication

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
    "Retry",
    "SyncPolicy",
]

API_VERSION = "argoproj.io/v1alpha1"
DEFAULT_HISTORY_LIMIT = 10
_REF_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class DirectorySource:
    recurse: bool = False
    include: str = ""
    exclude: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # jsonnet, disableExtensionFilter: kept, not used


@dataclass(frozen=True)
class HelmParameter:
    name: str
    value: str
    force_string: bool = False


@dataclass(frozen=True)
class HelmSource:
    value_files: tuple[str, ...] = ()
    values: str = ""
    values_object: dict[str, Any] | None = None
    parameters: tuple[HelmParameter, ...] = ()
    release_name: str = ""
    namespace: str = ""
    ignore_missing_value_files: bool = False
    skip_crds: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KustomizeSource:
    name_prefix: str = ""
    name_suffix: str = ""
    common_labels: dict[str, str] = field(default_factory=dict)
    common_annotations: dict[str, str] = field(default_factory=dict)
    images: tuple[str, ...] = ()
    namespace: str = ""
    force_common_labels: bool = False
    force_common_annotations: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplicationSource:
    repo_url: str
    path: str = ""
    target_revision: str = ""
    chart: str = ""
    ref: str = ""
    name: str = ""
    directory: DirectorySource | None = None
    helm: HelmSource | None = None
    kustomize: KustomizeSource | None = None
    plugin: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def explicit_type(self) -> str:
        """``Helm``/``Kustomize``/``Directory``/``Plugin`` when a tool block is set, else ``""`` (auto-detect)."""
        for name, block in (
            ("Helm", self.helm),
            ("Kustomize", self.kustomize),
            ("Directory", self.directory),
            ("Plugin", self.plugin),
        ):
            if block is not None:
                return name
        return ""


@dataclass(frozen=True)
class Destination:
    server: str = ""
    name: str = ""
    namespace: str = ""


@dataclass(frozen=True)
class Automated:
    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class Backoff:
    duration: str = "5s"
    factor: int = 2
    max_duration: str = "3m"

    @property
    def duration_seconds(self) -> float:
        return f.duration_seconds(self.duration)

    @property
    def max_duration_seconds(self) -> float:
        return f.duration_seconds(self.max_duration)


@dataclass(frozen=True)
class Retry:
    limit: int = 0
    backoff: Backoff | None = None
    refresh: bool = False


@dataclass(frozen=True)
class SyncPolicy:
    automated: Automated | None = None
    sync_options: tuple[str, ...] = ()
    retry: Retry | None = None
    managed_namespace_metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class IgnoreDifference:
    kind: str
    group: str = ""
    name: str = ""
    namespace: str = ""
    json_pointers: tuple[str, ...] = ()
    jq_path_expressions: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Application:
    """One Application. ``sources`` is always a tuple (one element when the YAML used ``source``)."""

    name: str
    namespace: str
    project: str
    sources: tuple[ApplicationSource, ...]
    destination: Destination
    multi_source: bool = False
    sync_policy: SyncPolicy | None = None
    ignore_differences: tuple[IgnoreDifference, ...] = ()
    revision_history_limit: int = DEFAULT_HISTORY_LIMIT
    finalizers: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    source_file: str = ""
    spec_extra: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> ApplicationSource:
        """The first (for a single-source app, the only) source."""
        return self.sources[0]

    @property
    def automated(self) -> bool:
        policy = self.sync_policy
        return policy is not None and policy.automated is not None and policy.automated.enabled

    @classmethod
    def from_dict(cls, manifest: Mapping[str, Any], *, source: str = "") -> Application:
        """Validate and load an Application manifest; raises :class:`InvalidApplication` naming the field."""
        from sync import appparse  # local: appparse imports this module's dataclasses

        return appparse.parse_application(manifest, source=source)

    def to_dict(self) -> dict[str, Any]:
        """The manifest again, in Argo CD's shape (defaults omitted, the project written explicitly)."""
        from sync import appparse

        return appparse.application_to_dict(self)

    @staticmethod
    def valid_ref_name(ref: str) -> bool:
        return bool(_REF_NAME.match(ref))
