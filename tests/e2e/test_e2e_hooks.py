"""Waves and hooks through the real CLI against the sandbox: PreSync and PostSync Jobs around waves of the
Sync phase, in the exact order of the sandbox's request log; a failing PreSync hook runs the SyncFail hook,
never applies the Sync phase, and the command exits 1 with the cause; ``app delete`` of an app whose PreDelete
hook fails deletes nothing, exits 3 naming the failure, and ``app get`` shows the DeletionError."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.e2ekit import E2E, application, e2e
from tests.sync.gitfixtures import HOOKS, make_repo

JOBS = "/apis/batch/v1/namespaces/shop/jobs"
CONFIGMAPS = "/api/v1/namespaces/shop/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/shop/deployments/shop"
WAVE_1 = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
    "  annotations: {argocd.argoproj.io/sync-wave: '1'}\ndata: {mode: live}\n"
)


@pytest.fixture
def k(tmp_path: Path) -> Iterator[E2E]:
    yield from e2e(tmp_path)


def _writes(k: E2E) -> list[tuple[str, str]]:
    """The request log's writes, with the generated hook name (``db-migrate-<hash>``) made stable; the merge patch
    that takes the hook finalizer off a completed hook shows as ``unhold``."""
    return [("unhold" if r.body_summary.startswith("application/merge-patch") else r.verb,
             re.sub(r"/db-migrate-[a-z0-9-]+$", "/db-migrate-*", r.path)) for r in k.sb.requests.writes()]


def test_presync_waves_postsync_in_order(k: E2E, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", HOOKS, {"apps/hooks/settings.yaml": WAVE_1})
    app = application(repo, "apps/hooks", name="shop", namespace="shop")
    assert k.app_cmd("create", "-f", k.write("app.yaml", app))[0] == 0
    k.sb.requests.clear()

    code, out, err = k.app_cmd("sync", "shop")

    assert code == 0, out + err
    assert out.splitlines()[-1] == "syncwarden/shop: Succeeded: successfully synced (no more tasks)"
    assert "waiting for completion of hook batch/Job/smoke-test" in out
    assert _writes(k) == [
        ("patch", "/api/v1/namespaces/shop"),  # the Git-defined destination namespace, before anything else
        # the server dry-run of everything the operation may write
        ("patch", f"{JOBS}/db-migrate-*"), ("patch", f"{CONFIGMAPS}/settings"), ("patch", DEPLOY),
        ("patch", f"{JOBS}/smoke-test"),
        # PreSync hook (its hook finalizer taken off once it completed), then wave 1, then wave 2, then the
        # PostSync hook
        ("patch", f"{JOBS}/db-migrate-*"), ("unhold", f"{JOBS}/db-migrate-*"),
        ("patch", f"{CONFIGMAPS}/settings"),
        ("patch", DEPLOY),
        ("patch", f"{JOBS}/smoke-test"), ("unhold", f"{JOBS}/smoke-test"),
        ("delete", f"{JOBS}/db-migrate-*"),  # hook-delete-policy HookSucceeded
    ]
    smoke = k.live("Job", "smoke-test", "shop", "batch")
    assert smoke is not None  # no delete policy: kept, and no longer held by the hook finalizer
    assert "argocd.argoproj.io/hook-finalizer" not in (smoke["metadata"].get("finalizers") or [])


FAILING = {
    "apps/failing/migrate.yaml": (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n"
        "    argocd.argoproj.io/hook: PreSync\n    sandbox.syncwarden.io/fail: 'true'\nspec: {backoffLimit: 0}\n"
    ),
    "apps/failing/notify.yaml": (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: notify\n"
        "  annotations: {argocd.argoproj.io/hook: SyncFail}\nspec: {}\n"
    ),
    "apps/failing/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config}\ndata: {a: b}\n",
}


def test_failing_hook_runs_sync_fail_and_stops(k: E2E, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", FAILING)
    app = application(repo, "apps/failing", name="shop", namespace="shop",
                      sync_policy={"syncOptions": ["CreateNamespace=true"]})
    assert k.app_cmd("create", "-f", k.write("app.yaml", app))[0] == 0
    k.sb.requests.clear()

    code, out, _ = k.app_cmd("sync", "shop")

    assert code == 1
    assert "running SyncFail hooks" in out
    assert out.splitlines()[-1].startswith("syncwarden/shop: Failed: ")
    assert _writes(k) == [
        ("patch", "/api/v1/namespaces/shop"),
        ("patch", f"{JOBS}/migrate"), ("patch", f"{CONFIGMAPS}/config"), ("patch", f"{JOBS}/notify"),  # dry-run
        ("patch", f"{JOBS}/migrate"), ("unhold", f"{JOBS}/migrate"),  # the PreSync hook, which fails
        ("patch", f"{JOBS}/notify"), ("unhold", f"{JOBS}/notify"),  # the SyncFail hook
    ]
    assert k.live("ConfigMap", "config", "shop") is None  # the Sync phase never ran
    failed = [r for r in k.audit("--app", "shop", "--action", "app.sync.failed")]
    assert len(failed) == 1 and failed[0]["actor"]["subject"].startswith("local:")


PRE_DELETE_FAILS = {
    "apps/guarded/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config}\ndata: {a: b}\n",
    "apps/guarded/backup.yaml": (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: backup\n  annotations:\n"
        "    argocd.argoproj.io/hook: PreDelete\n    sandbox.syncwarden.io/fail: 'true'\nspec: {backoffLimit: 0}\n"
    ),
}


def test_delete_with_a_failing_predelete_hook_deletes_nothing(k: E2E, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", PRE_DELETE_FAILS)
    app = application(repo, "apps/guarded", name="shop", namespace="default")
    assert k.app_cmd("create", "-f", k.write("app.yaml", app))[0] == 0
    assert k.app_cmd("sync", "shop")[0] == 0
    code, out, err = k.app_cmd("get", "shop", "--refresh", "-o", "json")  # the comparison adds the finalizers
    assert code == 0, err
    assert "pre-delete-finalizer.argocd.argoproj.io" in json.loads(out)["metadata"]["finalizers"]

    code, _, err = k.app_cmd("delete", "shop", "--timeout", "3")
    assert code == 3
    assert "still being deleted" in err and "PreDelete hook(s) failed: default/backup" in err
    assert k.live("ConfigMap", "config", "default") is not None  # nothing of the app was deleted
    code, out, _ = k.app_cmd("get", "shop")
    assert code == 0 and "Condition:     DeletionError: PreDelete hook(s) failed: default/backup" in out
