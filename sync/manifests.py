"""YAML/JSON text into validated :class:`~sync.models.Manifest` objects.

Who calls this: ``syncwarden check --manifests PATH...`` (through :func:`load_manifest_paths`), the
directory renderer (:mod:`sync.render_directory`) for files in a checkout, and the Kustomize and Helm
renderers for the tools' output (:func:`parse_text`). Parsing goes through ``config.yamlsafe`` only (C loader,
no Python tags, duplicate keys rejected, alias/depth/size limits, strings stay strings).

Every document must be a mapping with a string ``apiVersion`` and ``kind``, a ``metadata.name`` (or
``generateName``), a string ``metadata.namespace`` when present, and string-valued labels and annotations;
``*List`` kinds are flattened (each item keeps the list's file and document index); empty and ``null``
documents are skipped. Errors name the file, the document index and the field, and never quote the file.

Error tree::

    ManifestError (ValueError)      file, document index and field of the first problem
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from config import yamlsafe
from sync.models import Manifest

__all__ = [
    "MANIFEST_SUFFIXES",
    "ManifestError",
    "load_manifest_paths",
    "looks_like_manifest",
    "parse_text",
    "validate_object",
]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    """A manifest input that cannot be accepted; the message is ``file[index]: field: problem``."""

    def __init__(self, source: str, message: str, *, index: int | None = None, field: str = "") -> None:
        self.source = source
        self.index = index
        self.field = field
        self.detail = message
        where = source if index is None else f"{source}[{index}]"
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def validate_object(obj: Any, *, source: str, index: int, prefix: str = "") -> None:
    """Raise :class:`ManifestError` unless ``obj`` is an acceptable Kubernetes object."""

    def bad(field: str, message: str) -> ManifestError:
        return ManifestError(source, message, index=index, field=f"{prefix}{field}")

    if not isinstance(obj, dict):
        raise ManifestError(source, f"a manifest must be a mapping, not {_kind_of(obj)}", index=index,
                            field=prefix.rstrip("."))
    for key in ("apiVersion", "kind"):
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            shown = "missing" if value is None else f"must be a non-empty string, not {_kind_of(value)}"
            raise bad(key, shown if value is not None else "is required")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise bad("metadata", "is required" if meta is None else f"must be a mapping, not {_kind_of(meta)}")
    name, generate = meta.get("name"), meta.get("generateName")
    if name is not None and not isinstance(name, str):
        raise bad("metadata.name", f"must be a string, not {_kind_of(name)}")
    if generate is not None and not isinstance(generate, str):
        raise bad("metadata.generateName", f"must be a string, not {_kind_of(generate)}")
    if not name and not generate:
        raise bad("metadata.name", "is required (or metadata.generateName)")
    namespace = meta.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise bad("metadata.namespace", f"must be a string, not {_kind_of(namespace)}")
    for group in ("labels", "annotations"):
        values = meta.get(group)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise bad(f"metadata.{group}", f"must be a mapping, not {_kind_of(values)}")
        for k, v in values.items():
            if not isinstance(k, str):
                raise bad(f"metadata.{group}", f"keys must be strings, found {_kind_of(k)}")
            if not isinstance(v, str):
                raise bad(f"metadata.{group}.{k}", f"must be a string, not {_kind_of(v)}")


def _is_list(obj: Any) -> bool:
    """``kind: List`` or any ``*List`` kind with an ``items`` field (Argo CD flattens them)."""
    return isinstance(obj, dict) and isinstance(obj.get("kind"), str) and obj["kind"].endswith("List") \
        and "items" in obj


def manifests_from_documents(docs: Iterable[yamlsafe.Document]) -> list[Manifest]:
    """Validate parsed documents and flatten ``*List`` kinds."""
    out: list[Manifest] = []
    for doc in docs:
        data = doc.data
        if _is_list(data):
            items = data.get("items")
            if items is None:  # a list whose items are null is dropped (Argo CD)
                continue
            if not isinstance(items, list):
                raise ManifestError(doc.source, f"must be a list, not {_kind_of(items)}", index=doc.index,
                                    field="items")
            for i, item in enumerate(items):
                validate_object(item, source=doc.source, index=doc.index, prefix=f"items[{i}].")
                out.append(Manifest(obj=item, source=doc.source, index=doc.index))
            continue
        validate_object(data, source=doc.source, index=doc.index)
        out.append(Manifest(obj=data, source=doc.source, index=doc.index))
    return out


def parse_text(data: bytes | str, *, source: str, json_file: bool = False,
               limits: yamlsafe.Limits = yamlsafe.DEFAULT_LIMITS) -> list[Manifest]:
    """Parse and validate one input (a file's bytes or a tool's output)."""
    try:
        if json_file:
            docs = [yamlsafe.Document(source=source, index=0,
                                      data=yamlsafe.loads_json(data, source=source, limits=limits))]
            docs = [d for d in docs if d.data is not None]
        else:
            docs = yamlsafe.load_all(data, source=source, limits=limits)
    except yamlsafe.YamlError as exc:
        raise ManifestError(source, exc.detail, index=exc.document) from None
    return manifests_from_documents(docs)


def looks_like_manifest(data: bytes) -> bool:
    """Argo CD's heuristic for files that fail to parse: only those that look like manifests are errors."""
    return all(marker in data for marker in (b"apiVersion", b"kind", b"metadata"))


def read_capped(path: Path, *, source: str, budget: list[int], limits: yamlsafe.Limits) -> bytes:
    """Read a file after checking its size against the per-file and the remaining per-input budget."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ManifestError(source, f"cannot read file ({exc.strerror})") from None
    if size > limits.max_bytes:
        raise ManifestError(source, f"file is {size} bytes, more than the limit of {limits.max_bytes}")
    if size > budget[0]:
        raise ManifestError(source, f"manifests exceed the limit of {limits.max_bytes} bytes in total")
    budget[0] -= size
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ManifestError(source, f"cannot read file ({exc.strerror})") from None


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):  # symlinked directories are not followed
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames):
            if name.endswith(MANIFEST_SUFFIXES):
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def load_manifest_paths(paths: Sequence[Path], *,
                        limits: yamlsafe.Limits = yamlsafe.DEFAULT_LIMITS) -> list[Manifest]:
    """Load every manifest under ``paths`` (files, or directories walked recursively in sorted order).

    ``Manifest.source`` is each file's path as the user would write it: the given path for a file, the
    given directory joined with the file's path below it otherwise. Every document must be valid (this is
    the strict, user-facing loader; non-manifest YAML in a directory is an error here).
    The bytes of all files together are capped by ``limits.max_bytes``, and so is the object count by
    ``limits.max_documents``.
    """
    budget = [limits.max_bytes]
    out: list[Manifest] = []
    for given in paths:
        if given.is_dir():
            files = [(p, (given / p.relative_to(given)).as_posix()) for p in _walk(given)]
        elif given.is_file():
            files = [(given, given.as_posix())]
        else:
            raise ManifestError(given.as_posix(), "no such file or directory")
        for path, source in files:
            data = read_capped(path, source=source, budget=budget, limits=limits)
            out.extend(parse_text(data, source=source, json_file=path.suffix == ".json", limits=limits))
            if len(out) > limits.max_documents:
                raise ManifestError(source, f"more than {limits.max_documents} objects in total")
    return out
