"""``POST /api/webhook``: Git push notifications from GitHub, GitLab, Bitbucket and Gitea.

A push only asks for a *refresh* of the apps whose repository matches (through the injected
``Services.refresh(repo_url, revision_hint)``): it never syncs a revision named in the payload, and the payload's
URLs are only compared, never fetched (security-cases HOOK-06). Pushes to one repository within
``Services.webhook_coalesce_seconds`` cause one refresh.

Authentication is the provider's signature, checked over the raw bytes before anything parses them, with a
constant-time compare and only the one scheme we accept per provider (HOOK-03):

=========  ==========================================  ==========================================
provider   event header                                signature
=========  ==========================================  ==========================================
github     ``X-GitHub-Event: push``                    ``X-Hub-Signature-256: sha256=<hmac hex>``
gitea      ``X-Gitea-Event: push``                     ``X-Gitea-Signature: <hmac hex>``
gitlab     ``X-Gitlab-Event: Push Hook``               ``X-Gitlab-Token: <secret>``
bitbucket  ``X-Event-Key: repo:push|repo:refs_changed``  ``X-Hub-Signature: sha256=<hmac hex>``
=========  ==========================================  ==========================================

A provider without a configured secret is refused (401). The body is capped by the middleware (413, HOOK-01);
malformed payloads — invalid UTF-8, deep nesting, wrong types, missing repository — are 400, never 500
(HOOK-02). Other events (``ping``, issues, ...) are acknowledged and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import StateDep, client_of
from api.errors import ApiError, request_id_of
from api.schemas import ERRORS, WebhookResult
from api.state import AppState
from config import yamlsafe
from policy import audit

__all__ = ["router"]

router = APIRouter(tags=["webhook"])

_RESPONSES: dict[int | str, dict[str, Any]] = {**{k: v for k, v in ERRORS.items() if k in (401, 413, 503)},
                                               400: ERRORS[422]}
_LIMITS = yamlsafe.Limits(max_depth=32, max_nodes=200_000)
_PUSH_EVENTS = {
    "github": {"push"},
    "gitea": {"push"},
    "gitlab": {"Push Hook", "Tag Push Hook"},
    "bitbucket": {"repo:push", "repo:refs_changed"},
}


def _provider(request: Request) -> tuple[str, str]:
    headers = request.headers
    for provider, header in (("gitea", "x-gitea-event"), ("gitlab", "x-gitlab-event"), ("github", "x-github-event"),
                             ("bitbucket", "x-event-key")):
        if header in headers:
            return provider, headers[header]
    raise ApiError(400, "not a recognised webhook: expected a GitHub, GitLab, Bitbucket or Gitea event header")


def _hmac_ok(secret: str, body: bytes, presented: str | None, prefix: str) -> bool:
    if presented is None or not presented.startswith(prefix):
        return False
    expected = prefix + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), presented.encode("utf-8", errors="replace"))


def _verify(provider: str, secret: str, request: Request, body: bytes) -> bool:
    headers = request.headers
    if provider == "github":
        return _hmac_ok(secret, body, headers.get("x-hub-signature-256"), "sha256=")
    if provider == "gitea":
        return _hmac_ok(secret, body, headers.get("x-gitea-signature"), "")
    if provider == "bitbucket":
        return _hmac_ok(secret, body, headers.get("x-hub-signature"), "sha256=")
    token = headers.get("x-gitlab-token")
    return token is not None and hmac.compare_digest(secret.encode("utf-8"), token.encode("utf-8", errors="replace"))


def _bad(message: str) -> ApiError:
    return ApiError(400, f"malformed webhook payload: {message}")


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _strings(values: Iterable[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str) and v.strip()]


def _repo_urls(provider: str, payload: Mapping[str, Any]) -> list[str]:
    if provider in ("github", "gitea"):
        repo = payload.get("repository")
        urls = _strings(_get(repo, k) for k in ("html_url", "clone_url", "ssh_url"))
    elif provider == "gitlab":
        project = payload.get("project")
        urls = _strings(_get(project, k) for k in ("web_url", "git_http_url", "git_ssh_url"))
    else:
        repo = payload.get("repository")
        clone = _get(repo, "links", "clone")
        urls = _strings([_get(repo, "links", "html", "href")])
        if isinstance(clone, list):
            urls += _strings(_get(c, "href") for c in clone)
        elif clone is not None:
            raise _bad("repository.links.clone must be a list")
    if not urls:
        raise _bad("no repository URL (repository / project fields missing or not strings)")
    return list(dict.fromkeys(urls))


def _revision(provider: str, payload: Mapping[str, Any]) -> str:
    """A hint only (e.g. ``refs/heads/main``): the reconciler resolves the app's own target revision."""
    if provider in ("github", "gitea", "gitlab"):
        ref = payload.get("ref")
        return ref if isinstance(ref, str) else ""
    changes = _get(payload, "push", "changes")
    if changes is None:
        changes = payload.get("changes")
    if changes is None:
        return ""
    if not isinstance(changes, list):
        raise _bad("changes must be a list")
    for change in changes:
        name = _get(change, "new", "name") or _get(change, "ref", "displayId")
        if isinstance(name, str):
            return name
    return ""


