"""Fidelity with an independent client, Debian's kubectl: discovery (api-resources, short names),
``apply --validate=false`` (create, then configure with a generation bump), ``get -o yaml``, label
selectors, ``delete`` (also ``--dry-run=server``), a CRD and its custom objects, and ``apply --server-side`` conflicts between
field managers (refused, then taken over with ``--force-conflicts``). Skipped without kubectl."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import sandbox
from config import yamlsafe

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
]

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

MANIFESTS = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: web, tier: front}
data:
  mode: fast
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: REPLICAS
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: other
  labels: {app: api}
data: {}
"""


@pytest.fixture
def kubectl(tmp_path: Path) -> Iterator[Kubectl]:
    with sandbox.start() as sb:
        config = sb.write_kubeconfig(tmp_path / "kubeconfig")

        def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
            argv = ["kubectl", f"--kubeconfig={config}", f"--cache-dir={tmp_path / 'cache'}", *args]
            result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60, check=False)
            if check:
                assert result.returncode == 0, f"{argv}: {result.stderr}"
            return result

        yield run


def _manifests(replicas: int) -> str:
    return MANIFESTS.replace("REPLICAS", str(replicas))


def test_api_resources(kubectl: Kubectl) -> None:
    out = kubectl("api-resources", "--no-headers").stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    assert rows["deployments"][1:] == ["deploy", "apps/v1", "true", "Deployment"]
    assert rows["clusterroles"][1:] == ["rbac.authorization.k8s.io/v1", "false", "ClusterRole"]


def test_apply_get_yaml_and_reapply(kubectl: Kubectl) -> None:
    created = kubectl("apply", "--validate=false", "-f", "-", stdin=_manifests(2)).stdout
    assert "deployment.apps/web created" in created and "configmap/settings created" in created
    live = yamlsafe.load_one(kubectl("get", "deploy", "web", "-o", "yaml").stdout, source="kubectl")
    assert live["spec"]["replicas"] == 2 and live["metadata"]["generation"] == 1
    assert live["metadata"]["namespace"] == "default" and live["metadata"]["uid"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in live["metadata"]["annotations"]
    again = kubectl("apply", "--validate=false", "-f", "-", stdin=_manifests(2)).stdout
    assert "deployment.apps/web unchanged" in again
    changed = kubectl("apply", "--validate=false", "-f", "-", stdin=_manifests(4)).stdout
    assert "deployment.apps/web configured" in changed
    live = yamlsafe.load_one(kubectl("get", "deployment", "web", "-o", "yaml").stdout, source="kubectl")
    assert live["spec"]["replicas"] == 4 and live["metadata"]["generation"] == 2


def test_label_selectors(kubectl: Kubectl) -> None:
    kubectl("apply", "--validate=false", "-f", "-", stdin=_manifests(1))
    assert kubectl("get", "cm", "-l", "app=web", "-o", "name").stdout.split() == ["configmap/settings"]
    assert kubectl("get", "cm", "-l", "app in (web,api)", "-o", "name").stdout.split() == [
        "configmap/other", "configmap/settings"]
    assert kubectl("get", "cm", "-l", "!tier", "-o", "name").stdout.split() == ["configmap/other"]
    assert kubectl("get", "cm", "-l", "app!=web", "-o", "name").stdout.split() == ["configmap/other"]
    listed = yamlsafe.load_one(kubectl("get", "configmaps", "-l", "tier", "-o", "yaml").stdout, source="kubectl")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["settings"]


def test_delete(kubectl: Kubectl) -> None:
    kubectl("apply", "--validate=false", "-f", "-", stdin=_manifests(1))
    assert "server dry run" in kubectl("delete", "configmap", "settings", "--dry-run=server").stdout
    assert kubectl("get", "configmap", "settings", "-o", "name").stdout.strip() == "configmap/settings"
    assert 'configmap "settings" deleted' in kubectl("delete", "configmap", "settings").stdout
    missing = kubectl("get", "configmap", "settings", check=False)
    assert missing.returncode == 1 and "NotFound" in missing.stderr
    out = kubectl("delete", "--ignore-not-found", "-f", "-", stdin=_manifests(1)).stdout
    assert 'deployment.apps "web" deleted' in out
    assert kubectl("get", "deploy,cm", "-o", "name").stdout.split() == []


def test_crd_and_custom_objects(kubectl: Kubectl) -> None:
    crd = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""
    kubectl("apply", "--validate=false", "-f", "-", stdin=crd)
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n"
    assert "widget.example.com/w1 created" in kubectl("apply", "--validate=false", "-f", "-", stdin=widget).stdout
    assert kubectl("get", "wd", "-o", "name").stdout.split() == ["widget.example.com/w1"]
    resized = kubectl("apply", "--validate=false", "-f", "-", stdin=widget.replace("size: 3", "size: 4")).stdout
    assert "widget.example.com/w1 configured" in resized
    live = yamlsafe.load_one(kubectl("get", "widget", "w1", "-o", "yaml").stdout, source="kubectl")
    assert live["spec"] == {"size": 4} and live["metadata"]["generation"] == 2
    kubectl("delete", "crd", "widgets.example.com")
    gone = kubectl("get", "widgets", check=False)
    assert gone.returncode != 0


def test_server_side_apply_conflicts(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "--validate=false", "--field-manager=team-a", "-f", "-", stdin=_manifests(2))
    refused = kubectl("apply", "--server-side", "--validate=false", "--field-manager=team-b", "-f", "-", stdin=_manifests(5),
                      check=False)
    assert refused.returncode != 0
    assert "conflict" in refused.stderr.lower() and ".spec.replicas" in refused.stderr
    assert "team-a" in refused.stderr
    live = yamlsafe.load_one(kubectl("get", "deploy", "web", "-o", "yaml", "--show-managed-fields").stdout,
                             source="kubectl")
    assert live["spec"]["replicas"] == 2
    kubectl("apply", "--server-side", "--validate=false", "--field-manager=team-b", "--force-conflicts", "-f", "-",
            stdin=_manifests(5))
    live = yamlsafe.load_one(kubectl("get", "deploy", "web", "-o", "yaml", "--show-managed-fields").stdout,
                             source="kubectl")
    assert live["spec"]["replicas"] == 5
    assert {m["manager"] for m in live["metadata"]["managedFields"]} >= {"team-a", "team-b"}
