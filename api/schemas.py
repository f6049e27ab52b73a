"""Request and response models of the HTTP API (pydantic v2), converted to and from the domain at the edge.

JSON field names are camelCase as in Argo CD's API (``expiresIn``, ``nextCursor``); Python attributes are
snake_case. Projects and Applications travel as their Argo CD manifests (free-form mappings validated by
``AppProject.from_dict`` / ``Application.from_dict``, whose errors name the field). These models make the
OpenAPI document complete: every route declares its request and response shapes and the error shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "AdmissionCheckRequest",
    "AppWindows",
    "AuditPagePublic",
    "AuditRecordPublic",
    "AuditVerifyPublic",
    "CheckReportPublic",
    "ErrorResponse",
    "LoginRequest",
    "ProjectCreate",
    "ProjectList",
    "ProjectPublic",
    "ProjectUpdate",
    "RoleList",
    "RolePublic",
    "SessionToken",
    "TokenCreate",
    "TokenCreated",
    "TokenList",
    "TokenPublic",
    "TokenRevoked",
    "UserInfo",
    "ViolationPublic",
    "WebhookResult",
    "WindowsReport",
]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True,
                              extra="forbid")


class _Out(_Model):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


# --- errors -----------------------------------------------------------------------------------------------


class ViolationPublic(_Out):
    code: str
    message: str
    field: str = ""
    rule: str = ""


class ErrorResponse(BaseModel):
    """The one error shape of every failure."""

    error: str = Field(description="stable machine code, e.g. forbidden, invalid, conflict")
    message: str
    violations: list[ViolationPublic] | None = None
    request_id: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (401, "missing or invalid bearer token"),
        (403, "denied; the violations say why"),
        (413, "request body too large"),
        (422, "invalid request; the violations name the fields"),
        (503, "temporarily unavailable (Retry-After)"),
    )
}


# --- session ----------------------------------------------------------------------------------------------


class LoginRequest(_Model):
    username: str = Field(min_length=1, max_length=253)
    password: str = Field(min_length=1, max_length=1024)


class SessionToken(_Out):
    token: str


class UserInfo(_Out):
    logged_in: bool
    username: str
    kind: str
    project: str = ""


# --- projects ---------------------------------------------------------------------------------------------


class ProjectCreate(_Model):
    project: dict[str, Any] = Field(description="an Argo CD AppProject manifest")
    upsert: bool = False


class ProjectUpdate(_Model):
    project: dict[str, Any] = Field(description="the whole new AppProject manifest")
    expected_version: int | None = Field(default=None, ge=1, description="refuse when the project changed since")


class ProjectPublic(_Out):
    name: str
    version: int
    uid: str
    created_at: datetime
    updated_at: datetime
    updated_by: str
    project: dict[str, Any]


class ProjectList(_Out):
    items: list[ProjectPublic]


class RolePublic(_Out):
    name: str
    description: str = ""
    policies: list[str] = []
    groups: list[str] = []
    active_tokens: int = 0


class RoleList(_Out):
    items: list[RolePublic]


class TokenCreate(_Model):
    expires_in: int | None = Field(default=None, ge=0, le=100 * 365 * 86400,
                                   description="lifetime in seconds; absent or 0: never expires")
    description: str = Field(default="", max_length=1024)


class TokenPublic(_Out):
    id: str
    project: str
    role: str
    issued_at: datetime
    expires_at: datetime | None
    issued_by: str
    description: str
    revoked_at: datetime | None
    last_used_at: datetime | None
    state: Literal["active", "expired", "revoked"]


class TokenCreated(_Out):
    token: str = Field(description="shown once; store it now")
    info: TokenPublic


class TokenList(_Out):
    items: list[TokenPublic]


class TokenRevoked(_Out):
    id: str
    revoked: bool


# --- windows ----------------------------------------------------------------------------------------------


class WindowTransition(_Out):
    at: datetime
    can_sync_auto: bool
    can_sync_manual: bool
    active: list[int]


class AppWindows(_Out):
    name: str
    namespace: str
    server: str
    cluster_name: str
    can_sync_auto: bool
    can_sync_manual: bool
    matched: list[int]
    active: list[int]
    next_change: datetime | None
    transitions: list[WindowTransition]


class WindowsReport(_Out):
    project: str
    at: datetime
    windows: list[dict[str, Any]] = Field(description="each window as in the AppProject, plus id and status")
    app: AppWindows | None = None


# --- audit ------------------------------------------------------------------------------------------------


class AuditRecordPublic(_Out):
    seq: int
    time: str
    action: str
    result: str
    actor: dict[str, str]
    target: dict[str, str]
    request_id: str
    violations: list[dict[str, Any]]
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPagePublic(_Out):
    items: list[AuditRecordPublic]
    next_cursor: str | None


class AuditVerifyPublic(_Out):
    ok: bool
    checked: int
    bad_seq: int | None
    reason: str
    last_seq: int


# --- admission --------------------------------------------------------------------------------------------


class AdmissionCheckRequest(_Model):
    """The input of ``syncwarden check``, as JSON. Give the project by name (from the store) or inline."""

    project: str | None = Field(default=None, description="name of a stored project every app is checked against")
    projects: list[dict[str, Any]] | None = Field(default=None, description="inline AppProject manifests")
    apps: list[dict[str, Any]] = Field(min_length=1, description="Argo CD Application manifests")
    manifests: list[dict[str, Any]] | None = Field(default=None, description="the objects to check, as JSON")
    manifests_yaml: str | None = Field(default=None, description="the objects to check, as multi-document YAML")
    at: datetime | None = Field(default=None, description="evaluate at this time (default: now)")
    sync: Literal["auto", "manual"] = "auto"


class AppResultPublic(_Out):
    app: str
    project: str
    source: str
    objects: int
    allowed: bool
    rule: str
    violations: list[ViolationPublic]
    details: dict[str, Any] | None = None


class CheckReportPublic(_Out):
    """Exactly ``syncwarden check -o json``."""

    version: int
    allowed: bool
    at: str
    sync: str
    apps: list[AppResultPublic]


# --- webhook ----------------------------------------------------------------------------------------------


class WebhookResult(_Out):
    provider: str
    event: str
    refreshed: list[str] = []
    coalesced: list[str] = []
    ignored: str = ""
