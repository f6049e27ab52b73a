"""Request and response models of ``/api/v1/applications`` (Argo CD's shapes where one exists).

Who uses it: :mod:`api.routes.applications`. Applications travel as their Argo CD manifests (validated by
``Application.from_dict``, whose errors name the field); the app as returned carries ``status`` (sync, health,
resources, conditions, ``operationState``, ``history`` — Argo CD's ``revisionHistory`` lives in ``status.history``
too) like Argo CD's ``GET /api/v1/applications/{name}``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from api.schemas import _Model, _Out

__all__ = [
    "CREATE_OUTCOMES",
    "OUTCOME_HEADER",
    "AppCreate",
    "AppList",
    "AppManifests",
    "AppUpdate",
    "DiffPublic",
    "HistoryList",
    "OperationStarted",
    "RefreshBody",
    "ResourceTree",
    "RollbackBody",
    "SyncBody",
    "SyncResource",
]


#: response header of ``POST /api/v1/applications``: what the request did (the body is the app either way)
OUTCOME_HEADER = "X-Syncwarden-Outcome"
CREATE_OUTCOMES = ("created", "updated", "unchanged")


class AppCreate(_Model):
    application: dict[str, Any] = Field(description="an Argo CD Application manifest")
    upsert: bool = Field(default=False, description="replace an existing app with a different spec")


class AppUpdate(_Model):
    application: dict[str, Any] = Field(description="the Application manifest; metadata.name must match the path")
    expected_version: int | None = Field(default=None, description="fail with 409 when the stored version differs")


class AppList(_Out):
    items: list[dict[str, Any]]


class SyncResource(_Model):
    group: str = ""
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)
    namespace: str = ""


class SyncBody(_Model):
    """Argo CD's ``ApplicationSyncRequest``, plus a sync-window ``override`` with its ``reason``."""

    revision: str = ""
    prune: bool = False
    dry_run: bool = False
    resources: list[SyncResource] = Field(default_factory=list)
    override: bool = Field(default=False, description="sync although a window denies it (needs 'override')")
    reason: str | None = Field(default=None, max_length=1000, description="why; required with override")


class RollbackBody(_Model):
    id: int = Field(description="the history entry to roll back to")
    prune: bool = False
    dry_run: bool = False


class RefreshBody(_Model):
    refresh: Literal["normal", "hard"] = "normal"


class OperationStarted(_Out):
    operation_id: str
    application: dict[str, Any]


class HistoryList(_Out):
    items: list[dict[str, Any]]


class ResourceTree(_Out):
    nodes: list[dict[str, Any]]
    #: top-level objects of the destination namespace no app tracks (only when the project monitors them)
    orphaned_nodes: list[dict[str, Any]] = Field(default_factory=list)


class AppManifests(_Out):
    manifests: list[dict[str, Any]]
    revision: str


class DiffPublic(_Out):
    """A comparison now, as ``app diff`` prints it (local mode prints the same fields)."""

    instance: str = Field(description="the app's tracking instance")
    sync: dict[str, Any]
    health: dict[str, Any]
    resources: list[dict[str, Any]] = Field(description="each resource's status; ``diff.unified`` masks Secrets")
    conditions: list[dict[str, Any]]
    revisions: list[str]
