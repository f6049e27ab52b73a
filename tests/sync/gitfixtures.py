"""Real Git repositories in temp dirs, with the layouts users have, for the source and render tests.

Layouts: a plain directory app, a Kustomize base with dev and prd overlays, a Helm chart with
values-dev.yaml and values-prd.yaml, and manifests with sync waves and PreSync/PostSync hooks.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


class GitRepo:
    """A working repository; ``url`` is its ``file://`` URL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def git(self, *args: str) -> str:
        result = subprocess.run(["git", *args], cwd=self.path, env=_ENV, capture_output=True, text=True, check=True)
        return result.stdout.strip()

    def write(self, files: dict[str, str]) -> None:
        for rel, text in files.items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def symlink(self, rel: str, target: str) -> None:
        link = self.path / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


def deployment(name: str, *, image: str = "nginx:1.25", replicas: int = 1, annotations: str = "") -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
{annotations}spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: {image}
"""


def service(name: str) -> str:
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80}}]
"""


PLAIN = {
    "apps/plain/deployment.yaml": deployment("web"),
    "apps/plain/service.yaml": service("web"),
    "apps/plain/README.md": "# not a manifest\n",
    "apps/plain/ci-values.yaml": "replicas: 3\nimage: nginx\n",
    "apps/plain/nested/config.yml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config}\ndata: {a: b}\n",
    "apps/plain/nested/list.json": '{"apiVersion": "v1", "kind": "List", "items": ['
    '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-list"}}]}',
}

KUSTOMIZE = {
    "kustomize/base/kustomization.yaml": "resources:\n- deployment.yaml\n- service.yaml\n",
    "kustomize/base/deployment.yaml": deployment("guestbook"),
    "kustomize/base/service.yaml": service("guestbook"),
    "kustomize/overlays/dev/kustomization.yaml": (
        "resources:\n- ../../base\nnamePrefix: dev-\n"
        "patches:\n- target: {kind: Deployment, name: guestbook}\n"
        "  patch: |-\n    - op: replace\n      path: /spec/replicas\n      value: 1\n"
    ),
    "kustomize/overlays/prd/kustomization.yaml": (
        "resources:\n- ../../base\nnamePrefix: prd-\n"
        "patches:\n- target: {kind: Deployment, name: guestbook}\n"
        "  patch: |-\n    - op: replace\n      path: /spec/replicas\n      value: 5\n"
    ),
}

HELM = {
    "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    "charts/web/values.yaml": "replicas: 1\nimage: {repository: nginx, tag: '1.25'}\nenv: base\n",
    "charts/web/values-dev.yaml": "env: dev\n",
    "charts/web/values-prd.yaml": "env: prd\nreplicas: 4\n",
    "charts/web/templates/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\n"
        "  namespace: {{ .Release.Namespace }}\n  labels: {env: {{ .Values.env | quote }}}\n"
        "spec:\n  replicas: {{ .Values.replicas }}\n  template:\n    spec:\n      containers:\n"
        '      - name: web\n        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"\n'
    ),
    "charts/web/templates/migrate-hook.yaml": (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-migrate\n"
        "  annotations:\n    argocd.argoproj.io/hook: PreSync\nspec:\n  template:\n    spec:\n"
        "      restartPolicy: Never\n      containers: [{name: m, image: busybox}]\n"
    ),
    "charts/web/templates/NOTES.txt": "Installed {{ .Release.Name }}\n",
}

HOOKS = {
    "apps/hooks/00-namespace.yaml": (
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
        "  annotations: {argocd.argoproj.io/sync-wave: '-1'}\n"
    ),
    "apps/hooks/db-migrate.yaml": (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: db-migrate-\n"
        "  annotations:\n    argocd.argoproj.io/hook: PreSync\n"
        "    argocd.argoproj.io/hook-delete-policy: HookSucceeded\nspec: {}\n"
    ),
    "apps/hooks/app.yaml": deployment("shop", annotations="  annotations: {argocd.argoproj.io/sync-wave: '2'}\n"),
    "apps/hooks/smoke-test.yaml": (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: smoke-test\n"
        "  annotations: {argocd.argoproj.io/hook: PostSync}\nspec: {}\n"
    ),
}


def make_repo(path: Path, *layouts: dict[str, str]) -> GitRepo:
    repo = GitRepo(path)
    for layout in layouts:
        repo.write(layout)
    repo.commit("initial")
    return repo


def application(
    repo_url: str, path: str, *, revision: str = "main", name: str = "demo", namespace: str = "demo"
) -> dict[str, object]:
    """An Application manifest as a dict, for a source at ``path`` of ``repo_url``."""
    source: dict[str, object] = {"repoURL": repo_url, "path": path, "targetRevision": revision}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": source,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
        },
    }
