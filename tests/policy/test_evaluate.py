"""policy.evaluate: the one gate. Covers the PROJ rows of security-cases (01, 03, 05, 08, 14, 15, 17), every
violation reported at once, windows for auto vs manual syncs, the override path (permission + reason, recorded),
RBAC, and fail-closed evaluation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policy import evaluate as gate
from policy.decision import Code
from policy.kinds import KindTable
from policy.project import AppProject
from policy.rbac import Authorizer

IN_CLUSTER = "https://kubernetes.default.svc"
NOON = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday
FREEZE = datetime(2026, 12, 27, 10, 0, tzinfo=UTC)


def p_low(**extra: Any) -> AppProject:
    """security-cases' P-low: only team-a on in-cluster, one repo, no cluster-scoped kinds."""
    spec: dict[str, Any] = {
        "sourceRepos": ["https://git.example/org/app"],
        "destinations": [{"server": IN_CLUSTER, "namespace": "team-a"}],
        **extra,
    }
    return AppProject.from_dict(
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "p-low"}, "spec": spec}
    )


def app(**overrides: Any) -> gate.AppTarget:
    fields: dict[str, Any] = {
        "name": "web",
        "project": "p-low",
        "repo_urls": ("https://git.example/org/app.git",),
        "destination_namespace": "team-a",
        "destination_server": IN_CLUSTER,
    }
    fields.update(overrides)
    return gate.AppTarget(**fields)


def obj(kind: str, name: str = "x", namespace: str = "", group: str = "", **kw: Any) -> gate.ObjectRef:
    return gate.ObjectRef(group, kind, name, namespace, where=f"m.yaml[{name}]", **kw)


def codes(decision: Any) -> list[str]:
    return [v.code for v in decision.violations]


def test_a_permitted_app_and_objects_are_allowed_with_the_matching_rules() -> None:
    decision = gate.evaluate(
        project=p_low(), app=app(), objects=[obj("ConfigMap"), obj("Deployment", group="apps")]
    )
    assert decision
    assert decision.rule


def test_proj01_one_object_in_kube_system_denies_naming_the_namespace_and_field() -> None:
    decision = gate.evaluate(
        project=p_low(),
        app=app(),
        objects=[obj("ConfigMap", "ok"), obj("ConfigMap", "sneaky", namespace="kube-system")],
    )
    assert not decision
    assert codes(decision) == [Code.NAMESPACE_NOT_PERMITTED]
    v = decision.violations[0]
    assert "kube-system" in v.message
    assert v.field == "m.yaml[sneaky].metadata.namespace"


def test_proj03_cluster_scoped_kinds_are_denied_unless_whitelisted() -> None:
    denied = gate.evaluate(project=p_low(), app=app(), objects=[obj("Namespace", "team-b")])
    assert codes(denied) == [Code.RESOURCE_NOT_PERMITTED]
    allowed = gate.evaluate(
        project=p_low(clusterResourceWhitelist=[{"group": "", "kind": "Namespace"}]),
        app=app(),
        objects=[obj("Namespace", "team-b")],
    )
    assert allowed


def test_proj05_a_kind_in_whitelist_and_blacklist_is_denied() -> None:
    project = p_low(
        namespaceResourceWhitelist=[{"group": "", "kind": "ConfigMap"}],
        namespaceResourceBlacklist=[{"group": "", "kind": "ConfigMap"}],
    )
    assert not gate.evaluate(project=project, app=app(), objects=[obj("ConfigMap")])


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://git.example/org/sub/repo", id="star-does-not-cross-slash"),
        pytest.param("https://git.example/org-evil/x", id="prefix-is-not-a-match"),
    ],
)
def test_proj08_source_repo_glob(url: str) -> None:
    project = p_low(sourceRepos=["https://git.example/org/*"])
    decision = gate.evaluate(project=project, app=app(repo_urls=(url,)), objects=[])
    assert not decision
    assert decision.violations[0].field == "spec.source.repoURL"


def test_proj14_app_namespace_must_be_a_source_namespace() -> None:
    project = p_low(sourceNamespaces=["team-a"])
    assert gate.evaluate(project=project, app=app(namespace="team-a"))
    denied = gate.evaluate(project=project, app=app(namespace="team-b"))
    assert codes(denied) == [Code.SOURCE_NAMESPACE_NOT_PERMITTED]
    assert gate.evaluate(project=project, app=app(namespace="syncwarden")), "control plane is always permitted"


def test_proj15_child_application_may_not_name_another_project() -> None:
    child = obj("Application", "child", group="argoproj.io", child_project="p-admin")
    decision = gate.evaluate(project=p_low(), app=app(), objects=[child])
    assert Code.PROJECT_MISMATCH in codes(decision)
    same = obj("Application", "child", group="argoproj.io", child_project="p-low")
    assert gate.evaluate(project=p_low(), app=app(), objects=[same])


