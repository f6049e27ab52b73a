"""Parse an Argo CD Application manifest into :class:`sync.application.Application`, and write it back.

Who calls this: :meth:`Application.from_dict` / :meth:`Application.to_dict` only. Split out of
``sync.application`` so that the dataclasses stay readable. Rules follow ``argocd-sync-semantics.md`` §1;
every error names the field path (``spec.sources[1].repoURL``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from sync import appfields as f
from sync import giturl, namespace_meta
from sync.appfields import InvalidApplication
from sync.application import (
    API_VERSION,
    DEFAULT_HISTORY_LIMIT,
    Application,
    ApplicationSource,
    Automated,
    Backoff,
    Destination,
    DirectorySource,
    HelmParameter,
    HelmSource,
    IgnoreDifference,
    KustomizeSource,
    Retry,
    SyncPolicy,
)

__all__ = ["application_to_dict", "parse_application", "source_to_dict"]

_SOURCE_KEYS = {"repoURL", "path", "targetRevision", "chart", "ref", "name", "directory", "helm", "kustomize",
                "plugin"}
_DIR_KEYS = {"recurse", "include", "exclude"}
_HELM_KEYS = {"valueFiles", "values", "valuesObject", "parameters", "releaseName", "namespace",
              "ignoreMissingValueFiles", "skipCrds"}
_KUST_KEYS = {"namePrefix", "nameSuffix", "commonLabels", "commonAnnotations", "images", "namespace",
              "forceCommonLabels", "forceCommonAnnotations"}
_SPEC_KEYS = {"source", "sources", "destination", "project", "syncPolicy", "ignoreDifferences",
              "revisionHistoryLimit"}


def _extra(obj: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in obj.items() if k not in known}


def parse_application(manifest: Mapping[str, Any], *, source: str = "") -> Application:
    try:
        app = _parse(manifest)
    except InvalidApplication as exc:
        if source and not exc.source:
            raise InvalidApplication(exc.field, exc.detail, source=source) from None
        raise
    return dataclasses.replace(app, source_file=source) if source else app


def _parse(manifest: Mapping[str, Any]) -> Application:
    if not isinstance(manifest, Mapping):
        raise InvalidApplication("", "an Application manifest must be a mapping")
    api_version = f.string(manifest, "apiVersion", "", required=True)
    if api_version != API_VERSION:
        raise InvalidApplication("apiVersion", f"must be {API_VERSION!r}, not {api_version!r}")
    kind = f.string(manifest, "kind", "", required=True)
    if kind != "Application":
        raise InvalidApplication("kind", f"must be 'Application', not {kind!r}")
    meta = f.mapping(manifest, "metadata", "")
    name = f.string(meta, "name", "metadata", required=True)
    spec = f.optional_mapping(manifest, "spec", "")
    if spec is None:
        raise InvalidApplication("spec", "is required")

    raw_sources = f.seq(spec, "sources", "spec")
    if raw_sources:
        sources = tuple(_source(s, f"spec.sources[{i}]", multi=True) for i, s in enumerate(raw_sources))
        refs = [s.ref for s in sources if s.ref]
        if len(refs) != len(set(refs)):
            raise InvalidApplication("spec.sources", "each 'ref' must be unique among the sources")
        multi = True
    else:
        single = f.optional_mapping(spec, "source", "spec")
        if single is None:
            raise InvalidApplication("spec.source", "is required (or spec.sources)")
        sources = (_source(single, "spec.source", multi=False),)
        multi = False

    policy = f.optional_mapping(spec, "syncPolicy", "spec")
    return Application(
        name=name,
        namespace=f.string(meta, "namespace", "metadata"),
        project=f.string(spec, "project", "spec") or "default",
        sources=sources,
        destination=_destination(f.mapping(spec, "destination", "spec")),
        multi_source=multi,
        sync_policy=_sync_policy(policy) if policy is not None else None,
        ignore_differences=tuple(
            _ignore(item, f"spec.ignoreDifferences[{i}]")
            for i, item in enumerate(f.seq(spec, "ignoreDifferences", "spec"))
        ),
        revision_history_limit=f.integer(
            spec, "revisionHistoryLimit", "spec", default=DEFAULT_HISTORY_LIMIT, minimum=0
        ),
        finalizers=f.string_list(meta, "finalizers", "metadata"),
        labels=f.string_map(meta, "labels", "metadata"),
        annotations=f.string_map(meta, "annotations", "metadata"),
        spec_extra=_extra(spec, _SPEC_KEYS),
    )


def _source(raw: Any, path: str, *, multi: bool) -> ApplicationSource:
    if not isinstance(raw, dict):
        raise InvalidApplication(path, "must be a mapping")
    repo_url = f.string(raw, "repoURL", path, required=True)
    chart = f.string(raw, "chart", path)
    ref = f.string(raw, "ref", path)
    src_path = f.string(raw, "path", path)
    revision = f.string(raw, "targetRevision", path)
    if chart:
        if repo_url.startswith("-") or any(c.isspace() or ord(c) < 32 for c in repo_url):
            raise InvalidApplication(f"{path}.repoURL", "is not an acceptable Helm repository URL")
        if not revision:
            raise InvalidApplication(f"{path}.targetRevision", "is required for a Helm chart source")
    else:
        try:
            giturl.classify(repo_url)
        except giturl.UnsafeRepoURL as exc:
            raise InvalidApplication(f"{path}.repoURL", str(exc)) from None
    if ref and not Application.valid_ref_name(ref):
        raise InvalidApplication(f"{path}.ref", "may contain only letters, digits, '_' and '-'")
    if not (src_path or chart or (multi and ref)):
        need = "'path', 'chart' or 'ref'" if multi else "'path' or 'chart'"
        raise InvalidApplication(path, f"one of {need} is required")
    directory = f.optional_mapping(raw, "directory", path)
    helm = f.optional_mapping(raw, "helm", path)
    kustomize = f.optional_mapping(raw, "kustomize", path)
    plugin = f.optional_mapping(raw, "plugin", path)
    if sum(block is not None for block in (directory, helm, kustomize, plugin)) > 1:
        raise InvalidApplication(path, "multiple application sources defined (directory, helm, kustomize, plugin)")
    return ApplicationSource(
        repo_url=repo_url,
        path=src_path,
        target_revision=revision,
        chart=chart,
        ref=ref,
        name=f.string(raw, "name", path),
        directory=_directory(directory, f"{path}.directory") if directory is not None else None,
        helm=_helm(helm, f"{path}.helm") if helm is not None else None,
        kustomize=_kustomize(kustomize, f"{path}.kustomize") if kustomize is not None else None,
        plugin=copy.deepcopy(plugin),
        extra=_extra(raw, _SOURCE_KEYS),
    )


def _directory(raw: dict[str, Any], path: str) -> DirectorySource:
    return DirectorySource(
        recurse=f.boolean(raw, "recurse", path),
        include=f.string(raw, "include", path),
        exclude=f.string(raw, "exclude", path),
        extra=_extra(raw, _DIR_KEYS),
    )


def _helm(raw: dict[str, Any], path: str) -> HelmSource:
    params = []
    for i, item in enumerate(f.seq(raw, "parameters", path)):
        where = f"{path}.parameters[{i}]"
        if not isinstance(item, dict):
            raise InvalidApplication(where, "must be a mapping with 'name' and 'value'")
        params.append(
            HelmParameter(
                name=f.string(item, "name", where, required=True),
                value=f.string(item, "value", where),
                force_string=f.boolean(item, "forceString", where),
            )
        )
    values_object = f.optional_mapping(raw, "valuesObject", path)
    return HelmSource(
        value_files=f.string_list(raw, "valueFiles", path),
        values=f.string(raw, "values", path),
        values_object=copy.deepcopy(values_object),
        parameters=tuple(params),
        release_name=f.string(raw, "releaseName", path),
        namespace=f.string(raw, "namespace", path),
        ignore_missing_value_files=f.boolean(raw, "ignoreMissingValueFiles", path),
        skip_crds=f.boolean(raw, "skipCrds", path),
        extra=_extra(raw, _HELM_KEYS),
    )


def _kustomize(raw: dict[str, Any], path: str) -> KustomizeSource:
    return KustomizeSource(
        name_prefix=f.string(raw, "namePrefix", path),
        name_suffix=f.string(raw, "nameSuffix", path),
        common_labels=f.string_map(raw, "commonLabels", path),
        common_annotations=f.string_map(raw, "commonAnnotations", path),
        images=f.string_list(raw, "images", path),
        namespace=f.string(raw, "namespace", path),
        force_common_labels=f.boolean(raw, "forceCommonLabels", path),
        force_common_annotations=f.boolean(raw, "forceCommonAnnotations", path),
        extra=_extra(raw, _KUST_KEYS),
    )


def _destination(raw: dict[str, Any]) -> Destination:
    path = "spec.destination"
    server = f.string(raw, "server", path).rstrip("/")
    name = f.string(raw, "name", path)
    if server and name:
        raise InvalidApplication(path, "can't have both name and server defined")
    if not server and not name:
        raise InvalidApplication(path, "one of 'server' or 'name' is required")
    return Destination(server=server, name=name, namespace=f.string(raw, "namespace", path))


def _sync_policy(raw: dict[str, Any]) -> SyncPolicy:
    path = "spec.syncPolicy"
    auto_raw = raw.get("automated")
    automated = None
    if "automated" in raw:
        auto = f.mapping(raw, "automated", path) if auto_raw is not None else {}
        where = f"{path}.automated"
        automated = Automated(
            prune=f.boolean(auto, "prune", where),
            self_heal=f.boolean(auto, "selfHeal", where),
            allow_empty=f.boolean(auto, "allowEmpty", where),
            enabled=f.boolean(auto, "enabled", where, default=True),
        )
    options = f.string_list(raw, "syncOptions", path)
    for i, option in enumerate(options):
        if "=" not in option:
            raise InvalidApplication(f"{path}.syncOptions[{i}]", "must have the form Key=value")
    retry_raw = f.optional_mapping(raw, "retry", path)
    return SyncPolicy(
        automated=automated,
        sync_options=options,
        retry=_retry(retry_raw) if retry_raw is not None else None,
        managed_namespace_metadata=namespace_meta.checked(f.optional_mapping(raw, "managedNamespaceMetadata", path),
                                                          f"{path}.managedNamespaceMetadata"),
    )


def _retry(raw: dict[str, Any]) -> Retry:
    path = "spec.syncPolicy.retry"
    backoff_raw = f.optional_mapping(raw, "backoff", path)
    backoff = None
    if backoff_raw is not None:
        where = f"{path}.backoff"
        texts = {}
        for key, default in (("duration", "5s"), ("maxDuration", "3m")):
            value = backoff_raw.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)  # a bare integer means seconds (Argo CD)
            text = f.string({key: value}, key, where) or default
            try:
                f.duration_seconds(text)
            except ValueError as exc:
                raise InvalidApplication(f"{where}.{key}", str(exc)) from None
            texts[key] = text
        backoff = Backoff(
            duration=texts["duration"],
            factor=f.integer(backoff_raw, "factor", where, default=2, minimum=1),
            max_duration=texts["maxDuration"],
        )
    return Retry(
        limit=f.integer(raw, "limit", path, default=0, minimum=-1),
        backoff=backoff,
        refresh=f.boolean(raw, "refresh", path),
    )


def _ignore(raw: Any, path: str) -> IgnoreDifference:
    if not isinstance(raw, dict):
        raise InvalidApplication(path, "must be a mapping")
    return IgnoreDifference(
        kind=f.string(raw, "kind", path, required=True),
        group=f.string(raw, "group", path),
        name=f.string(raw, "name", path),
        namespace=f.string(raw, "namespace", path),
        json_pointers=f.string_list(raw, "jsonPointers", path),
        jq_path_expressions=f.string_list(raw, "jqPathExpressions", path),
        managed_fields_managers=f.string_list(raw, "managedFieldsManagers", path),
    )


# ---------------------------------------------------------------------------------------------- to_dict


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Argo CD's ``omitempty``: skip empty strings, False, empty collections and None."""
    if value in ("", False, None) or (isinstance(value, list | tuple | dict) and not value):
        return
    out[key] = list(value) if isinstance(value, tuple) else copy.deepcopy(value)


