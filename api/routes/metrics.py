"""``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``, and the :class:`Metrics` that feed them.

Who feeds what: :mod:`api.deps` counts every RBAC decision by result, :mod:`api.middleware` observes every
request's latency, and the reconciler (wired later by ``syncwarden serve``) calls :meth:`Metrics.set_app_info`
and :meth:`Metrics.count_sync`. Each app instance has its own registry (no process-global state), so several
apps in one process (tests) never share counters.

These three routes answer without authentication (LEAK-04 allow-list); they expose no secrets: counts, route
templates, and app/project names.
"""

from __future__ import annotations

import threading
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel

__all__ = ["Health", "Metrics", "router"]

#: seconds; the admission benchmark targets p99 <= 10 ms, so the low buckets are fine-grained
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "syncwarden_policy_decisions_total", "Policy decisions by resource, action and result.",
            ("resource", "action", "result"), registry=self.registry,
        )
        self.request_latency = Histogram(
            "syncwarden_http_request_duration_seconds", "HTTP request latency by method, route template and status.",
            ("method", "route", "status"), buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.app_info = Gauge(
            "syncwarden_app_info", "Information about an application (Argo CD argocd_app_info).",
            ("name", "project", "dest_server", "dest_namespace", "sync_status", "health_status"),
            registry=self.registry,
        )
        self.app_sync_total = Counter(
            "syncwarden_app_sync_total", "Sync operations by app and final phase (Argo CD argocd_app_sync_total).",
            ("name", "project", "phase"), registry=self.registry,
        )
        self._lock = threading.Lock()
        self._app_labels: dict[str, tuple[str, ...]] = {}
        self.webhook_events = Counter(
            "syncwarden_webhook_events_total", "Git webhook deliveries by provider and outcome.",
            ("provider", "outcome"), registry=self.registry,
        )

    def count_decision(self, resource: str, action: str, allowed: bool) -> None:
        self.decisions.labels(resource, action, "allowed" if allowed else "denied").inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.request_latency.labels(method, route, str(status)).observe(seconds)

    def set_app_info(
        self, *, name: str, project: str, dest_server: str, dest_namespace: str, sync_status: str,
        health_status: str,
    ) -> None:
        """One series per app: the app's previous label values are removed first."""
        labels = (name, project, dest_server, dest_namespace, sync_status, health_status)
        with self._lock:
            previous = self._app_labels.get(name)
            if previous is not None and previous != labels:
                self.app_info.remove(*previous)
            self._app_labels[name] = labels
            self.app_info.labels(*labels).set(1)

    def remove_app(self, name: str) -> None:
        with self._lock:
            previous = self._app_labels.pop(name, None)
            if previous is not None:
                self.app_info.remove(*previous)

    def count_sync(self, *, name: str, project: str, phase: str) -> None:
        self.app_sync_total.labels(name, project, phase).inc()


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request) -> Response:
    """Prometheus text exposition of this server's metrics."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(request: Request, response: Response) -> Health:
    """Readiness: the database answers a query and the audit log accepts records."""
    checks: dict[str, str] = {}
    state = request.app.state.syncwarden
    try:
        with state.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except sa.exc.SQLAlchemyError as exc:
        checks["database"] = f"unavailable ({type(exc).__name__})"
    checks["audit"] = "ok" if not getattr(state.store.audit, "_closed", False) else "closed"
    ready = all(v == "ok" for v in checks.values())
    if not ready:
        response.status_code = 503
    return Health(status="ok" if ready else "unavailable", checks=checks)
