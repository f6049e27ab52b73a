"""Kustomize overlays and Helm value files per environment, synced through the real CLI into the sandbox:
one app per environment, each landing in its own namespace with its own replicas, names and labels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.e2ekit import E2E, application, e2e
from tests.sync.gitfixtures import HELM, KUSTOMIZE, make_repo

CREATE_NS = {"syncOptions": ["CreateNamespace=true"]}


@pytest.fixture
def k(tmp_path: Path) -> Iterator[E2E]:
    yield from e2e(tmp_path)


def test_kustomize_dev_and_prd_overlays(k: E2E, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", KUSTOMIZE)
    for env in ("dev", "prd"):
        app = application(repo, f"kustomize/overlays/{env}", name=f"guestbook-{env}", namespace=f"gb-{env}",
                          sync_policy=CREATE_NS)
        assert k.app_cmd("create", "-f", k.write(f"{env}.yaml", app))[0] == 0
        code, out, err = k.app_cmd("sync", f"guestbook-{env}", "-o", "json")
        assert code == 0, out + err
        assert json.loads(out)["phase"] == "Succeeded"

    dev = k.live("Deployment", "dev-guestbook", "gb-dev", "apps")
    prd = k.live("Deployment", "prd-guestbook", "gb-prd", "apps")
    assert dev is not None and dev["spec"]["replicas"] == 1
    assert prd is not None and prd["spec"]["replicas"] == 5
    assert k.live("Service", "prd-guestbook", "gb-prd") is not None

    code, out, _ = k.app_cmd("list", "-o", "json")
    assert code == 0
    assert {(a["metadata"]["name"], a["status"]["sync"]["status"]) for a in json.loads(out)} == {
        ("guestbook-dev", "Synced"), ("guestbook-prd", "Synced")}


def test_helm_chart_per_environment(k: E2E, tmp_path: Path) -> None:
    chart = dict(HELM)
    # a complete Deployment (the cluster requires a selector and matching pod labels)
    chart["charts/web/templates/deployment.yaml"] = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\n"
        "  labels: {env: {{ .Values.env | quote }}}\n"
        "spec:\n  replicas: {{ .Values.replicas }}\n  selector: {matchLabels: {app: web}}\n"
        "  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n"
        '      - name: web\n        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"\n'
    )
    repo = make_repo(tmp_path / "repo", chart)
    for env, replicas in (("dev", 1), ("prd", 4)):
        app = application(repo, "charts/web", name=f"web-{env}", namespace=f"web-{env}", sync_policy=CREATE_NS,
                          source={"helm": {"valueFiles": [f"values-{env}.yaml"]}})
        assert k.app_cmd("create", "-f", k.write(f"{env}.yaml", app))[0] == 0
        code, out, err = k.app_cmd("sync", f"web-{env}")
        assert code == 0, out + err
        assert "PreSync" in out and f"web-{env}-migrate" in out  # the chart's PreSync hook ran first
        live = k.live("Deployment", f"web-{env}-web", f"web-{env}", "apps")
        assert live is not None
        assert live["metadata"]["labels"]["env"] == env and live["spec"]["replicas"] == replicas
