"""The metrics the reconciler will feed: one ``syncwarden_app_info`` series per app (old labels replaced), sync
totals by phase, and registries that are private to each app instance."""

from __future__ import annotations

from prometheus_client import generate_latest

from api.routes.metrics import Metrics


def test_app_info_keeps_one_series_per_app_and_sync_totals_count() -> None:
    metrics = Metrics()
    metrics.set_app_info(name="guestbook", project="web", dest_server="https://k", dest_namespace="web",
                         sync_status="OutOfSync", health_status="Healthy")
    metrics.set_app_info(name="guestbook", project="web", dest_server="https://k", dest_namespace="web",
                         sync_status="Synced", health_status="Healthy")
    metrics.count_sync(name="guestbook", project="web", phase="Succeeded")
    metrics.count_sync(name="guestbook", project="web", phase="Succeeded")
    text = generate_latest(metrics.registry).decode()
    assert text.count("syncwarden_app_info{") == 1 and 'sync_status="Synced"' in text
    assert 'syncwarden_app_sync_total{name="guestbook",phase="Succeeded",project="web"} 2.0' in text
    metrics.remove_app("guestbook")
    assert "syncwarden_app_info{" not in generate_latest(metrics.registry).decode()
    assert "syncwarden_app_sync_total{" not in generate_latest(Metrics().registry).decode()
