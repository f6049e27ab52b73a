"""sync.plan and sync.hooks: pairing, prune candidates, hook detection and naming, phases, waves, Argo's kind
order, Namespace/CRD bubbling, reversed prune waves, PruneLast, Skip, selective sync (reference §4.2–§4.4, §4.9)."""

from __future__ import annotations

from typing import Any

import pytest

from sync import hooks
from sync.hooks import DeletePolicy, Phase
from sync.models import ResourceKey
from sync.plan import build_plan

NAMESPACED = {"ConfigMap", "Deployment", "Service", "Job", "Pod", "Secret", "Widget"}


def scope(group: str, kind: str) -> bool | None:
    if kind in NAMESPACED:
        return True
    if kind in {"Namespace", "CustomResourceDefinition", "ClusterRole"}:
        return False
    return None


def obj(kind: str, name: str, *, api: str = "v1", ns: str | None = None, **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns is not None:
        meta["namespace"] = ns
    if annotations:
        meta["annotations"] = {k.replace("__", "/").replace("_", "-"): v for k, v in annotations.items()}
    return {"apiVersion": api, "kind": kind, "metadata": meta}


def ann(o: dict[str, Any], **values: str) -> dict[str, Any]:
    o["metadata"].setdefault("annotations", {}).update(values)
    return o


def plan(targets: list[dict[str, Any]], live: list[dict[str, Any]] = (), **kw: Any):  # type: ignore[assignment]
    return build_plan(targets, live, destination_namespace="team-a", namespaced=scope, **kw)


def names(p: Any) -> list[str]:
    return [f"{t.phase.value}:{t.wave}:{t.key.kind}/{t.key.name}{'(prune)' if t.is_prune else ''}" for t in p.tasks]


def test_kind_order_then_name_within_a_wave() -> None:
    p = plan(
        [
            obj("Deployment", "web", api="apps/v1"),
            obj("Service", "web"),
            obj("ConfigMap", "b"),
            obj("ConfigMap", "a"),
            obj("Widget", "w", api="example.com/v1"),
            obj("Namespace", "team-a"),
        ]
    )
    assert names(p) == [
        "Sync:0:Namespace/team-a",
        "Sync:0:ConfigMap/a",
        "Sync:0:ConfigMap/b",
        "Sync:0:Service/web",
        "Sync:0:Deployment/web",
        "Sync:0:Widget/w",
    ]


def test_waves_order_before_kinds_and_namespaces_are_defaulted() -> None:
    p = plan(
        [
            ann(obj("ConfigMap", "late"), **{"argocd.argoproj.io/sync-wave": "5"}),
            ann(obj("Deployment", "early", api="apps/v1"), **{"argocd.argoproj.io/sync-wave": "-1"}),
        ]
    )
    assert names(p) == ["Sync:-1:Deployment/early", "Sync:5:ConfigMap/late"]
    assert all(t.key.namespace == "team-a" for t in p.tasks)
    assert p.tasks[0].target is not None and p.tasks[0].target["metadata"]["namespace"] == "team-a"


def test_helm_weight_is_the_wave_when_sync_wave_is_absent_or_unparsable() -> None:
    assert hooks.wave_of(ann(obj("ConfigMap", "x"), **{"helm.sh/hook-weight": "3"})) == 3
    assert (
        hooks.wave_of(ann(obj("ConfigMap", "x"), **{"argocd.argoproj.io/sync-wave": "x", "helm.sh/hook-weight": "-2"}))
        == -2
    )
    assert hooks.wave_of(obj("ConfigMap", "x")) == 0


def test_live_objects_without_target_are_prune_candidates_and_pair_by_key() -> None:
    live = [obj("ConfigMap", "keep", ns="team-a"), obj("ConfigMap", "old", ns="team-a")]
    live[0]["apiVersion"] = "v1"
    p = plan([obj("ConfigMap", "keep")], live)
    keep = next(t for t in p.tasks if t.key.name == "keep")
    assert keep.live is live[0] and keep.target is not None
    assert names(p) == ["Sync:0:ConfigMap/keep", "Sync:0:ConfigMap/old(prune)"]


def test_prune_waves_are_reversed() -> None:
    live = [
        ann(obj("ConfigMap", f"w{w}", ns="team-a"), **{"argocd.argoproj.io/sync-wave": str(w)}) for w in (1, 3, 4, 5)
    ]
    p = plan([ann(obj("ConfigMap", "c2"), **{"argocd.argoproj.io/sync-wave": "2"})], live)
    waves = {t.key.name: t.wave for t in p.tasks}
    assert waves == {"w1": 5, "w3": 4, "w4": 3, "w5": 1, "c2": 2}


def test_prune_last_goes_after_every_sync_wave() -> None:
    live = [obj("ConfigMap", "gone", ns="team-a")]
    p = plan([ann(obj("ConfigMap", "c"), **{"argocd.argoproj.io/sync-wave": "3"})], live, prune_last=True)
    assert names(p) == ["Sync:3:ConfigMap/c", "Sync:4:ConfigMap/gone(prune)"]
    live_opt = [ann(obj("ConfigMap", "gone", ns="team-a"), **{"argocd.argoproj.io/sync-options": "PruneLast=true"})]
    assert names(plan([obj("ConfigMap", "c")], live_opt))[-1] == "Sync:1:ConfigMap/gone(prune)"


def test_namespace_bubbles_before_its_first_user_and_adopts_its_wave() -> None:
    ns = ann(obj("Namespace", "team-b"), **{"argocd.argoproj.io/sync-wave": "5"})
    p = plan([ns, ann(obj("ConfigMap", "c", ns="team-b"), **{"argocd.argoproj.io/sync-wave": "1"})])
    assert names(p) == ["Sync:1:Namespace/team-b", "Sync:1:ConfigMap/c"]


def test_crd_bubbles_before_its_custom_resources() -> None:
    crd = ann(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget"}},
        },
        **{"argocd.argoproj.io/sync-wave": "2"},
    )
    p = plan([crd, obj("Widget", "w", api="example.com/v1")])
    assert names(p) == ["Sync:0:CustomResourceDefinition/widgets.example.com", "Sync:0:Widget/w"]