def source_to_dict(src: ApplicationSource) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (("repoURL", src.repo_url), ("path", src.path), ("targetRevision", src.target_revision),
                       ("chart", src.chart), ("ref", src.ref), ("name", src.name)):
        _put(out, key, value)
    if src.directory is not None:
        d: dict[str, Any] = {}
        _put(d, "recurse", src.directory.recurse)
        _put(d, "include", src.directory.include)
        _put(d, "exclude", src.directory.exclude)
        out["directory"] = {**d, **copy.deepcopy(src.directory.extra)}
    if src.helm is not None:
        h: dict[str, Any] = {}
        _put(h, "valueFiles", src.helm.value_files)
        _put(h, "values", src.helm.values)
        if src.helm.values_object is not None:
            h["valuesObject"] = copy.deepcopy(src.helm.values_object)
        params = []
        for p in src.helm.parameters:
            item: dict[str, Any] = {"name": p.name, "value": p.value}
            _put(item, "forceString", p.force_string)
            params.append(item)
        _put(h, "parameters", params)
        _put(h, "releaseName", src.helm.release_name)
        _put(h, "namespace", src.helm.namespace)
        _put(h, "ignoreMissingValueFiles", src.helm.ignore_missing_value_files)
        _put(h, "skipCrds", src.helm.skip_crds)
        out["helm"] = {**h, **copy.deepcopy(src.helm.extra)}
    if src.kustomize is not None:
        k: dict[str, Any] = {}
        kz = src.kustomize
        kz_fields: tuple[tuple[str, Any], ...] = (("namePrefix", kz.name_prefix), ("nameSuffix", kz.name_suffix),
                           ("commonLabels", kz.common_labels), ("commonAnnotations", kz.common_annotations),
                           ("images", kz.images), ("namespace", kz.namespace),
                           ("forceCommonLabels", kz.force_common_labels),
                           ("forceCommonAnnotations", kz.force_common_annotations))
        for key, value in kz_fields:
            _put(k, key, value)
        out["kustomize"] = {**k, **copy.deepcopy(kz.extra)}
    if src.plugin is not None:
        out["plugin"] = copy.deepcopy(src.plugin)
    out.update(copy.deepcopy(src.extra))
    return out