def _coalesce(state: AppState, urls: list[str]) -> tuple[list[str], list[str]]:
    window = state.services.webhook_coalesce_seconds
    now = time.monotonic()
    fresh, coalesced = [], []
    with state.webhook_lock:
        for url in urls:
            key = url.strip().lower().removesuffix(".git")
            last = state.webhook_seen.get(key)
            if last is not None and now - last < window:
                coalesced.append(url)
            else:
                state.webhook_seen[key] = now
                fresh.append(url)
        if len(state.webhook_seen) > 10_000:  # forget old entries; only the coalescing window matters
            state.webhook_seen = {k: v for k, v in state.webhook_seen.items() if now - v < window}
    return fresh, coalesced


def _process(state: AppState, provider: str, event: str, payload: Any, ctx: audit.AuditContext) -> WebhookResult:
    if not isinstance(payload, Mapping):
        raise _bad("the payload must be a JSON object")
    urls = _repo_urls(provider, payload)
    revision = _revision(provider, payload)
    fresh, coalesced = _coalesce(state, urls)
    if state.services.refresh is not None:
        for url in fresh:
            state.services.refresh(url, revision)
    state.store.audit.append(audit.AuditEvent.create(
        ctx=ctx, time=state.now(), action="webhook.push", result="ok", object=urls[0],
        details={"provider": provider, "event": event, "revision": revision, "refreshed": fresh,
                 "coalesced": coalesced}))
    return WebhookResult(provider=provider, event=event, refreshed=fresh, coalesced=coalesced)


@router.post("/api/webhook", status_code=202, response_model=WebhookResult,
             responses=_RESPONSES)
async def webhook(request: Request, state: StateDep) -> WebhookResult:
    """Receive a push event; refresh the matching apps (never sync a revision from the payload)."""
    provider, event = _provider(request)
    body = await request.body()
    secret = state.services.webhook_secrets.get(provider)
    if not secret:
        state.metrics.webhook_events.labels(provider, "unconfigured").inc()
        raise ApiError(401, f"no webhook secret is configured for {provider}; the event was refused")
    if not _verify(provider, secret, request, body):
        state.metrics.webhook_events.labels(provider, "bad-signature").inc()
        raise ApiError(401, "the webhook signature is missing or does not match")
    if event not in _PUSH_EVENTS[provider]:
        state.metrics.webhook_events.labels(provider, "ignored").inc()
        return WebhookResult(provider=provider, event=event[:64], ignored="not a push event")
    try:
        payload = yamlsafe.loads_json(body, source="webhook payload", limits=_LIMITS)
    except yamlsafe.YamlError as exc:
        state.metrics.webhook_events.labels(provider, "malformed").inc()
        raise _bad(exc.detail) from None
    ctx = audit.AuditContext(subject=f"webhook:{provider}", client=client_of(request),
                             request_id=request_id_of(request))
    try:
        result = await run_in_threadpool(_process, state, provider, event, payload, ctx)
    except ApiError:
        state.metrics.webhook_events.labels(provider, "malformed").inc()
        raise
    state.metrics.webhook_events.labels(provider, "refreshed").inc()
    return result
