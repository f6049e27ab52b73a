"""The AppProject model: Argo CD's ``AppProject`` as frozen dataclasses, loaded and validated once, at the edge.

Who calls it: the CLI (``syncwarden check``, ``proj windows``), the API (project create/update), the policy
store (persist and reload), and :mod:`policy.evaluate` through the gate methods. ``from_dict`` accepts an
``argoproj.io/v1alpha1`` ``AppProject`` manifest unchanged, or a bare ``spec`` mapping, and raises
:class:`~policy.errors.InvalidProject` naming the field path (``spec.syncWindows[2].schedule: …``).

Loading is strict where Argo CD's API is (reference §1.10) and beyond it where Argo CD would silently
misbehave: unknown fields are errors naming the field (Argo CD's CRD prunes them); a glob or file pattern that
does not compile is an error (Argo CD logs and never matches, which for a negation or a blacklist means
"allow"); a ``/regex/`` source namespace must compile (RE2: no lookarounds); a destination needs a server or
a name. An absent list (``None``) and an empty one (``()``) stay different, and ``to_dict`` gives back what was
loaded (keys in Argo CD's field order; an explicit ``null`` list reads as absent).

The gates themselves live in :mod:`policy.gates`; the role model and the runtime policy text in
:mod:`policy.roles`; sync windows in :mod:`policy.windows`.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from policy import gates, rbac_csv, roles
from policy.decision import Decision
from policy.errors import InvalidPolicy, InvalidProject, InvalidWindow
from policy.fields import Reader, has_unsafe_chars
from policy.project_parts import Destination, DestinationServiceAccount, OrphanedResources, ResourceRule, read_parts
from policy.roles import JWTToken, Role

if TYPE_CHECKING:
    from policy import windows

__all__ = [
    "API_VERSION",
    "KIND",
    "AppProject",
    "Destination",
    "DestinationServiceAccount",
    "OrphanedResources",
    "ResourceRule",
    "default_project",
]

API_VERSION = "argoproj.io/v1alpha1"
KIND = "AppProject"
_TOP_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")
_SPEC_KEYS = (
    "sourceRepos", "destinations", "description", "roles", "clusterResourceWhitelist",
    "namespaceResourceBlacklist", "orphanedResources", "syncWindows", "namespaceResourceWhitelist",
    "signatureKeys", "clusterResourceBlacklist", "sourceNamespaces", "permitOnlyProjectScopedClusters",
    "destinationServiceAccounts", "sourceIntegrity",
)
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_EMPTY: Mapping[str, Any] = MappingProxyType({})
#: the lists a global project contributes (Argo CD ``mergeVirtualProject``)
_INHERITED = (
    "cluster_resource_whitelist", "cluster_resource_blacklist", "namespace_resource_whitelist",
    "namespace_resource_blacklist", "sync_windows", "source_repos", "destinations", "destination_service_accounts",
)


def _frozen(data: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if data is None else MappingProxyType(copy.deepcopy(dict(data)))


@dataclass(frozen=True)
class AppProject:
    """One project. Lists are ``None`` when absent and a tuple (possibly empty) when written."""

    name: str
    namespace: str = ""
    description: str | None = None
    source_repos: tuple[str, ...] | None = None
    destinations: tuple[Destination, ...] | None = None
    cluster_resource_whitelist: tuple[ResourceRule, ...] | None = None
    cluster_resource_blacklist: tuple[ResourceRule, ...] | None = None
    namespace_resource_whitelist: tuple[ResourceRule, ...] | None = None
    namespace_resource_blacklist: tuple[ResourceRule, ...] | None = None
    roles: tuple[Role, ...] = ()
    sync_windows: tuple[windows.SyncWindow, ...] | None = None
    orphaned_resources: OrphanedResources | None = None
    signature_keys: tuple[str, ...] | None = None
    source_namespaces: tuple[str, ...] | None = None
    permit_only_project_scoped_clusters: bool | None = None
    destination_service_accounts: tuple[DestinationServiceAccount, ...] | None = None
    #: carried unchanged for round-trips; syncwarden does not verify signatures
    source_integrity: Mapping[str, Any] | None = field(default=None, hash=False)
    #: ``status.jwtTokensByRole``: role name → issued-token records
    jwt_tokens_by_role: Mapping[str, tuple[JWTToken, ...]] | None = field(default=None, hash=False)
    #: the rest of ``metadata`` (labels, annotations, …), carried unchanged
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, hash=False)
    #: ``spec`` keys written as empty lists where the model keeps a plain tuple (``roles: []``)
    explicit: frozenset[str] = frozenset()
    #: ``False`` when loaded from a bare spec: ``to_dict`` then gives the bare spec back
    manifest: bool = True

    # ------------------------------------------------------------------------------------------- loading

    @classmethod
    def from_dict(cls, manifest: Mapping[str, Any], *, source: str = "", name: str | None = None) -> AppProject:
        """Load and validate. ``name`` names a project given as a bare spec (default ``default``)."""
        reader = Reader(source)
        if not isinstance(manifest, Mapping):
            raise reader.error("", "an AppProject must be a mapping")
        if any(key in manifest for key in _TOP_KEYS):
            return cls._from_manifest(reader, manifest)
        return cls._from_spec(reader, manifest, "", name=name or "default", namespace="", metadata=_EMPTY,
                              status=None, is_manifest=False)

    @classmethod
    def from_yaml(cls, text: str | bytes, *, source: str) -> AppProject:
        """One YAML (or JSON) document: duplicate keys and unsafe YAML are errors (difference 7)."""
        from config import yamlsafe  # local: only file-based callers need YAML

        try:
            data = yamlsafe.load_one(text, source=source)
        except yamlsafe.YamlError as exc:
            raise InvalidProject("", str(exc), source=source) from None
        return cls.from_dict(data, source=source)

    @classmethod
    def _from_manifest(cls, reader: Reader, data: Mapping[str, Any]) -> AppProject:
        data = reader.mapping(data, "", _TOP_KEYS)
        if data.get("apiVersion") != API_VERSION:
            raise reader.error("apiVersion", f"must be {API_VERSION!r}, not {data.get('apiVersion')!r}")
        if data.get("kind") != KIND:
            raise reader.error("kind", f"must be {KIND!r}, not {data.get('kind')!r}")
        if "metadata" not in data:
            raise reader.error("metadata.name", "is required")
        meta = reader.mapping(data["metadata"], "metadata", None)
        if "name" not in meta:
            raise reader.error("metadata.name", "is required")
        name = reader.string(meta["name"], "metadata.name")
        namespace = reader.opt_string(meta, "namespace", "metadata") or ""
        if namespace and (len(namespace) > 63 or not _DNS1123_LABEL.fullmatch(namespace)):
            raise reader.error("metadata.namespace", f"{namespace!r} is not a valid namespace (DNS-1123 label)")
        if "spec" not in data:
            raise reader.error("spec", "is required")
        rest = {k: v for k, v in meta.items() if k not in ("name", "namespace")}
        return cls._from_spec(reader, data["spec"], "spec", name=name, namespace=namespace,
                              metadata=MappingProxyType(copy.deepcopy(rest)), status=data.get("status"),
                              is_manifest=True)

    @classmethod
    def _from_spec(
        cls, reader: Reader, spec: Any, path: str, *, name: str, namespace: str, metadata: Mapping[str, Any],
        status: Any, is_manifest: bool,
    ) -> AppProject:
        name_field = "metadata.name" if is_manifest else "name"
        if len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
            raise reader.error(name_field, f"{name!r} is not a valid project name (a DNS-1123 subdomain: lower-case "
                                           "letters, digits, '-' and '.', at most 253 characters)")
        spec = reader.mapping(spec, path, _SPEC_KEYS)
        description = reader.opt_string(spec, "description", path, max_len=255)
        if description is not None and has_unsafe_chars(description.replace("\n", "").replace("\t", "")):
            raise reader.error(f"{path}.description" if path else "description",
                               "contains control or invisible formatting characters")
        parts = read_parts(reader, spec, path)
        role_entries = reader.items(spec, "roles", path)
        project_roles = roles.read_roles(reader, name, role_entries) if role_entries is not None else ()
        sync_windows = _read_windows(reader, spec, path)
        integrity = spec.get("sourceIntegrity")
        if integrity is not None:
            reader.mapping(integrity, f"{path}.sourceIntegrity" if path else "sourceIntegrity", None)
        project = cls(
            name=name,
            namespace=namespace,
            description=description,
            source_repos=parts.source_repos,
            destinations=parts.destinations,
            cluster_resource_whitelist=parts.cluster_resource_whitelist,
            cluster_resource_blacklist=parts.cluster_resource_blacklist,
            namespace_resource_whitelist=parts.namespace_resource_whitelist,
            namespace_resource_blacklist=parts.namespace_resource_blacklist,
            roles=project_roles,
            sync_windows=sync_windows,
            orphaned_resources=parts.orphaned_resources,
            signature_keys=parts.signature_keys,
            source_namespaces=parts.source_namespaces,
            permit_only_project_scoped_clusters=reader.boolean(spec, "permitOnlyProjectScopedClusters", path),
            destination_service_accounts=parts.destination_service_accounts,
            source_integrity=_frozen(integrity),
            jwt_tokens_by_role=_read_status(reader, status),
            metadata=metadata,
            explicit=frozenset({"roles"} if spec.get("roles") == [] else ()),
            manifest=is_manifest,
        )
        project._check_runtime_policy(reader, path)
        return project

    def _check_runtime_policy(self, reader: Reader, path: str) -> None:
        """The whole runtime policy must load as the RBAC engine reads it (Argo CD loads it in casbin)."""
        if not self.roles:
            return
        lines = roles.runtime_policy_lines(self.name, self.roles)
        try:
            rbac_csv.parse_project_policy(self.name, "\n".join(line for line, _ in lines),
                                          source=f"project {self.name}")
        except InvalidPolicy as exc:
            where = lines[exc.line - 1][1] if exc.line is not None and 0 < exc.line <= len(lines) else "roles"
            raise reader.error(f"{path}.{where}" if path else where, exc.detail) from None

    # ------------------------------------------------------------------------------------------ writing

    def spec_dict(self) -> dict[str, Any]:
        """The ``spec`` mapping, keys in Argo CD's field order."""
        out: dict[str, Any] = {}

        def put(key: str, value: Any) -> None:
            if value is not None:
                out[key] = value

        def rules(values: tuple[ResourceRule, ...] | None) -> list[dict[str, str]] | None:
            return None if values is None else [r.to_dict() for r in values]

        put("sourceRepos", None if self.source_repos is None else list(self.source_repos))
        put("destinations", None if self.destinations is None else [d.to_dict() for d in self.destinations])
        put("description", self.description)
        put("roles", [r.to_dict() for r in self.roles] if self.roles or "roles" in self.explicit else None)
        put("clusterResourceWhitelist", rules(self.cluster_resource_whitelist))
        put("namespaceResourceBlacklist", rules(self.namespace_resource_blacklist))
        put("orphanedResources", None if self.orphaned_resources is None else self.orphaned_resources.to_dict())
        put("syncWindows", None if self.sync_windows is None else [w.to_dict() for w in self.sync_windows])
        put("namespaceResourceWhitelist", rules(self.namespace_resource_whitelist))
        put("signatureKeys", None if self.signature_keys is None else [{"keyID": k} for k in self.signature_keys])
        put("clusterResourceBlacklist", rules(self.cluster_resource_blacklist))
        put("sourceNamespaces", None if self.source_namespaces is None else list(self.source_namespaces))
        put("permitOnlyProjectScopedClusters", self.permit_only_project_scoped_clusters)
        put("destinationServiceAccounts", None if self.destination_service_accounts is None
            else [d.to_dict() for d in self.destination_service_accounts])
        put("sourceIntegrity", None if self.source_integrity is None else copy.deepcopy(dict(self.source_integrity)))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The manifest (or the bare spec, if that is what was loaded), as ``from_dict`` accepts it."""
        if not self.manifest:
            return self.spec_dict()
        meta: dict[str, Any] = {"name": self.name}
        if self.namespace:
            meta["namespace"] = self.namespace
        meta.update(copy.deepcopy(dict(self.metadata)))
        out: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": self.spec_dict()}
        if self.jwt_tokens_by_role is not None:
            out["status"] = {"jwtTokensByRole": {
                role: {"items": [t.to_dict() for t in tokens]} for role, tokens in self.jwt_tokens_by_role.items()
            }}
        return out

    # -------------------------------------------------------------------------------------------- gates

    def check_source(self, url: str, *, field: str = "spec.source.repoURL") -> Decision:
        return gates.check_source(self, url, field=field)

    def check_destination(
        self, *, server: str = "", name: str = "", namespace: str, field: str = "spec.destination",
        scoped_clusters: Collection[tuple[str, str]] | None = None,
    ) -> Decision:
        return gates.check_destination(self, server=server, name=name, namespace=namespace, field=field,
                                       scoped_clusters=scoped_clusters)

    def check_resource(
        self, *, group: str, kind: str, namespaced: bool, name: str = "", field: str = "kind"
    ) -> Decision:
        return gates.check_resource(self, group=group, kind=kind, namespaced=namespaced, name=name, field=field)

    def check_source_namespace(
        self, namespace: str, *, control_plane_namespace: str = "syncwarden", field: str = "metadata.namespace"
    ) -> Decision:
        return gates.check_source_namespace(self, namespace, control_plane_namespace=control_plane_namespace,
                                            field=field)

    def service_account_for(self, *, server: str, namespace: str, app_namespace: str) -> str | None:
        return gates.service_account_for(self, server=server, namespace=namespace, app_namespace=app_namespace)

    def windows_state(
        self, *, app: str, namespace: str, server: str = "", cluster_name: str = "", at: datetime
    ) -> windows.WindowState:
        from policy import windows  # local: croniter is only loaded by projects that use windows

        return windows.windows_state(self.sync_windows or (), app=app, namespace=namespace, server=server,
                                     cluster_name=cluster_name, at=at)

    def with_global(self, *global_projects: AppProject) -> AppProject:
        """The effective project after merging Argo CD *global projects* (reference §1.1 step 4).

        Their resource lists, windows, source repos, destinations and service-account rules are appended to
        this project's; roles, source namespaces, orphan monitoring and signature keys are not inherited. As in
        Go, appending to an absent list yields an absent list only when nothing is appended, so a global
        namespace whitelist restricts a project that had none (§6 item 42).
        """
        merged: dict[str, Any] = {}
        for attr in _INHERITED:
            value: tuple[Any, ...] | None = getattr(self, attr)
            for other in global_projects:
                if other.name == self.name:
                    continue  # a project is never its own global project
                extra: tuple[Any, ...] | None = getattr(other, attr)
                if extra:
                    value = (value or ()) + extra
            merged[attr] = value
        return dataclasses.replace(self, **merged)

    # -------------------------------------------------------------------------------------------- roles

    def role(self, name: str) -> Role | None:
        return next((r for r in self.roles if r.name == name), None)

    def tokens(self, role: str) -> tuple[JWTToken, ...]:
        """Issued-token records of ``role`` from ``status.jwtTokensByRole`` (empty when none)."""
        return (self.jwt_tokens_by_role or {}).get(role, ())

    def normalize_jwt_tokens(self) -> AppProject:
        """Argo CD ``NormalizeJWTTokens`` (reference §3.3): missing IDs become the decimal ``iat``; per role the
        spec (legacy) and status records are merged by ID (spec wins), sorted by ``iat`` descending and written
        to both places; status entries of roles that no longer exist are dropped."""

        def with_id(token: JWTToken) -> JWTToken:
            return token if token.id else dataclasses.replace(token, id=str(token.iat))

        status = self.jwt_tokens_by_role or {}
        new_roles: list[Role] = []
        by_role: dict[str, tuple[JWTToken, ...]] = {}
        for role in self.roles:
            merged = {t.id: t for t in map(with_id, (*status.get(role.name, ()), *role.jwt_tokens))}
            tokens = tuple(sorted(merged.values(), key=lambda t: t.iat, reverse=True))
            new_roles.append(dataclasses.replace(role, jwt_tokens=tokens))
            by_role[role.name] = tokens
        return dataclasses.replace(self, roles=tuple(new_roles), jwt_tokens_by_role=MappingProxyType(by_role))

    def runtime_policy_csv(self) -> str:
        """The project's RBAC policy text (reference §2.9); see :func:`policy.roles.runtime_policy_csv`."""
        return roles.runtime_policy_csv(self.name, self.roles)


