"""api.gate: the policy engine bound to the sync core's gate seam.

Unit level: triggers map to automatic/manual window checks (app deletion's hooks: none, but the project's
destinations and kinds), RBAC for a caller, unknown projects fail closed, CRDs
among the objects resolve scope, ``may_prune`` keeps deletions inside the project. End to end (real SyncEngine,
real sandbox over HTTP): a denied object stops the whole sync with nothing written (PROJ-01), and a freeze blocks an
automatic sync but lets a permitted manual sync through (WIN-01)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.gate import PolicyGate, prune_permit
from policy.project import AppProject
from policy.rbac import Authorizer
from sync.gate import GateRequest
from tests.sync import enginefixtures as ef

FREEZE = datetime(2026, 12, 27, 10, 0, tzinfo=UTC)
NORMAL = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


def project(manual_sync: bool = True, **spec: Any) -> AppProject:
    return AppProject.from_dict(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AppProject",
            "metadata": {"name": "team"},
            "spec": {
                "sourceRepos": ["https://git.example.com/*"],
                "destinations": [{"server": "https://kubernetes.default.svc", "namespace": ef.NS}],
                "syncWindows": [
                    {"kind": "deny", "schedule": "0 0 24 12 *", "duration": "216h", "applications": ["*"],
                     "manualSync": manual_sync, "timeZone": "Europe/Amsterdam"}
                ],
                **spec,
            },
        }
    )


def gate_for(p: AppProject | None, authorizer: Authorizer | None = None) -> PolicyGate:
    return PolicyGate(projects=lambda name: p if p is not None and name == p.name else None, authorizer=authorizer)


def request(trigger: str = "auto", *, at: datetime = NORMAL, objects: list[dict[str, Any]] | None = None,
            subject: str | None = None, reason: str | None = None) -> GateRequest:
    return GateRequest(
        app=ef.application(),
        objects=objects if objects is not None else [ef.cm("a")],
        trigger=trigger,  # type: ignore[arg-type]
        at=at,
        subject=subject,
        override_reason=reason,
    )


@pytest.mark.parametrize(
    ("trigger", "allowed"),
    [
        pytest.param("auto", False, id="auto-blocked"),
        pytest.param("self-heal", False, id="self-heal-blocked"),
        pytest.param("retry", False, id="retry-blocked"),
        pytest.param("webhook", False, id="webhook-blocked"),
        pytest.param("manual", True, id="manual-allowed-by-manualSync"),
        pytest.param("rollback", True, id="rollback-is-manual"),
    ],
)
def test_every_automatic_path_is_bound_by_the_freeze(trigger: str, allowed: bool) -> None:
    verdict = gate_for(project())(request(trigger, at=FREEZE))
    assert verdict.allowed is allowed
    if not allowed:
        assert [v.code for v in verdict.violations] == ["window.blocked"]


def test_deletion_hooks_are_not_held_by_a_freeze_but_stay_inside_the_project() -> None:
    g = gate_for(project(manual_sync=False))
    assert g(request("delete", at=FREEZE)).allowed  # a window never holds up an app's deletion
    outside = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "cleanup", "namespace": "kube-system"}}
    denied = g(request("delete", at=FREEZE, objects=[ef.cm("a"), outside]))
    assert [v.code for v in denied.violations] == ["namespace.not-permitted"]


def test_override_of_a_freeze_needs_permission_and_reason() -> None:
    authz = Authorizer.from_csv("g, alice, role:admin\ng, bob, role:readonly\n")
    g = gate_for(project(manual_sync=False), authz)
    assert not g(request("manual", at=FREEZE, subject="alice"))
    ok = g(request("manual", at=FREEZE, subject="alice", reason="hotfix INC-7"))
    assert ok.allowed
    assert ok.details["override"]["reason"] == "hotfix INC-7"
    assert not g(request("manual", at=FREEZE, subject="bob", reason="please"))
    # an automatic trigger can never carry an override
    assert not g(request("auto", at=FREEZE, subject="alice", reason="x"))


def test_rbac_applies_to_a_callers_sync() -> None:
    authz = Authorizer.from_csv("p, carol, applications, sync, team/*, allow\n", builtin=False)
    g = gate_for(project(), authz)
    assert g(request("manual", subject="carol"))
    denied = g(request("manual", subject="mallory"))
    assert [v.code for v in denied.violations] == ["rbac.denied"]


def test_unknown_project_and_broken_store_fail_closed(caplog: pytest.LogCaptureFixture) -> None:
    missing = gate_for(None)(request())
    assert [v.code for v in missing.violations] == ["project.unknown"]

    def broken(name: str) -> AppProject:
        raise OSError("database is locked")

    verdict = PolicyGate(projects=broken)(request())
    assert not verdict.allowed
    assert "could not be loaded" in verdict.violations[0].message
    assert "denying" in caplog.text


def test_crds_among_the_objects_resolve_scope() -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "names": {"kind": "Widget"}, "scope": "Namespaced"}}
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    p = project(clusterResourceWhitelist=[{"group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition"}])
    assert gate_for(p)(request(objects=[crd, widget]))
    unknown = gate_for(p)(request(objects=[widget]))
    assert [v.code for v in unknown.violations] == ["resource.unknown-kind"]


def test_may_prune_stays_inside_the_project() -> None:
    may_prune = prune_permit(project(), ef.application(), None)
    assert may_prune({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": ef.NS}})
    assert not may_prune({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "kube-system"}})
    assert not may_prune({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    assert not may_prune({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[ef.Harness]:
    yield from ef.harness(tmp_path)


def test_e2e_a_denied_object_stops_the_whole_sync_with_nothing_written(harness: ef.Harness) -> None:
    harness.gate = gate_for(project())  # type: ignore[assignment]
    sneaky = ef.cm("sneaky")
    sneaky["metadata"]["namespace"] = "kube-system"
    targets = [ef.cm("ok"), ef.deployment("web"), sneaky]
    op, _ = harness.run(ef.new_op(start=NORMAL), lambda: harness.request(targets), start=NORMAL)
    assert op.phase.value == "Failed"
    assert "kube-system" in op.message
    assert harness.writes() == []


def test_e2e_freeze_blocks_auto_sync_but_a_permitted_manual_sync_goes_through(harness: ef.Harness) -> None:
    policy = gate_for(project())
    harness.gate = policy  # type: ignore[assignment]
    targets = [ef.cm("ok")]

    def auto() -> Any:
        req = harness.request(targets)
        return type(req)(**{**req.__dict__, "trigger": "auto", "subject": None})

    op, _ = harness.run(ef.new_op("auto", start=FREEZE), auto, start=FREEZE)
    assert op.phase.value == "Failed"
    assert "window" in op.message
    assert harness.writes() == []

    manual, _ = harness.run(ef.new_op("manual", start=FREEZE), lambda: harness.request(targets), start=FREEZE)
    assert manual.phase.value == "Succeeded", manual.message
    assert ("patch", ef.ns_path("ConfigMap", "ok")) in harness.writes()