def test_hooks_run_in_their_phases_with_deterministic_generated_names() -> None:
    pre = ann(
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"generateName": "migrate-"}},
        **{"argocd.argoproj.io/hook": "PreSync,PostSync", "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"},
    )
    fail = ann(obj("Job", "notify", api="batch/v1"), **{"argocd.argoproj.io/hook": "SyncFail"})
    p = plan([obj("ConfigMap", "c"), pre, fail], revision="ABCDEF0123456789", started_unix=1700000000)
    assert names(p) == [
        "PreSync:0:Job/migrate-abcdef0-presync-1700000000",
        "Sync:0:ConfigMap/c",
        "PostSync:0:Job/migrate-abcdef0-postsync-1700000000",
        "SyncFail:0:Job/notify",
    ]
    assert p.tasks[0].hook and p.tasks[0].delete_policies == {DeletePolicy.HOOK_SUCCEEDED}
    assert [t.key.name for t in p.sync_fail_hooks()] == ["notify"]
    assert [step for step, _ in p.steps()] == [(-1, 0), (0, 0), (1, 0)]


def test_hooks_are_skipped_for_selective_or_apply_strategy_syncs() -> None:
    pre = ann(obj("Job", "m", api="batch/v1"), **{"argocd.argoproj.io/hook": "PreSync"})
    assert names(plan([obj("ConfigMap", "c"), pre], skip_hooks=True)) == ["Sync:0:ConfigMap/c"]


