"""The automated-sync decision (sync.autosync) and the operation request (sync.oprequest), pure.

Covers (argocd-sync-semantics.md §5.4–§5.6): skip reasons (disabled, enabled: false, operation in progress,
deleting, Synced/Unknown, prune-only without automated prune); the "already attempted" rule keyed by resolved
revisions and spec-source hash (failed ⇒ SyncError, succeeded ⇒ skip, a changed source or revision ⇒ new
attempt); self-heal backoff 0, 2, 6, 18, 54, 162, then 300 s, restricted to non-Synced resources; the empty-sync
guard and allowEmpty; automated retry defaults to limit 5; the request round-trips through its dict form.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync.application import Application
from sync.autosync import SelfHealBackoff, decide, spec_hash
from sync.engine_request import SelectedResource
from sync.oprequest import InvalidRequest, OperationRequest
from sync.store import AutoSyncRecord

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REV = ("a" * 40,)


def app(automated: dict[str, Any] | None = None, *, path: str = "app", retry: dict[str, Any] | None = None) -> Application:
    spec: dict[str, Any] = {
        "source": {"repoURL": "https://example.com/r.git", "path": path, "targetRevision": "main"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
    }
    policy: dict[str, Any] = {}
    if automated is not None:
        policy["automated"] = automated
    if retry is not None:
        policy["retry"] = retry
    if policy:
        spec["syncPolicy"] = policy
    return Application.from_dict({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                                  "metadata": {"name": "web"}, "spec": spec})


def row(name: str, status: str, *, prune: bool = False) -> dict[str, Any]:
    return {"group": "", "kind": "ConfigMap", "namespace": "web", "name": name, "status": status,
            "requiresPruning": prune}


def run(a: Application, *, status: str = "OutOfSync", resources: list[dict[str, Any]] | None = None,
        last: AutoSyncRecord | None = None, now: datetime = T0, in_progress: bool = False,
        deleting: bool = False) -> Any:
    return decide(a, sync_status=status, resources=resources if resources is not None else [row("a", "OutOfSync")],
                  revisions=REV, operation_in_progress=in_progress, deleting=deleting, last=last, now=now,
                  backoff=SelfHealBackoff())


@pytest.mark.parametrize(
    ("automated", "kwargs", "reason"),
    [
        pytest.param(None, {}, "auto-sync is disabled", id="disabled"),
        pytest.param({"enabled": False}, {}, "auto-sync is disabled", id="enabled-false"),
        pytest.param({}, {"in_progress": True}, "another operation is in progress", id="operation"),
        pytest.param({}, {"deleting": True}, "the app is being deleted", id="deleting"),
        pytest.param({}, {"status": "Synced"}, "sync status is Synced", id="synced"),
        pytest.param({}, {"status": "Unknown"}, "sync status is Unknown", id="unknown"),
        pytest.param({}, {"resources": [row("a", "Synced"), row("b", "OutOfSync", prune=True)]},
                     "need to prune extra resources only but automated prune is disabled", id="prune-only"),
    ],
)
def test_skips(automated: dict[str, Any] | None, kwargs: dict[str, Any], reason: str) -> None:
    decision = run(app(automated), **kwargs)
    assert decision.request is None and decision.error == "" and decision.reason == reason


def test_new_revision_starts_an_automated_sync_with_default_retry() -> None:
    decision = run(app({"prune": True}))
    request = decision.request
    assert request is not None
    assert (request.trigger, request.revision, request.prune, request.resources) == ("auto", REV[0], True, ())
    assert request.retry is not None and request.retry.limit == 5
    assert request.automated and request.initiated_by() == {"automated": True}
    assert request.spec_hash == spec_hash(app({"prune": True}))


def test_spec_retry_wins() -> None:
    request = run(app({}, retry={"limit": 2})).request
    assert request is not None and request.retry is not None and request.retry.limit == 2


def _last(phase: str, *, a: Application | None = None, attempts: int = 0, finished: datetime = T0,
          revisions: tuple[str, ...] = REV) -> AutoSyncRecord:
    return AutoSyncRecord(revisions=revisions, spec_hash=spec_hash(a or app({})), attempted_at=T0, phase=phase,
                          message="boom", self_heal_attempts=attempts, last_finished_at=finished)


def test_already_attempted_and_failed_is_a_sync_error() -> None:
    decision = run(app({}), last=_last("Failed"))
    assert decision.request is None
    assert decision.error == f"Failed last sync attempt to {REV[0][:12]}: boom"
    # self-heal does not override a failed attempt
    assert run(app({"selfHeal": True}), last=_last("Error", a=app({"selfHeal": True}))).request is None


def test_already_attempted_and_succeeded_without_self_heal_is_skipped() -> None:
    decision = run(app({}), last=_last("Succeeded"))
    assert decision.request is None and decision.reason.startswith("most recent sync already to")


def test_changed_revision_or_source_is_a_new_attempt() -> None:
    assert run(app({}), last=_last("Failed", revisions=("b" * 40,))).request is not None
    changed = app({}, path="other")
    assert run(changed, last=_last("Failed")).request is not None  # same SHA, different source


@pytest.mark.parametrize(("attempts", "seconds"), [(0, 0), (1, 2), (2, 6), (3, 18), (4, 54), (5, 162), (6, 300),
                                                   (40, 300)])
def test_self_heal_backoff(attempts: int, seconds: float) -> None:
    assert SelfHealBackoff().delay(attempts) == timedelta(seconds=seconds)


def test_self_heal_waits_for_the_backoff_then_syncs_only_what_drifted() -> None:
    a = app({"selfHeal": True})
    resources = [row("a", "Synced"), row("b", "OutOfSync"), row("c", "OutOfSync", prune=True)]
    last = _last("Succeeded", a=a, attempts=2, finished=T0)
    early = run(a, resources=resources, last=last, now=T0 + timedelta(seconds=5))
    assert early.request is None and early.retry_at == T0 + timedelta(seconds=6)
    decision = run(a, resources=resources, last=last, now=T0 + timedelta(seconds=6))
    request = decision.request
    assert request is not None and request.trigger == "self-heal" and request.self_heal_attempts == 3
    assert request.resources == (SelectedResource("", "ConfigMap", "b", "web"), SelectedResource("", "ConfigMap", "c", "web"))
    assert request.selective and request.sync_options_for_engine().skip_hooks


@pytest.mark.parametrize(("allow_empty", "starts"), [(False, False), (True, True)])
def test_empty_sync_guard(allow_empty: bool, starts: bool) -> None:
    decision = run(app({"prune": True, "allowEmpty": allow_empty}), resources=[row("a", "OutOfSync", prune=True)])
    assert (decision.request is not None) is starts
    if not starts:
        assert decision.error.endswith("auto-sync will wipe out all resources")


def test_request_round_trip_and_errors() -> None:
    request = OperationRequest(trigger="rollback", subject="alice", groups=("dev",), revision="abc", prune=True,
                               apply_strategy=True, resources=(SelectedResource("apps", "Deployment", "w", "ns"),),
                               sync_options=("CreateNamespace=true",), sources=({"repoURL": "r", "path": "p"},),
                               override_reason="hotfix", self_heal_attempts=0, spec_hash="h", rollback_id=3)
    assert OperationRequest.from_dict(request.to_dict()) == request
    assert not request.automated and request.initiated_by() == {"username": "alice"}
    options = request.sync_options_for_engine()
    assert options.create_namespace and options.skip_hooks and options.prune
    with pytest.raises(InvalidRequest, match="trigger: 'cron' is not one of"):
        OperationRequest.from_dict({"trigger": "cron"})
    with pytest.raises(InvalidRequest, match=r"resources\[0\]: needs kind and name"):
        OperationRequest.from_dict({"trigger": "manual", "resources": [{"kind": "ConfigMap"}]})
