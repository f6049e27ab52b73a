"""Helm sources: ``helm template`` semantics through Helm's own engine (``helm-python-sdk``, no binary; §1.4).

Who calls this: :func:`sync.render.render_source` for Helm apps. The package is the optional extra
``[helm]``; without it the error says how to install it. It is imported lazily, so the rest of syncwarden
works without it.

Values, lowest to highest precedence: the chart's ``values.yaml`` < ``valueFiles`` in order (resolved with
:func:`sync.paths.resolve_value_files`: inside the checkout only, globs expanded, no URLs) < ``values`` /
``valuesObject`` (the object wins when both are set) < ``parameters`` (``--set``, or ``--set-string`` with
``forceString``). The release name is ``helm.releaseName`` or the app name; the namespace is
``helm.namespace`` or the destination namespace. CRDs from ``crds/`` come first unless ``skipCrds``.
Output files other than manifests (``NOTES.txt``) are dropped. Chart dependencies must be vendored under
``charts/``; a declared one that is missing is an error (never downloaded, never silently dropped). Value
files are parsed with ``config.yamlsafe`` (duplicate keys are errors, deliberate difference 7).
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from config import yamlsafe
from sync import manifests, paths
from sync.application import HelmSource
from sync.models import Manifest
from sync.render_kustomize import RenderToolError

__all__ = ["HELM_MISSING", "deep_merge", "helm_version", "load_helm", "render_helm"]

HELM_MISSING = "Helm apps need the optional extra: pip install 'syncwarden[helm]'"


def load_helm() -> ModuleType:
    """The ``helm_python`` module, or :class:`RenderToolError` telling how to install it."""
    try:
        return importlib.import_module("helm_python")
    except ImportError:
        raise RenderToolError(HELM_MISSING) from None
    except OSError as exc:  # the native library failed to load
        raise RenderToolError(f"the Helm engine could not be loaded ({type(exc).__name__}); {HELM_MISSING}") \
            from None


def helm_version() -> str:
    helm = load_helm()
    return f"helm-python-sdk {helm.__version__} helm {helm.helm_sdk_version()}"


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of values files: mappings merge recursively, anything else is replaced."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _values_file(path: Path, *, roots: list[Path], limits: yamlsafe.Limits) -> dict[str, Any]:
    base = next((r for r in roots if path.is_relative_to(r)), path.parent)
    rel = path.relative_to(base).as_posix()
    docs = yamlsafe.load_all(path.read_bytes(), source=rel, limits=limits)
    if not docs:
        return {}
    data = docs[0].data
    if not isinstance(data, dict):
        raise manifests.ManifestError(rel, "a Helm values file must be a mapping", index=docs[0].index)
    return data


def _escape_set(value: str) -> str:
    # Helm's --set splits on ',' and treats '\' as an escape; a value is taken literally, as Argo CD does
    return value.replace("\\", "\\\\").replace(",", "\\,")


def collect_values(
    options: HelmSource, *, root: Path, app_dir: Path, limits: yamlsafe.Limits, helm: ModuleType,
    refs: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    roots = [Path(root).resolve(), *(Path(r).resolve() for r in (refs or {}).values())]
    for path in paths.resolve_value_files(options.value_files, root=root, app_dir=app_dir,
                                          ignore_missing=options.ignore_missing_value_files, refs=refs):
        values = deep_merge(values, _values_file(path, roots=roots, limits=limits))
    if options.values_object is not None:
        values = deep_merge(values, options.values_object)
    elif options.values:
        inline = yamlsafe.load_all(options.values, source="spec.source.helm.values", limits=limits)
        if inline:
            if not isinstance(inline[0].data, dict):
                raise manifests.ManifestError("spec.source.helm.values", "must be a YAML mapping")
            values = deep_merge(values, inline[0].data)
    for param in options.parameters:
        expression = f"{param.name}={_escape_set(param.value)}"
        try:
            parsed = (helm.parse_set_string_values if param.force_string else helm.parse_set_string)(expression)
        except helm.HelmError as exc:
            raise RenderToolError(f"helm parameter {param.name!r} is invalid: {exc}") from None
        values = deep_merge(values, parsed)
    return values


def _check_dependencies(chart: Any) -> None:
    """Every dependency Chart.yaml declares must be vendored under ``charts/`` (``helm template``'s "found in
    Chart.yaml, but missing in charts/ directory"). The SDK would render without it — silently dropping the
    subchart's objects, which a pruning sync would then delete. Nothing is ever downloaded (REPO-10)."""
    metadata = chart.metadata if isinstance(chart.metadata, Mapping) else {}
    declared = metadata.get("dependencies") or []
    loaded = {d.get("name") for d in (chart.dependencies or []) if isinstance(d, Mapping)}
    missing = sorted(str(d.get("name")) for d in declared if isinstance(d, Mapping) and d.get("name") not in loaded)
    if missing:
        raise RenderToolError(
            f"helm chart dependencies {missing} are declared in Chart.yaml but missing in the charts/ directory; "
            "chart dependencies are never downloaded: vendor them (helm dependency build) and commit charts/")


def render_helm(
    app_dir: Path,
    *,
    root: Path,
    options: HelmSource | None,
    release_name: str,
    namespace: str,
    limits: yamlsafe.Limits = yamlsafe.DEFAULT_LIMITS,
    refs: Mapping[str, Path] | None = None,
) -> list[Manifest]:
    """Render the chart in ``app_dir``; each manifest's source is the chart's template path.
    ``refs`` maps the ``ref`` names of a multi-source app's other sources to their checkouts."""
    helm = load_helm()
    options = options or HelmSource()
    release = options.release_name or release_name
    ns = options.namespace or namespace or "default"
    values = collect_values(options, root=root, app_dir=app_dir, limits=limits, helm=helm, refs=refs)
    real_root = str(Path(root).resolve())

    def clean(exc: Exception) -> str:
        return str(exc).replace(real_root, ".").replace(str(root), ".")

    try:
        helm.validate_release_name(release)
    except helm.HelmError as exc:
        raise RenderToolError(f"helm release name {release!r} is invalid: {clean(exc)}") from None
    rendered: list[tuple[str, str]] = []
    try:
        with helm.Chart.load(str(app_dir)) as chart:
            _check_dependencies(chart)
            if not options.skip_crds:
                rendered.extend((crd["filename"], crd["data"]) for crd in chart.crds)
            output = chart.render(values, name=release, namespace=ns, is_install=True)
            rendered.extend(sorted(output.items()))
    except helm.HelmError as exc:
        raise RenderToolError(f"helm template failed: {clean(exc)}") from None
    total = 0
    out: list[Manifest] = []
    for name, text in rendered:
        if name.endswith("NOTES.txt") or not text.strip():
            continue
        total += len(text)
        if total > limits.max_bytes:
            raise RenderToolError(f"helm output exceeds {limits.max_bytes} bytes")
        out.extend(manifests.parse_text(text, source=name, limits=limits))
    return out
