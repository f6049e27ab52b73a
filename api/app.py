"""The HTTP API's app factory: :func:`create_app` builds a FastAPI app from settings; nothing is module-level.

Who calls: ``syncwarden serve`` (later) and the tests (``TestClient(create_app(settings))``). The lifespan
opens the policy store (SQLite in the data directory or PostgreSQL), loads the token signing keys, creates the
``default`` project and the ``admin`` account when missing, and puts an :class:`api.state.AppState` on
``app.state.syncwarden``; on shutdown it drains the audit writer and closes the store (unless the store was
injected through :class:`api.state.Services`, then its owner closes it).

Routes that answer without a token (LEAK-04): ``/healthz``, ``/readyz``, ``/metrics``, ``POST
/api/v1/session`` and ``/api/webhook`` (authenticated by its signature), plus the OpenAPI document and docs.
Every other route has a :func:`api.deps.require` dependency.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from api import errors
from api.auth import bootstrap_admin
from api.middleware import GuardMiddleware
from api.routes import (
    admission,
    applications,
    audit_routes,
    metrics,
    project_tokens,
    project_windows,
    projects,
    session,
    webhook,
)
from api.state import AppState, PolicyCache, Services
from config.settings import Settings
from policy import audit
from policy import tokens as token_crypto
from policy.errors import ConflictError
from policy.project import default_project
from policy.store import Store, open_store
from policy.store.accounts import AccountStore

__all__ = ["PUBLIC_ROUTES", "create_app"]

log = logging.getLogger(__name__)

#: (method, path) pairs that answer without authentication; every other route needs a token
PUBLIC_ROUTES = frozenset({
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("POST", "/api/v1/session"),
    ("POST", "/api/webhook"), ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
})


def _open_store(settings: Settings, *, verify_cache_seconds: float) -> Store:
    secret = settings.policy.signing_key.get_secret_value() if settings.policy.signing_key else None
    keyring = token_crypto.load_keyring(signing_key=secret, data_dir=settings.data_dir)
    return open_store(
        settings.database_url(),
        keyring=keyring,
        issuer=settings.policy.token_issuer,
        audience=settings.policy.token_audience,
        pool_size=settings.database.pool_size,
        verify_cache_seconds=verify_cache_seconds,
    )


def _ensure_default_project(state: AppState) -> None:
    if state.store.projects.find("default") is not None:
        return
    ctx = audit.AuditContext(subject="syncwarden", client="server")
    with contextlib.suppress(ConflictError):  # another replica created it first
        state.store.projects.create(default_project().to_dict(), ctx=ctx, now=state.now(), source="built-in default")


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """A new API app for ``settings``; ``services`` replaces collaborators (clock, refresh, store, costs)."""
    chosen = services or Services(request_timeout=settings.api.request_timeout_seconds)
    if not chosen.webhook_secrets:  # injected secrets win; otherwise the settings' (env or config file)
        secrets: dict[str, str] = {k: v.get_secret_value() for k, v in settings.api.webhook_secrets.items()}
        chosen = dataclasses.replace(chosen, webhook_secrets=secrets)
    metrics_holder = metrics.Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = chosen.store or _open_store(settings, verify_cache_seconds=chosen.policy_refresh_seconds)
        try:
            state = AppState(
                settings=settings,
                services=chosen,
                store=store,
                accounts=AccountStore(store.engine),
                policy=chosen.policy or PolicyCache(store, interval=chosen.policy_refresh_seconds),
                metrics=metrics_holder,
                dummy_hash=chosen.hasher.dummy_hash(),
            )
            if chosen.create_default_project:
                _ensure_default_project(state)
            bootstrap_admin(state)
            forget = timedelta(seconds=chosen.throttle.reset_after_seconds)
            state.accounts.purge_throttle(older_than=state.now() - forget)
            app.state.syncwarden = state
            app.state.metrics = metrics_holder
            yield
        finally:
            if chosen.store is None:
                store.close()

    app = FastAPI(
        title="syncwarden",
        version="1",
        description="GitOps delivery with an Argo CD-compatible project policy layer.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics_holder
    errors.install(app)
    applications.install(app)
    for router in (
        session.router, projects.router, project_tokens.router, project_windows.router, audit_routes.router,
        admission.router, webhook.router, metrics.router, applications.router,
    ):
        app.include_router(router)
    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=settings.api.max_body_bytes,
        timeout=chosen.request_timeout,
        observe=metrics_holder.observe_request,
    )
    return app
