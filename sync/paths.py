"""Path safety inside a checkout: app paths, value files and symlinks (``argocd-sync-semantics.md`` §8).

Who calls this: :mod:`sync.render` before any file of a checkout is read (:func:`check_symlinks`,
:func:`resolve_app_path`), and the Helm renderer for ``valueFiles`` (:func:`resolve_value_files`).

Containment is decided on *resolved real paths*, component by component (``Path.is_relative_to`` on
``realpath`` results), never by string prefix, so ``/repo2`` is not inside ``/repo``. A checkout holding an
absolute symlink, or a relative one whose components walk out of the repository at any point (even if they
come back), is refused as a whole. Messages quote what the user wrote and repository-relative paths only:
never an absolute server path and never file contents.

Error tree::

    PathError (ValueError)
    └── SymlinkError          an out-of-bounds symlink somewhere in the checkout
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["PathError", "SymlinkError", "check_symlinks", "resolve_app_path", "resolve_value_files"]


class PathError(ValueError):
    """A path that must not be used. The message never contains an absolute server path."""


class SymlinkError(PathError):
    pass


_GLOB_CHARS = re.compile(r"[*?\[]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _check_text(value: str, what: str) -> None:
    if "\x00" in value:
        raise PathError(f"{what} {value!r} contains a NUL byte")
    if any(ord(c) < 32 for c in value):
        raise PathError(f"{what} {value!r} contains control characters")
    decoded = unquote(value)
    if decoded != value and any(tok in decoded for tok in ("..", "/", "\\", "\x00")):
        raise PathError(f"{what} {value!r} contains URL-encoded path characters")


def _inside(path: Path, root: Path) -> bool:
    """Component-wise containment of two already-resolved paths."""
    return path == root or path.is_relative_to(root)


def resolve_app_path(root: Path, app_path: str) -> Path:
    """The real directory of ``app_path`` inside the checkout ``root``; :class:`PathError` otherwise."""
    _check_text(app_path, "app path")
    if app_path.startswith("/") or Path(app_path).is_absolute():
        raise PathError(f"app path {app_path!r} is absolute")
    real_root = Path(os.path.realpath(root))
    target = Path(os.path.realpath(real_root / app_path))
    if not _inside(target, real_root):
        raise PathError(f"app path {app_path!r} is outside the repository")
    if not target.exists():
        raise PathError(f"app path {app_path!r} does not exist")
    if not target.is_dir():
        raise PathError(f"app path {app_path!r} is not a directory")
    return target


def _escapes(link_dir_parts: int, target: str) -> bool:
    """Walk ``target``'s components from a directory ``link_dir_parts`` levels below the root."""
    depth = link_dir_parts
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        else:
            depth += 1
    return False


def check_symlinks(root: Path) -> None:
    """Refuse a checkout with an absolute symlink or a relative one that ever leaves ``root``.

    The whole tree is walked (``.git`` skipped) without following links; each link is judged by its
    target text, like Argo CD's ``CheckOutOfBoundsSymlinks``.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == str(root):
            dirnames[:] = [d for d in dirnames if d != ".git"]
        rel_dir = Path(dirpath).relative_to(root)
        depth = 0 if rel_dir == Path(".") else len(rel_dir.parts)
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            if not full.is_symlink():
                continue
            target = os.readlink(full)
            rel = (rel_dir / name).as_posix()
            if os.path.isabs(target) or _escapes(depth, target):
                raise SymlinkError(f"repository contains out-of-bounds symlink: {rel}")


def _scheme_of(value: str) -> str:
    if _SCHEME.match(value):
        return value.split(":", 1)[0]
    try:
        return urlsplit(value).scheme
    except ValueError:
        return "unparseable"


def _resolve_one(value: str, *, real_root: Path, app_dir: Path, shown: str) -> Path:
    base = real_root / value.lstrip("/") if value.startswith("/") else app_dir / value
    resolved = Path(os.path.realpath(base))
    if not _inside(resolved, real_root) or resolved == real_root:
        raise PathError(f"value file {shown!r} resolved to outside the repository")
    return resolved


def _split_ref(value: str, refs: Mapping[str, Path]) -> tuple[str, Path | None]:
    """``$values/env/prd.yaml`` → (``/env/prd.yaml``, root of the source with ``ref: values``)."""
    if not value.startswith("$"):
        return value, None
    name, _, rest = value[1:].partition("/")
    if name not in refs:
        raise PathError(f"value file {value!r} refers to ${name}, which is not the 'ref' of another source")
    return "/" + rest, Path(os.path.realpath(refs[name]))


def resolve_value_files(
    values: tuple[str, ...] | list[str],
    *,
    root: Path,
    app_dir: Path,
    ignore_missing: bool = False,
    refs: Mapping[str, Path] | None = None,
) -> list[Path]:
    """Helm ``valueFiles`` as real paths inside the checkout, in Argo CD's order.

    Relative entries are relative to the app directory; a leading ``/`` means the repository root (never
    the filesystem root). Globs are expanded in lexical order, an explicit file keeps its explicit
    position, and duplicates keep their first occurrence. URLs are refused (``file://`` always; remote
    value files are not fetched by syncwarden). A missing file is an error unless ``ignore_missing``.
    ``$<ref>/path`` entries are rooted at the checkout of the source with that ``ref`` (``refs``), with the
    same containment rules.
    """
    own_root = Path(os.path.realpath(root))
    own_app = Path(os.path.realpath(app_dir))
    explicit: set[Path] = set()
    plan: list[tuple[str, list[Path]]] = []
    for value in values:
        _check_text(value, "value file")
        scheme = _scheme_of(value)
        if scheme:
            raise PathError(f"value file {value!r}: the URL scheme {scheme!r} is not allowed")
        path_part, ref_root = _split_ref(value, refs or {})
        real_root = ref_root or own_root
        real_app = ref_root or own_app
        if _GLOB_CHARS.search(path_part):
            base, pattern = (real_root, path_part.lstrip("/")) if path_part.startswith("/") else (real_app, path_part)
            parts = pattern.split("/")
            fixed = next(i for i, part in enumerate(parts) if _GLOB_CHARS.search(part))
            static = Path(os.path.realpath(base.joinpath(*parts[:fixed])))
            if not _inside(static, real_root):  # refuse before globbing: no probing of what exists outside
                raise PathError(f"value file glob {value!r} resolved to outside the repository")
            matches = sorted(glob.glob(pattern, root_dir=base))
            if not matches and not ignore_missing:
                raise PathError(f"value file glob {value!r} matched no files")
            resolved = []
            for match in matches:
                real = Path(os.path.realpath(base / match))
                if not _inside(real, real_root) or real == real_root:
                    raise PathError(f"glob match {match!r} of {value!r} resolved to outside the repository")
                resolved.append(real)
            plan.append(("glob", resolved))
        else:
            real = _resolve_one(path_part, real_root=real_root, app_dir=real_app, shown=value)
            if not real.is_file():
                if ignore_missing:
                    continue
                raise PathError(f"value file {value!r} does not exist")
            explicit.add(real)
            plan.append(("file", [real]))
    out: list[Path] = []
    for kind, paths in plan:
        for path in paths:
            if kind == "glob" and path in explicit:
                continue
            if path not in out:
                out.append(path)
    return out
