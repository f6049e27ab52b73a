"""Kustomize sources: ``kustomize build`` (or ``kubectl kustomize``) with the Application's overrides (§1.5).

Who calls this: :func:`sync.render.render_source` for Kustomize apps. Argo CD edits the kustomization in the
checkout; syncwarden never writes into a checkout (trees are read-only and shared), so the overrides
(``namePrefix``, ``nameSuffix``, ``commonLabels``, ``commonAnnotations``, ``images``, ``namespace``) go into
an overlay kustomization in a private temp dir whose only resource is the app path. One visible
difference: an override ``namePrefix``/``nameSuffix`` is added to a prefix the app's own kustomization
already sets, where Argo CD's ``edit set nameprefix`` replaces it.

The tool runs with a clean environment (empty ``HOME``, no git protocols), Kustomize's default load
restrictor (root only), a timeout that kills it, and messages with the checkout and temp paths replaced.
:func:`kustomize_dependencies` lists the local directories a kustomization reads (bases, components) so the
render cache can tell whether a new commit touched them, and refuses remote bases (REPO-10).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import posixpath
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from config import yamlsafe
from sync import manifests
from sync.application import KustomizeSource
from sync.models import Manifest

__all__ = ["KUSTOMIZATION_FILES", "RenderToolError", "kustomize_dependencies", "kustomize_version",
           "render_kustomize"]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|github\.com/|gitlab\.com/|bitbucket\.org/)", re.I)


class RenderToolError(ValueError):
    """A rendering tool is missing, failed or timed out; the message carries no server paths."""


def _command() -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise RenderToolError("Kustomize apps need the 'kustomize' or 'kubectl' binary on PATH")


@functools.lru_cache(maxsize=1)
def kustomize_version() -> str:
    """The tool and version, part of the render-cache key (``kubectl/kustomize v5.5.0``)."""
    cmd = _command()
    if cmd[0] == "kustomize":
        out = subprocess.run(["kustomize", "version"], capture_output=True, text=True, timeout=30, check=False)
        return f"kustomize {out.stdout.strip()}"
    out = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True,
                         timeout=30, check=False)
    try:
        version = json.loads(out.stdout).get("kustomizeVersion", "unknown")
    except ValueError:
        version = "unknown"
    return f"kubectl-kustomize {version}"


def _image_entry(spec: str) -> dict[str, str]:
    """Argo CD's ``[old=]name[:tag|@digest]`` as a kustomize ``images`` entry."""
    old, sep, new = spec.partition("=")
    if not sep:
        old, new = "", spec
    entry: dict[str, str] = {}
    if "@" in new:
        new, entry["digest"] = new.split("@", 1)
    else:
        slash = new.rfind("/")
        colon = new.rfind(":")
        if colon > slash:
            new, entry["newTag"] = new[:colon], new[colon + 1:]
    if old:
        entry["name"] = old
        entry["newName"] = new
    else:
        entry["name"] = new
    return entry


def _overlay(relative_app: str, options: KustomizeSource) -> dict[str, object]:
    doc: dict[str, object] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [relative_app],
    }
    if options.name_prefix:
        doc["namePrefix"] = options.name_prefix
    if options.name_suffix:
        doc["nameSuffix"] = options.name_suffix
    if options.namespace:
        doc["namespace"] = options.namespace
    if options.common_labels:
        doc["commonLabels"] = dict(options.common_labels)
    if options.common_annotations:
        doc["commonAnnotations"] = dict(options.common_annotations)
    if options.images:
        doc["images"] = [_image_entry(spec) for spec in options.images]
    return doc


def _has_overrides(options: KustomizeSource | None) -> bool:
    return options is not None and any(
        (options.name_prefix, options.name_suffix, options.namespace, options.common_labels,
         options.common_annotations, options.images)
    )


def _run(argv: list[str], *, timeout: float, home: Path) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C",
           "GIT_ALLOW_PROTOCOL": "none", "GIT_TERMINAL_PROMPT": "0", "KUBECONFIG": os.devnull}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RenderToolError(f"kustomize build timed out after {timeout:g}s") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


_KLOG_PREFIX = re.compile(r'^[EWI]\d{4} [\d:.]+\s+\d+ \S+\] (?:"command failed" err=)?')
#: characters of a tool's stderr kept in an error message
_STDERR_KEEP = 600


