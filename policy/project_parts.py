"""The small records of an AppProject spec and how each list is read and validated (reference §1.2–§1.8, §1.10).

Split out of :mod:`policy.project` to keep each module to one job: :mod:`policy.project` assembles the project
and round-trips it; this module turns each spec list into frozen records, rejecting (with the field path)
what Argo CD's API rejects — ``!*``, duplicates, bad service-account rules — and what Argo CD would silently
ignore: patterns that do not compile (a broken negation or blacklist entry would otherwise *allow*), a
destination with neither server nor name, a ``/regex/`` that is not valid RE2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policy import patterns, urls
from policy.fields import Reader, has_unsafe_chars

__all__ = [
    "Destination",
    "DestinationServiceAccount",
    "OrphanedIgnore",
    "OrphanedResources",
    "Parts",
    "ResourceRule",
    "read_parts",
]


def _show(value: str) -> str:
    return value if value else '""'


@dataclass(frozen=True, slots=True)
class Destination:
    """A ``destinations`` entry; ``None`` fields were absent (and match only an empty value)."""

    server: str | None = None
    name: str | None = None
    namespace: str | None = None

    def to_dict(self) -> dict[str, str]:
        pairs = (("server", self.server), ("namespace", self.namespace), ("name", self.name))
        return {key: value for key, value in pairs if value is not None}

    def describe(self) -> str:
        """``{server: *, namespace: !kube-system}``: the entry as written, for decisions."""
        pairs = (("server", self.server), ("name", self.name), ("namespace", self.namespace))
        return "{" + ", ".join(f"{key}: {_show(value)}" for key, value in pairs if value is not None) + "}"


@dataclass(frozen=True, slots=True)
class ResourceRule:
    """A resource white/blacklist entry: FP patterns on group, kind and (cluster lists only) object name."""

    group: str
    kind: str
    name: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"group": self.group, "kind": self.kind}
        if self.name is not None:
            out["name"] = self.name
        return out

    def describe(self) -> str:
        name = f", name: {_show(self.name)}" if self.name is not None else ""
        return f"{{group: {_show(self.group)}, kind: {_show(self.kind)}{name}}}"


@dataclass(frozen=True, slots=True)
class OrphanedIgnore:
    group: str | None = None
    kind: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, str]:
        pairs = (("group", self.group), ("kind", self.kind), ("name", self.name))
        return {key: value for key, value in pairs if value is not None}

    def matches(self, *, group: str, kind: str, name: str) -> bool:
        """Reference §1.6: the group is always a G glob (absent means the core group only); an absent or empty
        kind or name matches any, else it is a G glob."""
        return (
            patterns.glob_match(self.group or "", group)
            and (not self.kind or patterns.glob_match(self.kind, kind))
            and (not self.name or patterns.glob_match(self.name, name))
        )


@dataclass(frozen=True, slots=True)
class OrphanedResources:
    """``orphanedResources``: monitoring is on when present; ``warn`` only when explicitly true."""

    warn: bool | None = None
    ignore: tuple[OrphanedIgnore, ...] | None = None

    @property
    def warns(self) -> bool:
        return self.warn is True

    def ignores(self, *, group: str, kind: str, name: str) -> bool:
        """Is an object of this group, kind and name exempt from monitoring by an ``ignore`` rule?"""
        return any(rule.matches(group=group, kind=kind, name=name) for rule in self.ignore or ())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.warn is not None:
            out["warn"] = self.warn
        if self.ignore is not None:
            out["ignore"] = [i.to_dict() for i in self.ignore]
        return out


@dataclass(frozen=True, slots=True)
class DestinationServiceAccount:
    """``destinationServiceAccounts`` entry: G globs on the cluster URL and destination namespace."""

    default_service_account: str
    server: str | None = None
    namespace: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {}
        if self.server is not None:
            out["server"] = self.server
        if self.namespace is not None:
            out["namespace"] = self.namespace
        out["defaultServiceAccount"] = self.default_service_account
        return out


@dataclass(frozen=True, slots=True)
class Parts:
    source_repos: tuple[str, ...] | None
    destinations: tuple[Destination, ...] | None
    cluster_resource_whitelist: tuple[ResourceRule, ...] | None
    cluster_resource_blacklist: tuple[ResourceRule, ...] | None
    namespace_resource_whitelist: tuple[ResourceRule, ...] | None
    namespace_resource_blacklist: tuple[ResourceRule, ...] | None
    orphaned_resources: OrphanedResources | None
    signature_keys: tuple[str, ...] | None
    source_namespaces: tuple[str, ...] | None
    destination_service_accounts: tuple[DestinationServiceAccount, ...] | None


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_glob(reader: Reader, value: str, where: str, *, negatable: bool) -> None:
    body = value[1:] if negatable and value.startswith("!") else value
    if not patterns.is_valid_glob(body):
        raise reader.error(where, f"pattern {value!r} does not compile (check [ ] and {{ }} pairs and \\ escapes)")


def _read_source_repos(reader: Reader, spec: Mapping[str, Any], path: str) -> tuple[str, ...] | None:
    repos = reader.strings(spec, "sourceRepos", path)
    if repos is None:
        return None
    for i, repo in enumerate(repos):
        where = f"{_key(path, 'sourceRepos')}[{i}]"
        if not repo.strip() or has_unsafe_chars(repo):
            raise reader.error(where, "must be a non-empty repository URL pattern without control characters")
        if repo == "!*":
            raise reader.error(where, "'!*' would deny every repository; remove the entry instead")
        if repo in repos[:i]:
            raise reader.error(where, f"duplicate source repository {repo!r}")
        normalized = urls.normalize_repo_url(repo[1:] if repo.startswith("!") else repo)
        if normalized is not None and not patterns.is_valid_glob(normalized):
            raise reader.error(where, f"pattern {repo!r} does not compile (check [ ] and {{ }} pairs)")
    return repos


def _read_destinations(reader: Reader, spec: Mapping[str, Any], path: str) -> tuple[Destination, ...] | None:
    entries = reader.items(spec, "destinations", path)
    if entries is None:
        return None
    out: list[Destination] = []
    keys: dict[str, str] = {}
    for where, item in entries:
        data = reader.mapping(item, where, ("server", "namespace", "name"))
        values = {key: reader.opt_string(data, key, where) for key in ("server", "name", "namespace")}
        for key, value in values.items():
            if value is None:
                continue
            if value == "!*":
                raise reader.error(f"{where}.{key}", "'!*' would deny everything; remove the entry instead")
            if has_unsafe_chars(value):
                raise reader.error(f"{where}.{key}", "contains control or invisible formatting characters")
            _check_glob(reader, value, f"{where}.{key}", negatable=True)
        server, name, namespace = values["server"], values["name"], values["namespace"]
        if not server and not name:
            raise reader.error(where, "a destination needs a server or a name")
        key = f"{server}/{namespace or ''}" if server else f"{name}/{namespace or ''}"
        if key in keys:
            raise reader.error(where, f"duplicate destination {key!r} (same as {keys[key]})")
        keys[key] = where
        out.append(Destination(server=server, name=name, namespace=namespace))
    return tuple(out)


def _read_rules(reader: Reader, spec: Mapping[str, Any], path: str, key: str) -> tuple[ResourceRule, ...] | None:
    entries = reader.items(spec, key, path)
    if entries is None:
        return None
    named = key.startswith("cluster")
    out: list[ResourceRule] = []
    for where, item in entries:
        data = reader.mapping(item, where, ("group", "kind", "name") if named else ("group", "kind"))
        for required in ("group", "kind"):
            if required not in data:
                raise reader.error(f"{where}.{required}", "is required (use \"\" for the core group, \"*\" for all)")
        group = reader.string(data["group"], f"{where}.group")
        kind = reader.string(data["kind"], f"{where}.kind")
        name = reader.opt_string(data, "name", where)
        for field_name, value in (("group", group), ("kind", kind), ("name", name)):
            if value is not None and not patterns.is_valid_path_pattern(value):
                raise reader.error(f"{where}.{field_name}", f"pattern {value!r} does not compile")
        out.append(ResourceRule(group, kind, name))
    return tuple(out)


def _read_orphaned(reader: Reader, spec: Mapping[str, Any], path: str) -> OrphanedResources | None:
    if "orphanedResources" not in spec or spec["orphanedResources"] is None:
        return None
    where = _key(path, "orphanedResources")
    data = reader.mapping(spec["orphanedResources"], where, ("warn", "ignore"))
    entries = reader.items(data, "ignore", where)
    ignore: list[OrphanedIgnore] = []
    for item_path, item in entries or ():
        item_data = reader.mapping(item, item_path, ("group", "kind", "name"))
        values = {k: reader.opt_string(item_data, k, item_path) for k in ("group", "kind", "name")}
        for k, value in values.items():
            if value is not None:
                _check_glob(reader, value, f"{item_path}.{k}", negatable=False)
        ignore.append(OrphanedIgnore(values["group"], values["kind"], values["name"]))
    return OrphanedResources(reader.boolean(data, "warn", where), None if entries is None else tuple(ignore))


def _read_signature_keys(reader: Reader, spec: Mapping[str, Any], path: str) -> tuple[str, ...] | None:
    entries = reader.items(spec, "signatureKeys", path)
    if entries is None:
        return None
    keys: list[str] = []
    for where, item in entries:
        data = reader.mapping(item, where, ("keyID",))
        key_id = reader.string(data.get("keyID", ""), f"{where}.keyID")
        if not key_id.strip() or key_id != key_id.strip() or has_unsafe_chars(key_id):
            raise reader.error(f"{where}.keyID", "must be a GPG key ID")
        keys.append(key_id)
    return tuple(keys)


def _read_source_namespaces(reader: Reader, spec: Mapping[str, Any], path: str) -> tuple[str, ...] | None:
    values = reader.strings(spec, "sourceNamespaces", path)
    if values is None:
        return None
    for i, entry in enumerate(values):
        where = f"{_key(path, 'sourceNamespaces')}[{i}]"
        if not entry or has_unsafe_chars(entry):
            raise reader.error(where, "must be a non-empty namespace pattern")
        if entry in values[:i]:
            raise reader.error(where, f"duplicate source namespace {entry!r}")
        if len(entry) >= 2 and entry.startswith("/") and entry.endswith("/"):
            try:
                patterns.compile_regex(entry[1:-1])
            except patterns.InvalidRegex as exc:
                raise reader.error(where, f"{exc} (RE2 syntax: no lookarounds or backreferences)") from None
        else:
            _check_glob(reader, entry, where, negatable=False)
    return values


_SA_FORBIDDEN = frozenset("!*[]{}\\/")


def _read_service_accounts(
    reader: Reader, spec: Mapping[str, Any], path: str
) -> tuple[DestinationServiceAccount, ...] | None:
    entries = reader.items(spec, "destinationServiceAccounts", path)
    if entries is None:
        return None
    out: list[DestinationServiceAccount] = []
    seen: dict[str, str] = {}
    for where, item in entries:
        data = reader.mapping(item, where, ("server", "namespace", "defaultServiceAccount"))
        server = reader.opt_string(data, "server", where)
        namespace = reader.opt_string(data, "namespace", where)
        for key, value in (("server", server), ("namespace", namespace)):
            if value is None:
                continue
            if "!" in value:
                raise reader.error(f"{where}.{key}", "negation ('!') is not supported here")
            if has_unsafe_chars(value):
                raise reader.error(f"{where}.{key}", "contains control or invisible formatting characters")
            _check_glob(reader, value, f"{where}.{key}", negatable=False)
        account = reader.string(data.get("defaultServiceAccount", ""), f"{where}.defaultServiceAccount")
        bad = sorted(set(account) & _SA_FORBIDDEN)
        if not account.strip() or bad or has_unsafe_chars(account) or account != account.strip():
            why = f"contains {' '.join(bad)}" if bad else "must be a service account name (or namespace:name)"
            raise reader.error(f"{where}.defaultServiceAccount", why)
        key = f"{server or ''}/{namespace or ''}"
        if key in seen:
            raise reader.error(where, f"duplicate destination service account rule {key!r} (same as {seen[key]})")
        seen[key] = where
        out.append(DestinationServiceAccount(account, server, namespace))
    return tuple(out)


def read_parts(reader: Reader, spec: Mapping[str, Any], path: str) -> Parts:
    return Parts(
        source_repos=_read_source_repos(reader, spec, path),
        destinations=_read_destinations(reader, spec, path),
        cluster_resource_whitelist=_read_rules(reader, spec, path, "clusterResourceWhitelist"),
        cluster_resource_blacklist=_read_rules(reader, spec, path, "clusterResourceBlacklist"),
        namespace_resource_whitelist=_read_rules(reader, spec, path, "namespaceResourceWhitelist"),
        namespace_resource_blacklist=_read_rules(reader, spec, path, "namespaceResourceBlacklist"),
        orphaned_resources=_read_orphaned(reader, spec, path),
        signature_keys=_read_signature_keys(reader, spec, path),
        source_namespaces=_read_source_namespaces(reader, spec, path),
        destination_service_accounts=_read_service_accounts(reader, spec, path),
    )
