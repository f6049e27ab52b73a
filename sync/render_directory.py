"""Directory sources: the manifests in an app path, selected the way Argo CD selects them (§1.3, §8.4).

Who calls this: :func:`sync.render.render_source` for Directory apps. Files directly in the app path (or the
whole subtree with ``recurse``) whose names end in ``.yaml``, ``.yml`` or ``.json`` are candidates;
``include``/``exclude`` globs are matched against the path relative to the app path with Argo CD's dialect
(``*`` also matches ``/``, ``{a,b}`` alternation, ``?``, ``[...]``), exclude first. Files carrying the marker
``+argocd:skip-file-rendering`` are skipped. A file that fails to parse or validate is an error only when it
looks like a manifest (it mentions ``apiVersion``, ``kind`` and ``metadata``); other YAML (values files,
CI config) is skipped, in sorted order, so the result is deterministic.

Symlinked files must resolve inside the repository (the whole checkout was already checked for
out-of-bounds links); dangling links and links to non-regular files are skipped; directories reached
through a symlink are not walked.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path

from config import yamlsafe
from sync import manifests
from sync.application import DirectorySource
from sync.models import Manifest
from sync.paths import PathError

__all__ = ["glob_match", "render_directory"]

log = logging.getLogger(__name__)

SKIP_MARKER = b"+argocd:skip-file-rendering"


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    depth = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            while i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    out.extend(")" * depth)
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def glob_match(pattern: str, path: str) -> bool:
    """Argo CD's directory include/exclude match (gobwas/glob without separators)."""
    try:
        return _compile(pattern).match(path) is not None
    except re.error:
        return False


def _candidates(app_dir: Path, recurse: bool) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(app_dir):
        dirnames[:] = sorted(d for d in dirnames if d != ".git") if recurse else []
        found.extend(Path(dirpath) / name for name in filenames if name.endswith(manifests.MANIFEST_SUFFIXES))
    return sorted(found, key=lambda p: p.relative_to(app_dir).as_posix())


def render_directory(
    app_dir: Path,
    *,
    root: Path,
    directory: DirectorySource | None,
    limits: yamlsafe.Limits = yamlsafe.DEFAULT_LIMITS,
) -> list[Manifest]:
    """Manifests of a Directory source; ``source`` of each is the file's path relative to ``root``."""
    options = directory or DirectorySource()
    real_root = Path(os.path.realpath(root))
    budget = [limits.max_bytes]
    out: list[Manifest] = []
    for path in _candidates(app_dir, options.recurse):
        rel_app = path.relative_to(app_dir).as_posix()
        if options.exclude and glob_match(options.exclude, rel_app):
            continue
        if options.include and not glob_match(options.include, rel_app):
            continue
        source = path.relative_to(root).as_posix() if path.is_relative_to(root) else rel_app
        if path.is_symlink():
            try:
                real = Path(os.path.realpath(path, strict=True))
            except (OSError, RuntimeError):
                log.warning("skipping %s: dangling or circular symlink", source)
                continue
            if not real.is_relative_to(real_root):
                raise PathError(f"illegal filepath in symlink: {source}")
            if not real.is_file():
                continue
        data = manifests.read_capped(path, source=source, budget=budget, limits=limits)
        if SKIP_MARKER in data:
            continue
        try:
            found = manifests.parse_text(data, source=source, json_file=path.suffix == ".json", limits=limits)
        except manifests.ManifestError:
            if manifests.looks_like_manifest(data):
                raise
            log.debug("skipping %s: not a Kubernetes manifest", source)
            continue
        out.extend(found)
        if len(out) > limits.max_documents:
            raise manifests.ManifestError(source, f"more than {limits.max_documents} objects in the app")
    return out