def _policy_dict(policy: SyncPolicy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if policy.automated is not None:
        a: dict[str, Any] = {}
        _put(a, "prune", policy.automated.prune)
        _put(a, "selfHeal", policy.automated.self_heal)
        _put(a, "allowEmpty", policy.automated.allow_empty)
        if not policy.automated.enabled:
            a["enabled"] = False
        out["automated"] = a
    _put(out, "syncOptions", policy.sync_options)
    if policy.retry is not None:
        r: dict[str, Any] = {}
        _put(r, "limit", policy.retry.limit)
        if policy.retry.backoff is not None:
            b = policy.retry.backoff
            r["backoff"] = {"duration": b.duration, "factor": b.factor, "maxDuration": b.max_duration}
        _put(r, "refresh", policy.retry.refresh)
        out["retry"] = r
    if policy.managed_namespace_metadata is not None:
        out["managedNamespaceMetadata"] = copy.deepcopy(policy.managed_namespace_metadata)
    return out


def application_to_dict(app: Application) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": app.name}
    _put(meta, "namespace", app.namespace)
    _put(meta, "labels", app.labels)
    _put(meta, "annotations", app.annotations)
    _put(meta, "finalizers", app.finalizers)
    spec: dict[str, Any] = {"project": app.project}
    if app.multi_source:
        spec["sources"] = [source_to_dict(s) for s in app.sources]
    else:
        spec["source"] = source_to_dict(app.sources[0])
    dest: dict[str, Any] = {}
    _put(dest, "server", app.destination.server)
    _put(dest, "name", app.destination.name)
    _put(dest, "namespace", app.destination.namespace)
    spec["destination"] = dest
    if app.sync_policy is not None:
        spec["syncPolicy"] = _policy_dict(app.sync_policy)
    ignores = []
    for ig in app.ignore_differences:
        item: dict[str, Any] = {}
        for key, value in (("group", ig.group), ("kind", ig.kind), ("name", ig.name),
                           ("namespace", ig.namespace), ("jsonPointers", ig.json_pointers),
                           ("jqPathExpressions", ig.jq_path_expressions),
                           ("managedFieldsManagers", ig.managed_fields_managers)):
            _put(item, key, value)
        ignores.append(item)
    _put(spec, "ignoreDifferences", ignores)
    if app.revision_history_limit != DEFAULT_HISTORY_LIMIT:
        spec["revisionHistoryLimit"] = app.revision_history_limit
    spec.update(copy.deepcopy(app.spec_extra))
    return {"apiVersion": API_VERSION, "kind": "Application", "metadata": meta, "spec": spec}
