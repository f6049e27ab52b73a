"""Render an Application's sources into desired objects: Git → safe paths → Directory | Kustomize | Helm.

Who calls this: ``syncwarden app manifests`` and ``syncwarden check --app`` (``api``) through
:func:`render_application`, and the reconciler through a long-lived :class:`Renderer` (one
:class:`~sync.source.RepoCache` and :class:`~sync.render_cache.RenderCache` per process, so repositories
and renders are shared by every app).

Per source (``argocd-sync-semantics.md`` §1.2–§1.6, §8): resolve the revision; if the render cache holds a
render whose input paths have the same git tree ids at this commit, reuse it; otherwise materialise the
read-only tree (checked for out-of-bounds symlinks), resolve the app path inside it, pick the tool (an
explicit ``directory``/``helm``/``kustomize`` block, else ``Chart.yaml`` → Helm, a kustomization → Kustomize
(wins over Helm), else Directory), render, and remember the paths the render read. Helm and Kustomize
options get the ``ARGOCD_APP_*`` build variables substituted (:mod:`sync.render_env`); a Helm value file
``$<ref>/path`` reads from the checkout of the source with that ``ref``. Sources are concatenated in order;
a ref-only source renders nothing; a resource key seen twice keeps the last one.

Error tree::

    RenderError (ValueError)   ``reason`` is stable (InvalidSource, InvalidPath, InvalidManifest, ToolFailed,
                               GitFailed, GitTimeout); ``retryable`` is True only for timeouts
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from config import yamlsafe
from config.settings import SyncSettings
from sync import (
    appparse,
    giturl,
    paths,
    render_directory,
    render_env,
    render_helm,
    render_kustomize,
    source,
)
from sync.application import Application, ApplicationSource
from sync.gitenv import RepoCredential
from sync.manifests import ManifestError
from sync.models import Manifest
from sync.render_cache import CachedRender, RenderCache, digest

__all__ = [
    "GENERATE_PATHS_ANNOTATION",
    "RenderError",
    "Rendered",
    "Renderer",
    "credentials_from_settings",
    "render_application",
]

log = logging.getLogger(__name__)

GENERATE_PATHS_ANNOTATION = "argocd.argoproj.io/manifest-generate-paths"


class RenderError(ValueError):
    def __init__(self, message: str, *, reason: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True)
class Rendered:
    manifests: list[Manifest]
    revisions: tuple[str, ...]  # resolved commit per source, index-aligned with app.sources ("" if none)


def _detect(app_dir: Path, src: ApplicationSource) -> str:
    explicit = src.explicit_type
    if explicit:
        return explicit
    if any((app_dir / name).is_file() for name in render_kustomize.KUSTOMIZATION_FILES):
        return "Kustomize"
    if (app_dir / "Chart.yaml").is_file():
        return "Helm"
    return "Directory"


def _generate_paths(app: Application, app_path: str) -> list[str]:
    raw = app.annotations.get(GENERATE_PATHS_ANNOTATION, "")
    out = []
    for item in (part.strip() for part in raw.split(";")):
        if item:
            joined = item.lstrip("/") if item.startswith("/") else posixpath.join(app_path, item)
            out.append(posixpath.normpath(joined) if joined else ".")
    return out


def _tool_versions() -> dict[str, str]:
    versions = {}
    for name, probe in (("kustomize", render_kustomize.kustomize_version), ("helm", render_helm.helm_version)):
        try:
            versions[name] = probe()
        except (render_kustomize.RenderToolError, OSError):
            versions[name] = "unavailable"
    return versions


def credentials_from_settings(settings: SyncSettings) -> list[RepoCredential]:
    return [
        RepoCredential(
            url_prefix=item.url_prefix,
            username=item.username,
            password=item.password.get_secret_value() if item.password is not None else "",
            ssh_private_key_file=item.ssh_private_key_file,
            known_hosts_file=item.known_hosts_file,
        )
        for item in settings.repo_credentials
    ]


class Renderer:
    """Renders Applications; holds the repository cache and the render cache of a process."""

    def __init__(self, *, repos: source.RepoCache, cache: RenderCache, settings: SyncSettings) -> None:
        self.repos = repos
        self.cache = cache
        self.settings = settings
        self.limits = yamlsafe.Limits(max_bytes=settings.max_manifest_bytes)
        self._tools: dict[str, str] | None = None

    @classmethod
    def create(cls, *, settings: SyncSettings, cache_dir: Path,
               credentials: Sequence[RepoCredential] | None = None,
               clock: Callable[[], float] = time.monotonic) -> Renderer:
        """A renderer with its caches under ``cache_dir``; credentials default to ``settings.repo_credentials``."""
        if credentials is None:
            credentials = credentials_from_settings(settings)
        repos = source.RepoCache(
            cache_dir / "git", ls_remote_interval=settings.ls_remote_interval_seconds,
            timeout=settings.git_timeout_seconds, allow_file_urls=settings.allow_file_urls,
            credentials=credentials, clock=clock,
        )
        return cls(repos=repos, cache=RenderCache(cache_dir / "renders"), settings=settings)

    def tools(self) -> dict[str, str]:
        if self._tools is None:
            self._tools = _tool_versions()
        return self._tools

    def render(self, app: Application, *, revision: str | None = None, hard: bool = False) -> Rendered:
        """Render ``app`` (at ``revision`` for a single source); ``hard`` bypasses the render cache."""
        if revision is not None and len(app.sources) > 1:
            raise RenderError("--revision applies to single-source apps only", reason="InvalidSource")
        by_key: dict[object, Manifest] = {}
        commits: list[str] = []
        for index, src in enumerate(app.sources):
            with _errors(_where(app, index)):
                _check_supported(src)
                commits.append(self.repos.resolve(src.repo_url, revision or src.target_revision))
        refs = {src.ref: (src, commits[i]) for i, src in enumerate(app.sources) if src.ref}
        for index, src in enumerate(app.sources):
            if not src.path:  # a ref-only source: its revision is recorded, it renders nothing
                continue
            with _errors(_where(app, index)):
                found = self._render_source(app, src, commit=commits[index], refs=refs, hard=hard)
            for manifest in found:
                if manifest.key in by_key:
                    log.warning("app %s: %s is generated more than once; the last one wins", app.name,
                                manifest.key)
                    del by_key[manifest.key]
                by_key[manifest.key] = manifest
        return Rendered(manifests=list(by_key.values()), revisions=tuple(commits))

    def _identity(self, app: Application, src: ApplicationSource, *, commit: str,
                  ref_commits: dict[str, str]) -> str:
        src_dict = appparse.source_to_dict(src)
        return digest({
            "repo": giturl.normalise_url(src.repo_url),
            "credential": self.repos.credential_identity(src.repo_url),
            "path": src.path,
            "source": {k: v for k, v in src_dict.items() if k != "targetRevision"},
            "app": [app.name, app.project, app.destination.namespace],
            "generate_paths": app.annotations.get(GENERATE_PATHS_ANNOTATION, ""),
            "tools": self.tools(),
            # ARGOCD_APP_REVISION may be substituted into the options: then the commit itself matters
            "commit": commit if render_env.uses_env(src) else "",
            "refs": ref_commits,
        })

    def _ref_roots(self, src: ApplicationSource,
                   refs: dict[str, tuple[ApplicationSource, str]]) -> tuple[dict[str, Path], dict[str, str]]:
        """Checkouts of the sources this Helm source's ``$ref/...`` value files point into."""
        used = sorted({v[1:].partition("/")[0] for v in (src.helm.value_files if src.helm else ())
                       if v.startswith("$") and v[1:].partition("/")[0] in refs})
        roots = {name: self.repos.checkout(refs[name][0].repo_url, refs[name][1]).path for name in used}
        return roots, {name: refs[name][1] for name in used}

    def _render_source(self, app: Application, src: ApplicationSource, *, commit: str,
                       refs: dict[str, tuple[ApplicationSource, str]], hard: bool = False) -> list[Manifest]:
        ref_roots, ref_commits = self._ref_roots(src, refs)
        identity = self._identity(app, src, commit=commit, ref_commits=ref_commits)
        deps = None if hard else self.cache.deps_for(identity)
        if deps is not None:
            fingerprint = digest(self.repos.tree_ids(src.repo_url, commit, deps))
            hit = self.cache.get(identity, fingerprint)
            if hit is not None:
                return list(hit.manifests)
        src = render_env.substitute(src, render_env.build_env(app, src, commit=commit), refs=refs.keys())
        root = self.repos.checkout(src.repo_url, commit).path.resolve()
        app_dir = paths.resolve_app_path(root, src.path)
        tool = _detect(app_dir, src)
        app_rel = app_dir.relative_to(root).as_posix() if app_dir != root else "."
        deps_list = [app_rel, *_generate_paths(app, app_rel)]
        if tool == "Directory":
            found = render_directory.render_directory(app_dir, root=root, directory=src.directory,
                                                      limits=self.limits)
        elif tool == "Kustomize":
            deps_list += render_kustomize.kustomize_dependencies(app_dir, root=root)
            found = render_kustomize.render_kustomize(app_dir, root=root, options=src.kustomize,
                                                      timeout=self.settings.git_timeout_seconds,
                                                      limits=self.limits)
        else:  # Helm
            for value in src.helm.value_files if src.helm is not None else ():
                if value.startswith("$"):
                    continue  # another source: its commit is part of the identity
                base = value.lstrip("/") if value.startswith("/") else posixpath.join(app_rel, value)
                deps_list.append(posixpath.dirname(posixpath.normpath(base)) or ".")
            found = render_helm.render_helm(app_dir, root=root, options=src.helm, release_name=app.name,
                                            namespace=app.destination.namespace, limits=self.limits,
                                            refs=ref_roots)
        deps_final = tuple(sorted(set(deps_list)))
        fingerprint = digest(self.repos.tree_ids(src.repo_url, commit, deps_final))
        self.cache.put(identity, fingerprint, CachedRender(commit=commit, deps=deps_final, manifests=tuple(found)))
        return found