def _read_windows(reader: Reader, spec: Mapping[str, Any], path: str) -> tuple[windows.SyncWindow, ...] | None:
    entries = reader.items(spec, "syncWindows", path)
    if entries is None:
        return None
    from policy import windows  # local: croniter is only loaded by projects that use windows

    try:
        parsed = tuple(windows.SyncWindow.from_dict(item, field=where) for where, item in entries)
        windows.validate_windows(parsed, field=f"{path}.syncWindows" if path else "syncWindows")
    except InvalidProject as exc:
        raise InvalidWindow(exc.field, exc.detail, source=reader.source) from None
    return parsed


def _read_status(reader: Reader, status: Any) -> Mapping[str, tuple[JWTToken, ...]] | None:
    if status is None:
        return None
    status = reader.mapping(status, "status", ("jwtTokensByRole",))
    by_role = status.get("jwtTokensByRole")
    if by_role is None:
        return None
    by_role = reader.mapping(by_role, "status.jwtTokensByRole", None)
    out: dict[str, tuple[JWTToken, ...]] = {}
    for role, entry in by_role.items():
        where = f"status.jwtTokensByRole.{role}"
        entry = reader.mapping(entry, where, ("items",))
        items = reader.items(entry, "items", where) or []
        out[role] = roles.read_tokens(reader, items)
    return MappingProxyType(out)


def default_project(*, namespace: str = "") -> AppProject:
    """Argo CD's ``default`` project (reference §1.11): any source, any destination, every kind."""
    return AppProject(
        name="default",
        namespace=namespace,
        source_repos=("*",),
        destinations=(Destination(server="*", namespace="*"),),
        cluster_resource_whitelist=(ResourceRule(group="*", kind="*"),),
    )