def _clean_stderr(stderr: bytes, *, work: Path, root: Path, relative: str) -> str:
    """The tool's complaint without server paths: checkout → ``.``, overlay → ``<overlay>``."""
    text = stderr.decode("utf-8", "replace")
    if relative:
        text = text.replace(relative, "<app>")
    text = text.replace(str(work), "<overlay>").replace(str(root), ".")
    lines = [_KLOG_PREFIX.sub("", ln).strip() for ln in text.splitlines()]
    kept = " ".join(ln for ln in lines if ln and not ln.startswith("# Warning"))
    return kept[:_STDERR_KEEP] + ("..." if len(kept) > _STDERR_KEEP else "")


def render_kustomize(
    app_dir: Path,
    *,
    root: Path,
    options: KustomizeSource | None,
    timeout: float = 90.0,
    limits: yamlsafe.Limits = yamlsafe.DEFAULT_LIMITS,
) -> list[Manifest]:
    """Build the kustomization in ``app_dir``; each manifest's source is ``<app path> (kustomize)``."""
    rel_app = app_dir.relative_to(root).as_posix() if app_dir != root else "."
    label = f"{rel_app} (kustomize)"
    with tempfile.TemporaryDirectory(prefix="syncwarden-kustomize-") as tmp:
        work = Path(tmp)
        target = app_dir
        relative = ""
        if _has_overrides(options):
            assert options is not None
            overlay = work / "overlay"
            overlay.mkdir()
            relative = os.path.relpath(app_dir, overlay)
            # JSON (a subset of YAML) so every string stays a string for kustomize's YAML 1.2 reader: a short
            # commit like "123456e7" written as plain YAML would be read back as a number
            (overlay / "kustomization.yaml").write_text(json.dumps(_overlay(relative, options), indent=2))
            target = overlay
        result = _run([*_command(), str(target)], timeout=timeout, home=work)
        if result.returncode != 0:
            raise RenderToolError(f"kustomize build {rel_app} failed: "
                                  f"{_clean_stderr(result.stderr, work=work, root=root, relative=relative)}")
        if len(result.stdout) > limits.max_bytes:
            raise RenderToolError(f"kustomize output for {rel_app} exceeds {limits.max_bytes} bytes")
    return manifests.parse_text(result.stdout, source=label, limits=limits)


def _kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def kustomize_dependencies(app_dir: Path, *, root: Path) -> list[str]:
    """Repository-relative directories the kustomization in ``app_dir`` reads (itself included).

    Follows ``resources``, ``bases`` and ``components`` entries that are directories, recursively.
    Raises :class:`RenderToolError` for a remote base (URLs or ``github.com/...``: Kustomize would fetch
    them behind the project's ``sourceRepos`` check) and for an entry outside the repository (Kustomize
    lets bases live anywhere on disk, which would let one repository read another's checkout).
    """
    real_root = Path(os.path.realpath(root))
    seen: list[str] = []
    stack = [Path(os.path.realpath(app_dir))]
    while stack:
        current = stack.pop()
        if not current.is_relative_to(real_root):
            continue
        rel = current.relative_to(real_root).as_posix()
        if rel in seen:
            continue
        seen.append(rel)
        kfile = _kustomization(current)
        if kfile is None:
            continue
        try:
            doc = yamlsafe.load_one(kfile.read_bytes(), source=posixpath.join(rel, kfile.name))
        except (yamlsafe.YamlError, OSError):
            continue  # kustomize itself reports a broken kustomization
        if not isinstance(doc, dict):
            continue
        for key in ("resources", "bases", "components"):
            entries = doc.get(key)
            for entry in entries if isinstance(entries, list) else []:
                if not isinstance(entry, str):
                    continue
                if _REMOTE.match(entry):
                    raise RenderToolError(
                        f"{posixpath.join(rel, kfile.name)}: remote kustomize base {entry!r} is not allowed"
                    )
                candidate = Path(os.path.realpath(current / entry))
                if not candidate.is_relative_to(real_root):
                    raise RenderToolError(
                        f"{posixpath.join(rel, kfile.name)}: {key} entry {entry!r} is outside the repository"
                    )
                if candidate.is_dir():
                    stack.append(candidate)
    return sorted(seen)