def test_helm_hooks_map_to_phases_and_policies() -> None:
    job = ann(
        obj("Job", "j", api="batch/v1"),
        **{"helm.sh/hook": "pre-install,post-upgrade", "helm.sh/hook-delete-policy": "hook-succeeded,hook-failed"},
    )
    assert hooks.hook_phases(job) == (Phase.PRE_SYNC, Phase.POST_SYNC)
    assert hooks.delete_policies(job) == {DeletePolicy.HOOK_SUCCEEDED, DeletePolicy.HOOK_FAILED}
    crd_install = ann(obj("ConfigMap", "x"), **{"helm.sh/hook": "crd-install"})
    assert not hooks.is_hook(crd_install)
    argo_wins = ann(
        obj("Job", "j", api="batch/v1"), **{"argocd.argoproj.io/hook": "Sync", "helm.sh/hook": "pre-install"}
    )
    assert hooks.hook_phases(argo_wins) == (Phase.SYNC,)


@pytest.mark.parametrize(
    ("value", "phases", "hook", "garbage"),
    [
        pytest.param("PreSync", (Phase.PRE_SYNC,), True, False, id="presync"),
        pytest.param("Skip", (), False, False, id="skip-alone"),
        pytest.param("Skip,PreSync, PostSync", (Phase.PRE_SYNC, Phase.POST_SYNC), True, False, id="skip-mixed"),
        pytest.param("PreSnyc", (), True, True, id="misspelled-is-garbage"),
        pytest.param("PostDelete", (), True, False, id="deletion-hook"),
    ],
)
def test_hook_detection(value: str, phases: tuple[Phase, ...], hook: bool, garbage: bool) -> None:
    o = ann(obj("Job", "j", api="batch/v1"), **{"argocd.argoproj.io/hook": value})
    assert hooks.hook_phases(o) == phases
    assert hooks.is_hook(o) is hook
    assert hooks.is_garbage_hook(o) is garbage


def test_no_delete_policy_means_before_hook_creation() -> None:
    assert hooks.delete_policies(obj("Job", "j")) == {DeletePolicy.BEFORE_HOOK_CREATION}


def test_skip_and_garbage_hooks_are_never_applied_nor_pruned() -> None:
    skip = ann(obj("ConfigMap", "skip"), **{"argocd.argoproj.io/hook": "Skip"})
    garbage = ann(obj("ConfigMap", "bad"), **{"argocd.argoproj.io/hook": "Whenever"})
    p = plan([skip, garbage, obj("ConfigMap", "c")], [obj("ConfigMap", "skip", ns="team-a")])
    assert names(p) == ["Sync:0:ConfigMap/c"]
    assert any("no recognised hook type" in w for w in p.warnings)


def test_live_hooks_are_never_pruned() -> None:
    live_hook = ann(obj("Job", "old-hook", api="batch/v1", ns="team-a"), **{"argocd.argoproj.io/hook": "PreSync"})
    assert names(plan([obj("ConfigMap", "c")], [live_hook])) == ["Sync:0:ConfigMap/c"]


def test_repeated_keys_collapse_to_the_last_with_a_warning() -> None:
    a, b = obj("ConfigMap", "dup"), obj("ConfigMap", "dup")
    b["data"] = {"x": "2"}
    p = plan([a, b])
    assert len(p.tasks) == 1 and p.tasks[0].target is not None and p.tasks[0].target["data"] == {"x": "2"}
    assert any("more than once" in w for w in p.warnings)


def test_cluster_scoped_targets_lose_the_namespace() -> None:
    p = plan([obj("ClusterRole", "r", api="rbac.authorization.k8s.io/v1", ns="oops")])
    assert p.tasks[0].key == ResourceKey("rbac.authorization.k8s.io", "ClusterRole", "", "r")


def test_selective_sync_touches_only_selected_resources() -> None:
    live = [obj("ConfigMap", "other-live", ns="team-a")]
    p = plan([obj("ConfigMap", "a"), obj("ConfigMap", "b")], live, selected=lambda k: k.name == "a")
    assert names(p) == ["Sync:0:ConfigMap/a"]
