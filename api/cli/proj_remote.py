"""``syncwarden proj`` in server mode: the same operations as :mod:`api.cli.proj` over ``/api/v1/projects``.

Who calls: the commands of :mod:`api.cli.proj` when :func:`api.cli.remote.target` chose a server. The answers
are turned back into the store's own records (:class:`policy.store.StoredProject`,
:class:`policy.store.TokenInfo`), so the commands print exactly what they print in local mode. A failed request
exits through :func:`api.cli.remote.connect` (1 denied, 2 invalid or unknown, 3 unavailable).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from api.cli.common import fail
from api.cli.remote import Remote, connect
from api.client import Params, Unavailable, path
from policy.errors import InvalidProject
from policy.project import AppProject
from policy.store import IssuedToken, StoredProject, TokenInfo
from policy.windows import SyncWindow

__all__ = [
    "create",
    "create_token",
    "delete",
    "get",
    "list_projects",
    "list_tokens",
    "project_from",
    "revoke_expired",
    "revoke_token",
    "token_from",
    "update",
    "windows_calendar",
    "windows_report",
]

_PROJECTS = "api/v1/projects"


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise Unavailable(message=f"the server answered an unreadable time {value!r}", exit_code=3) from None


def _required(value: Any) -> datetime:
    parsed = _when(value)
    if parsed is None:
        raise Unavailable(message="the server answered without a required time", exit_code=3)
    return parsed


def project_from(body: Any) -> StoredProject:
    """A ``ProjectPublic`` answer as the store's record."""
    try:
        return StoredProject(
            name=str(body["name"]), uid=str(body["uid"]), version=int(body["version"]), manifest=dict(body["project"]),
            created_at=_required(body["createdAt"]), updated_at=_required(body["updatedAt"]),
            updated_by=str(body["updatedBy"]),
        )
    except (KeyError, TypeError, ValueError):
        raise Unavailable(message="the server answered a project this CLI cannot read", exit_code=3) from None


def token_from(body: Any) -> TokenInfo:
    """A ``TokenPublic`` answer as the registry's record."""
    try:
        return TokenInfo(
            id=str(body["id"]), project=str(body["project"]), role=str(body["role"]),
            issued_at=_required(body["issuedAt"]), expires_at=_when(body.get("expiresAt")),
            issued_by=str(body["issuedBy"]), description=str(body.get("description", "")),
            revoked_at=_when(body.get("revokedAt")), last_used_at=_when(body.get("lastUsedAt")),
        )
    except (KeyError, TypeError, AttributeError):
        raise Unavailable(message="the server answered a token record this CLI cannot read", exit_code=3) from None


def _name_of(manifest: dict[str, Any]) -> str:
    meta = manifest.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def create(remote: Remote, manifest: dict[str, Any]) -> StoredProject:
    with connect(remote) as api:
        return project_from(api.post(path(_PROJECTS), {"project": manifest}))


def get(remote: Remote, name: str) -> StoredProject:
    with connect(remote) as api:
        return project_from(api.get(path(_PROJECTS, name)))


def list_projects(remote: Remote) -> list[StoredProject]:
    with connect(remote) as api:
        return [project_from(p) for p in api.items(path(_PROJECTS))]


def update(remote: Remote, manifest: dict[str, Any], *, expected_version: int | None) -> StoredProject:
    body: dict[str, Any] = {"project": manifest}
    if expected_version is not None:
        body["expectedVersion"] = expected_version
    with connect(remote) as api:
        return project_from(api.put(path(_PROJECTS, _name_of(manifest) or "-"), body))


def delete(remote: Remote, name: str, *, expected_version: int | None) -> None:
    with connect(remote) as api:
        if expected_version is not None:
            current = project_from(api.get(path(_PROJECTS, name)))
            if current.version != expected_version:
                fail(f"project {name!r} is at version {current.version}, not {expected_version}")
        api.delete(path(_PROJECTS, name))


def create_token(
    remote: Remote, project: str, role: str, *, lifetime: timedelta | None, description: str
) -> IssuedToken:
    body: dict[str, Any] = {"description": description}
    if lifetime is not None:
        body["expiresIn"] = int(lifetime.total_seconds())
    with connect(remote) as api:
        answer = api.post(path(_PROJECTS, project, "roles", role, "token"), body)
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, str):
            raise Unavailable(message="the server answered no token", exit_code=3)
        return IssuedToken(token=token, info=token_from(answer.get("info")))


def list_tokens(remote: Remote, project: str, role: str) -> list[TokenInfo]:
    with connect(remote) as api:
        return [token_from(t) for t in api.items(path(_PROJECTS, project, "roles", role, "token"))]


def revoke_token(remote: Remote, project: str, role: str, token_id: str) -> bool:
    with connect(remote) as api:
        answer = api.delete(path(_PROJECTS, project, "roles", role, "token", token_id))
        return bool(answer.get("revoked")) if isinstance(answer, dict) else False


def revoke_expired(remote: Remote, project: str, *, now: datetime) -> int:
    """Revoke every expired, not yet revoked token of every role of ``project``; the count revoked."""
    count = 0
    with connect(remote) as api:
        for role in api.items(path(_PROJECTS, project, "roles")):
            name = str(role.get("name", ""))
            for raw in api.items(path(_PROJECTS, project, "roles", name, "token")):
                info = token_from(raw)
                if info.state(now=now) != "expired":
                    continue
                answer = api.delete(path(_PROJECTS, project, "roles", name, "token", info.id))
                count += bool(isinstance(answer, dict) and answer.get("revoked"))
    return count


# --- sync windows ---------------------------------------------------------------------------------------


def _windows_params(target: dict[str, str], *, app: str | None, at: datetime, days: int) -> Params:
    return {"at": at.isoformat(), "app": app, "namespace": target["namespace"] or None,
            "server": target["server"] or None, "clusterName": target["cluster_name"] or None, "days": days}


def windows_report(
    remote: Remote, name: str, target: dict[str, str], *, app: str | None, at: datetime, days: int
) -> tuple[dict[str, Any], tuple[SyncWindow, ...]]:
    """The server's windows report (the shape of ``proj windows -o json``) and the windows it lists."""
    with connect(remote) as api:
        report = api.get(path(_PROJECTS, name, "syncwindows"), params=_windows_params(target, app=app, at=at,
                                                                                     days=days))
    if not isinstance(report, dict) or not isinstance(report.get("windows"), list):
        raise Unavailable(message="the server answered a windows report this CLI cannot read", exit_code=3)
    if report.get("app") is None:
        report.pop("app", None)
    specs = [{k: v for k, v in w.items() if k not in ("id", "status")} for w in report["windows"]]
    manifest = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": name},
                "spec": {"syncWindows": specs}}
    try:
        items = AppProject.from_dict(manifest, source=f"server project {name!r}").sync_windows or ()
    except InvalidProject as exc:
        raise Unavailable(message=f"the server answered windows this CLI cannot read: {exc}", exit_code=3) from None
    return report, tuple(items)


def windows_calendar(
    remote: Remote, name: str, target: dict[str, str], *, app: str | None, at: datetime, days: int
) -> str:
    with connect(remote) as api:
        return api.text(path(_PROJECTS, name, "windows.ics"), params=_windows_params(target, app=app, at=at,
                                                                                     days=days))
