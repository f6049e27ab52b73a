"""``syncwarden check`` in server mode: the same check, decided by ``POST /api/v1/admission/check``.

Who calls: :func:`api.cli.check.check` when :func:`api.cli.remote.target` chose a server. The CLI loads and
validates its input exactly as offline (so bad files fail locally with the same message), sends the projects
inline — or, when ``--project`` names no file, the name of a project stored on the server — with the apps and the
objects, and turns the answer back into a :class:`api.check.CheckReport`. Locations in the answer
(``request.apps[0]``, ``request.manifests[3]``) are rewritten to the files they came from, so every output format
reads as the offline one. Without ``--manifests`` each app's source is rendered locally and checked in its own
request (the API takes one object list per request).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from api import check as service
from api.cli.remote import Remote, connect
from api.client import Unavailable
from policy.decision import Decision, Violation
from policy.project import AppProject
from sync.application import Application
from sync.models import Manifest

__all__ = ["relabel", "report_from", "run_check"]

_LOCATION = re.compile(r"request\.(apps|manifests)\[(\d+)\]")


def relabel(value: Any, *, apps: Sequence[str], manifests: Sequence[str]) -> Any:
    """``value`` with every ``request.apps[i]`` / ``request.manifests[j]`` replaced by the local location."""
    if isinstance(value, str):

        def local(match: re.Match[str]) -> str:
            names = apps if match.group(1) == "apps" else manifests
            index = int(match.group(2))
            return names[index] if index < len(names) else match.group(0)

        return _LOCATION.sub(local, value)
    if isinstance(value, list):
        return [relabel(v, apps=apps, manifests=manifests) for v in value]
    if isinstance(value, dict):
        return {k: relabel(v, apps=apps, manifests=manifests) for k, v in value.items()}
    return value


def _result_from(item: Mapping[str, Any]) -> service.AppResult:
    violations = tuple(
        Violation(code=str(v.get("code", "")), message=str(v.get("message", "")), field=str(v.get("field", "")),
                  rule=str(v.get("rule", "")))
        for v in item.get("violations") or ()
    )
    details = item.get("details")
    decision = Decision(bool(item["allowed"]), violations, str(item.get("rule", "")),
                        dict(details) if isinstance(details, Mapping) else {})
    return service.AppResult(str(item["app"]), str(item["project"]), str(item["source"]), int(item["objects"]),
                             decision)


def report_from(body: Any) -> list[service.AppResult]:
    """The per-app results of an answer (``CheckReportPublic``)."""
    try:
        return [_result_from(item) for item in body["apps"]]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise Unavailable(message="the server answered a check report this CLI cannot read", exit_code=3) from None


def _request(
    *,
    project_name: str | None,
    projects: Mapping[str, AppProject] | None,
    apps: Sequence[tuple[Application, str]],
    objects: Sequence[Manifest],
    at: datetime,
    sync: str,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apps": [app.to_dict() for app, _ in apps],
        "manifests": [m.obj for m in objects],
        "at": at.isoformat(),
        "sync": sync,
    }
    if projects is not None:
        body["projects"] = [p.to_dict() for p in projects.values()]
    else:
        body["project"] = project_name
    return body


def run_check(
    remote: Remote,
    *,
    project_name: str | None,
    projects: Mapping[str, AppProject] | None,
    apps: Sequence[tuple[Application, str]],
    manifests: Sequence[Manifest] | None,
    render: service.Renderer | None,
    at: datetime,
    sync: str,
) -> service.CheckReport:
    """Ask the server; ``projects`` inline, or ``project_name`` for a stored one."""
    if manifests is not None:
        batches = [(list(apps), list(manifests))]
    elif render is not None:
        batches = [([(app, where)], render(app, where)) for app, where in apps]
    else:
        raise service.CheckInputError("no --manifests given and no renderer available")
    results: list[service.AppResult] = []
    with connect(remote) as api:
        for batch_apps, objects in batches:
            body = _request(project_name=project_name, projects=projects, apps=batch_apps, objects=objects, at=at,
                            sync=sync)
            answer = api.post("/api/v1/admission/check", body)
            local = relabel(answer, apps=[where for _, where in batch_apps], manifests=[m.where for m in objects])
            results.extend(report_from(local))
    return service.CheckReport(at=at, sync=sync, results=tuple(results))