def test_proj17_unknown_kind_fails_closed_unless_its_scope_is_known() -> None:
    widget = obj("Widget", group="example.com")
    assert codes(gate.evaluate(project=p_low(), app=app(), objects=[widget])) == [Code.RESOURCE_UNKNOWN_KIND]
    table = KindTable.builtin().with_entries([("example.com", "Widget", True, "test")])
    assert gate.evaluate(project=p_low(), app=app(), objects=[widget], kinds=table)


def test_every_violation_is_reported_not_just_the_first() -> None:
    decision = gate.evaluate(
        project=p_low(),
        app=app(project="p-low", repo_urls=("https://evil.example/x",), destination_namespace="prod"),
        objects=[obj("Namespace", "n"), obj("ConfigMap", "c", namespace="kube-system")],
    )
    assert set(codes(decision)) >= {
        Code.SOURCE_NOT_PERMITTED,
        Code.DESTINATION_NOT_PERMITTED,
        Code.RESOURCE_NOT_PERMITTED,
        Code.NAMESPACE_NOT_PERMITTED,
    }


def test_app_of_another_project_is_a_mismatch() -> None:
    assert codes(gate.evaluate(project=p_low(), app=app(project="p-admin"))) == [Code.PROJECT_MISMATCH]


def freeze_project(manual_sync: bool) -> AppProject:
    window = {
        "kind": "deny",
        "schedule": "0 0 24 12 *",
        "duration": "216h",
        "applications": ["*"],
        "manualSync": manual_sync,
        "timeZone": "Europe/Amsterdam",
    }
    return p_low(syncWindows=[window])


def test_freeze_blocks_auto_sync_but_lets_a_permitted_manual_sync_through() -> None:
    project = freeze_project(manual_sync=True)
    assert gate.evaluate(project=project, app=app(), sync="auto", at=NOON)
    blocked = gate.evaluate(project=project, app=app(), sync="auto", at=FREEZE)
    assert codes(blocked) == [Code.WINDOW_BLOCKED]
    assert gate.evaluate(project=project, app=app(), sync="manual", at=FREEZE)


ADMIN = Authorizer.from_csv("g, alice, role:admin\ng, bob, role:readonly\n")


def test_override_needs_permission_and_a_reason_and_is_recorded() -> None:
    project = freeze_project(manual_sync=False)
    assert codes(gate.evaluate(project=project, app=app(), sync="manual", at=FREEZE)) == [Code.WINDOW_BLOCKED]

    granted = gate.evaluate(
        project=project,
        app=app(),
        sync="manual",
        at=FREEZE,
        authorizer=ADMIN,
        subject="alice",
        override_reason="hotfix INC-42",
    )
    assert granted
    assert granted.details["override"]["reason"] == "hotfix INC-42"
    assert granted.details["override"]["subject"] == "alice"

    no_reason = gate.evaluate(
        project=project, app=app(), sync="manual", at=FREEZE, authorizer=ADMIN, subject="alice", override_reason=" "
    )
    assert not no_reason
    not_permitted = gate.evaluate(
        project=project,
        app=app(),
        sync="manual",
        at=FREEZE,
        authorizer=ADMIN,
        subject="bob",
        override_reason="please",
    )
    assert Code.RBAC_DENIED in codes(not_permitted)


def test_overrides_never_apply_to_automatic_syncs() -> None:
    project = freeze_project(manual_sync=False)
    decision = gate.evaluate(
        project=project, app=app(), sync="auto", at=FREEZE, authorizer=ADMIN, subject="alice", override_reason="x"
    )
    assert codes(decision) == [Code.WINDOW_BLOCKED]


def test_rbac_is_part_of_the_gate() -> None:
    assert gate.evaluate(project=p_low(), app=app(), authorizer=ADMIN, subject="alice")
    denied = gate.evaluate(project=p_low(), app=app(), authorizer=ADMIN, subject="bob")
    assert codes(denied) == [Code.RBAC_DENIED]


def test_rbac_object_name_follows_argo_cd() -> None:
    assert gate.rbac_name(app(), control_plane_namespace="syncwarden") == "p-low/web"
    assert gate.rbac_name(app(namespace="team-a"), control_plane_namespace="syncwarden") == "p-low/team-a/web"
    assert gate.rbac_name(app(project=""), control_plane_namespace="syncwarden") == "default/web"


class _Broken:
    name = "p-low"
    sync_windows = None

    def check_source(self, url: str) -> Any:
        raise RuntimeError("corrupt project data")


def test_fail_closed_when_the_policy_cannot_be_evaluated(caplog: pytest.LogCaptureFixture) -> None:
    decision = gate.evaluate(project=_Broken(), app=app())  # type: ignore[arg-type]
    assert not decision
    assert codes(decision) == [Code.POLICY_ERROR]
    assert "denying" in caplog.text