def _where(app: Application, index: int) -> str:
    return f"spec.sources[{index}]" if app.multi_source else "spec.source"


def _check_supported(src: ApplicationSource) -> None:
    if src.chart:
        raise RenderError("Helm repository charts ('chart') are not supported; put the chart in Git and "
                          "use 'path'", reason="InvalidSource")
    if src.plugin is not None:
        raise RenderError("config management plugins are not supported", reason="InvalidSource")


@contextlib.contextmanager
def _errors(where: str) -> Iterator[None]:
    """Turn every failure of one source into a :class:`RenderError` with a stable reason."""
    try:
        yield
    except RenderError:
        raise
    except giturl.UnsafeRepoURL as exc:
        raise RenderError(f"{where}.repoURL: {exc}", reason="InvalidSource") from None
    except source.GitTimeout as exc:
        raise RenderError(str(exc), reason="GitTimeout", retryable=True) from None
    except source.GitError as exc:
        raise RenderError(str(exc), reason="GitFailed") from None
    except paths.PathError as exc:
        raise RenderError(f"{where}: {exc}", reason="InvalidPath") from None
    except ManifestError as exc:
        raise RenderError(str(exc), reason="InvalidManifest") from None
    except (render_kustomize.RenderToolError, yamlsafe.YamlError) as exc:
        raise RenderError(f"{where}: {exc}", reason="ToolFailed") from None


def render_application(app: Application, *, revision: str | None, settings: SyncSettings,
                       cache_dir: Path) -> list[Manifest]:
    """One-shot render for the CLI (``app manifests``, ``check --app``); raises :class:`RenderError`."""
    return Renderer.create(settings=settings, cache_dir=cache_dir).render(app, revision=revision).manifests
