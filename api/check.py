"""The admission-style check: load projects, apps and manifests, and run the one gate for each app.

Who calls this: ``syncwarden check`` (offline, in pipelines) and, later, ``POST /api/v1/admission/check``;
both produce the same :class:`CheckReport`. Loading errors raise :class:`CheckInputError` with a message that
names the file, document and field (exit code 2); a denial is a report with ``allowed = False`` (exit 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from config import yamlsafe
from policy import evaluate as gate
from policy.decision import Decision
from policy.errors import InvalidProject
from policy.kinds import KindTable, KindTableError
from policy.project import AppProject
from sync.application import Application, InvalidApplication
from sync.manifests import ManifestError, load_manifest_paths
from sync.models import Manifest

__all__ = [
    "AppResult",
    "CheckInputError",
    "CheckReport",
    "app_target",
    "load_apps",
    "load_projects",
    "object_refs",
    "run_check",
]

#: Renders an app's own source when no manifests are given: (app, where the app was loaded from) → manifests.
Renderer = Callable[[Application, str], list[Manifest]]


class CheckInputError(ValueError):
    """Input that cannot be checked at all (exit code 2). The message names the file and field."""


@dataclass(frozen=True)
class AppResult:
    app: str
    project: str
    source: str
    objects: int
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "project": self.project,
            "source": self.source,
            "objects": self.objects,
            "allowed": self.decision.allowed,
            "rule": self.decision.rule,
            "violations": [v.to_dict() for v in self.decision.violations],
            **({"details": self.decision.details} if self.decision.details else {}),
        }


@dataclass(frozen=True)
class CheckReport:
    at: datetime
    sync: str
    results: tuple[AppResult, ...] = field(default_factory=tuple)

    @property
    def allowed(self) -> bool:
        return all(r.decision.allowed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON document (``-o json``; README "Check output"). Version bumps on breaking change."""
        return {
            "version": 1,
            "allowed": self.allowed,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "sync": self.sync,
            "apps": [r.to_dict() for r in self.results],
        }


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckInputError(f"{path}: is a directory, expected a file") from None
    except OSError as exc:
        raise CheckInputError(f"{path}: cannot read ({exc.strerror})") from None


def _documents(path: Path) -> list[yamlsafe.Document]:
    try:
        return yamlsafe.load_all(_read(path), source=str(path))
    except yamlsafe.YamlError as exc:
        raise CheckInputError(str(exc)) from None


def load_projects(path: Path) -> dict[str, AppProject]:
    """Every AppProject in a file, or in the ``.yaml``/``.yml``/``.json`` files of a directory."""
    files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json")) if path.is_dir() else [path]
    projects: dict[str, AppProject] = {}
    for file in files:
        for doc in _documents(file):
            data = doc.data
            if path.is_dir() and not (isinstance(data, Mapping) and data.get("kind") == "AppProject"):
                continue  # a directory may hold other files; a file named explicitly must be a project
            where = f"{file}[{doc.index}]"
            try:
                project = AppProject.from_dict(data, source=where)
            except InvalidProject as exc:
                raise CheckInputError(str(exc)) from None
            if project.name in projects:
                raise CheckInputError(f"{where}: project {project.name!r} is defined twice")
            projects[project.name] = project
    if not projects:
        raise CheckInputError(f"{path}: no AppProject found")
    return projects


def load_apps(paths: Sequence[Path]) -> list[tuple[Application, str]]:
    """Each file holds one or more Argo CD Applications; returns (app, where) pairs."""
    apps: list[tuple[Application, str]] = []
    for file in paths:
        docs = _documents(file)
        if not docs:
            raise CheckInputError(f"{file}: no Application found")
        for doc in docs:
            where = f"{file}[{doc.index}]"
            if not isinstance(doc.data, Mapping):
                raise CheckInputError(f"{where}: expected an Application (a mapping)")
            try:
                apps.append((Application.from_dict(doc.data, source=where), where))
            except InvalidApplication as exc:
                raise CheckInputError(str(exc)) from None
    return apps


def app_target(app: Application) -> gate.AppTarget:
    return gate.AppTarget(
        name=app.name,
        project=app.project,
        repo_urls=tuple(s.repo_url for s in app.sources),
        destination_namespace=app.destination.namespace,
        destination_server=app.destination.server,
        destination_name=app.destination.name,
        namespace=app.namespace,
    )


def object_refs(manifests: Sequence[Manifest]) -> list[gate.ObjectRef]:
    refs = []
    for m in manifests:
        child_project: str | None = None
        if m.group == "argoproj.io" and m.kind == "Application":
            spec = m.obj.get("spec")
            project = spec.get("project") if isinstance(spec, Mapping) else None
            child_project = project if isinstance(project, str) else ""
        name = m.name or str(m.obj.get("metadata", {}).get("generateName", ""))
        refs.append(gate.ObjectRef(m.group, m.kind, name, m.namespace, m.where, child_project))
    return refs


def load_manifests(paths: Sequence[Path]) -> list[Manifest]:
    try:
        return load_manifest_paths(paths)
    except ManifestError as exc:
        raise CheckInputError(str(exc)) from None


def kind_table(manifests: Sequence[Manifest], api_resources: Path | None) -> KindTable:
    table = KindTable.builtin()
    try:
        table = table.with_crds((m.obj, m.where) for m in manifests)
        if api_resources is not None:
            text = _read(api_resources).decode("utf-8", errors="replace")
            table = table.with_api_resources(text, source=str(api_resources))
    except KindTableError as exc:
        raise CheckInputError(str(exc)) from None
    return table


def run_check(
    *,
    projects: Mapping[str, AppProject],
    apps: Sequence[tuple[Application, str]],
    manifests: Sequence[Manifest] | None,
    at: datetime,
    sync: str,
    api_resources: Path | None = None,
    render: Renderer | None = None,
) -> CheckReport:
    """Check each app against its project. ``manifests`` apply to every app; when None, each app's own
    source is rendered with ``render``."""
    if sync not in ("auto", "manual"):
        raise CheckInputError(f"--sync must be auto or manual, not {sync!r}")
    results = []
    for app, where in apps:
        project = projects.get(app.project)
        if project is None:
            known = ", ".join(sorted(projects)) or "none"
            raise CheckInputError(
                f"{where}: spec.project: project {app.project!r} is not among the loaded projects ({known})"
            )
        if manifests is not None:
            objects = list(manifests)
        elif render is not None:
            objects = render(app, where)
        else:
            raise CheckInputError(f"{where}: no --manifests given and no renderer available")
        decision = gate.evaluate(
            project=project,
            app=app_target(app),
            objects=object_refs(objects),
            kinds=kind_table(objects, api_resources),
            sync="manual" if sync == "manual" else "auto",
            at=at,
        )
        results.append(AppResult(app.name, project.name, where, len(objects), decision))
    return CheckReport(at=at, sync=sync, results=tuple(results))
