"""Benchmark: rendering 200 apps that share 10 Git repositories, cached vs naive, in the same run.

Run: ``python -m bench.render [--apps 200] [--repos 10]``. Prints figures; asserts nothing.

* cached: one :class:`sync.render.Renderer` (bare mirrors, one ls-remote per repo per interval, read-only
  trees, render cache). A warm-up pass renders everything once; then the steady-state pass (within the
  ls-remote interval) is timed, and so is a poll pass after the interval (new ls-remote per repo, no new
  commits) and a pass after a commit that touches one app in each repo.
* naive: per app, ``git clone --depth 1`` into a temp dir and parse its YAML with PyYAML's pure-Python
  ``SafeLoader`` (what a first implementation would do).

"git processes" counts the git commands each side starts (not the helpers git itself spawns).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import yaml  # the naive baseline only; syncwarden itself parses through config.yamlsafe

from config.settings import SyncSettings
from sync.models import Application
from sync.render import Renderer

GIT_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
    "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com",
}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def app_files(name: str, replicas: int = 2) -> dict[str, str]:
    return {
        "deployment.yaml": (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\n"
            f"spec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n"
            f"    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n"
            f"      - name: main\n        image: nginx:1.25\n        ports: [{{containerPort: 80}}]\n"
            f"        env:\n" + "".join(f"        - {{name: VAR_{i}, value: 'value-{i}'}}\n" for i in range(20))
        ),
        "service.yaml": (
            f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector: {{app: {name}}}\n"
            f"  ports: [{{port: 80, targetPort: 80}}]\n"
        ),
        "config.yaml": (
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\ndata:\n"
            + "".join(f"  key{i}: value-{i}\n" for i in range(30))
        ),
    }


def build_repos(root: Path, n_repos: int, apps_per_repo: int) -> list[Path]:
    repos = []
    for r in range(n_repos):
        repo = root / f"repo-{r:02}"
        repo.mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        for a in range(apps_per_repo):
            app_dir = repo / "apps" / f"app-{a:02}"
            app_dir.mkdir(parents=True)
            for name, text in app_files(f"r{r}-a{a}").items():
                (app_dir / name).write_text(text)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "initial")
        repos.append(repo)
    return repos


def applications(repos: list[Path], apps_per_repo: int) -> list[Application]:
    apps = []
    for r, repo in enumerate(repos):
        for a in range(apps_per_repo):
            apps.append(Application.from_dict({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": f"r{r}-a{a}"},
                "spec": {"source": {"repoURL": f"file://{repo}", "path": f"apps/app-{a:02}",
                                    "targetRevision": "main"},
                         "destination": {"server": "https://kubernetes.default.svc", "namespace": f"ns-{r}"}},
            }))
    return apps


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def timed_pass(renderer: Renderer, apps: list[Application]) -> tuple[float, int, int]:
    before = renderer.repos.git_processes
    started = time.perf_counter()
    objects = sum(len(renderer.render(app).manifests) for app in apps)
    return time.perf_counter() - started, renderer.repos.git_processes - before, objects


def naive_pass(apps: list[Application], work: Path) -> tuple[float, int, int]:
    started = time.perf_counter()
    processes = 0
    objects = 0
    for i, app in enumerate(apps):
        target = work / f"clone-{i}"
        subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", app.source.target_revision, "--",
                        app.source.repo_url, str(target)], env=GIT_ENV, check=True, capture_output=True)
        processes += 1
        for path in sorted((target / app.source.path).glob("*.yaml")):
            for doc in yaml.load_all(path.read_text(), Loader=yaml.SafeLoader):
                if isinstance(doc, dict):
                    objects += 1
    return time.perf_counter() - started, processes, objects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--repos", type=int, default=10)
    args = parser.parse_args()
    per_repo = max(args.apps // args.repos, 1)
    with tempfile.TemporaryDirectory(prefix="syncwarden-bench-") as tmp:
        root = Path(tmp)
        repos = build_repos(root / "origin", args.repos, per_repo)
        apps = applications(repos, per_repo)
        clock = Clock()
        settings = SyncSettings(allow_file_urls=True, ls_remote_interval_seconds=60)
        renderer = Renderer.create(settings=settings, cache_dir=root / "cache", clock=clock)

        warm = timed_pass(renderer, apps)
        steady = timed_pass(renderer, apps)
        clock.now += 61
        poll = timed_pass(renderer, apps)
        for repo in repos:
            (repo / "apps" / "app-00" / "config.yaml").write_text(app_files("changed")["config.yaml"])
            git(repo, "commit", "-q", "-am", "touch one app")
        clock.now += 61
        one_changed = timed_pass(renderer, apps)
        naive = naive_pass(apps, root / "naive")

    print(f"apps={len(apps)} repos={len(repos)} (objects per pass: cached {steady[2]}, naive {naive[2]})")
    print(f"{'pass':<34}{'seconds':>10}{'git processes':>16}{'ms/app':>10}")
    rows = [
        ("cached: first render (cold)", warm),
        ("cached: steady state", steady),
        ("cached: poll after interval", poll),
        ("cached: 1 app/repo changed", one_changed),
        ("naive: clone + SafeLoader per app", naive),
    ]
    for label, (seconds, processes, _) in rows:
        print(f"{label:<34}{seconds:>10.3f}{processes:>16}{1000 * seconds / len(apps):>10.2f}")
    print(f"ratio naive/steady-state: {naive[0] / max(steady[0], 1e-9):.1f}x time, "
          f"{naive[1]} vs {steady[1]} git processes")
    print(f"ratio naive/poll-after-interval: {naive[0] / max(poll[0], 1e-9):.1f}x time, "
          f"{naive[1]} vs {poll[1]} git processes")
    print(f"render cache: {renderer.cache.hits} hits, {renderer.cache.misses} misses")


if __name__ == "__main__":
    main()
