"""sync.engine_request and sync.engine_exec, the pure parts: sync options parsed from ``Key=value`` strings
(reference §1.10; Prune=confirm, RespectIgnoreDifferences and FailOnSharedResource among them), selective-sync
matching, and how one object is written (Replace, SSA, CSA, Force; §4.7)."""

from __future__ import annotations

from typing import Any

import pytest

from sync.engine_exec import apply_mode
from sync.engine_request import InvalidSyncOption, SelectedResource, SyncOptions
from sync.models import ResourceKey

OPTS = "argocd.argoproj.io/sync-options"


def test_options_parse_argo_strings_then_overrides() -> None:
    options = SyncOptions.parse(
        [
            "CreateNamespace=true",
            " Replace=true ",
            "ServerSideApply=false",
            "ApplyOutOfSyncOnly=true",
            "PrunePropagationPolicy=background",
            "PruneLast=true",
            "Prune=false",
            "SkipDryRunOnMissingResource=true",
            "Unknown=whatever",
            "garbage",
        ],
        prune=True,
    )
    assert options == SyncOptions(
        prune=True,
        create_namespace=True,
        replace=True,
        server_side_apply=False,
        apply_out_of_sync_only=True,
        prune_propagation="Background",
        prune_last=True,
        prune_disabled=True,
        skip_dry_run_on_missing_resource=True,
    )
    assert SyncOptions.parse([]) == SyncOptions()  # SSA on, foreground, nothing else


def test_a_propagation_policy_we_cannot_honour_is_named() -> None:
    with pytest.raises(InvalidSyncOption, match="PrunePropagationPolicy=sideways"):
        SyncOptions.parse(["PrunePropagationPolicy=sideways"])


def test_selected_resources_match_group_kind_name_and_optional_namespace() -> None:
    entry = SelectedResource("apps", "Deployment", "web")
    assert entry.matches(ResourceKey("apps", "Deployment", "a", "web"))
    assert not entry.matches(ResourceKey("", "Deployment", "a", "web"))
    assert not SelectedResource("apps", "Deployment", "web", "b").matches(ResourceKey("apps", "Deployment", "a", "web"))


def _obj(options: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "x"}
    if options:
        meta["annotations"] = {OPTS: options}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


@pytest.mark.parametrize(
    ("target", "live", "options", "expected"),
    [
        pytest.param(_obj(), None, SyncOptions(), ("server-side", True), id="default-ssa-forced"),
        pytest.param(_obj(), None, SyncOptions(server_side_apply=False), ("client-side", False), id="app-csa"),
        pytest.param(_obj("ServerSideApply=false"), None, SyncOptions(), ("client-side", False), id="resource-csa"),
        pytest.param(
            _obj("ServerSideApply=true"),
            None,
            SyncOptions(server_side_apply=False),
            ("server-side", True),
            id="resource-ssa",
        ),
        pytest.param(_obj(), None, SyncOptions(replace=True), ("replace", False), id="app-replace"),
        pytest.param(_obj("Replace=true"), None, SyncOptions(), ("replace", False), id="target-replace"),
        pytest.param(_obj(), _obj("Replace=true"), SyncOptions(), ("replace", False), id="live-replace"),
        pytest.param(
            _obj("Replace=false"), None, SyncOptions(replace=True), ("replace", False), id="replace-false-inert"
        ),
        pytest.param(_obj("Replace=true,Force=true"), None, SyncOptions(), ("replace", True), id="replace-force"),
        pytest.param(
            _obj("ServerSideApply=false"),
            _obj("Force=true"),
            SyncOptions(),
            ("client-side", True),
            id="csa-force-from-live",
        ),
    ],
)
def test_apply_mode(
    target: dict[str, Any], live: dict[str, Any] | None, options: SyncOptions, expected: tuple[str, bool]
) -> None:
    assert apply_mode(target, live, options) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(["Prune=confirm"], SyncOptions(prune_confirm=True), id="prune-confirm"),
        pytest.param(["Prune=confirm", "Prune=true"], SyncOptions(), id="last-prune-wins"),
        pytest.param(["Prune=false"], SyncOptions(prune_disabled=True), id="prune-false"),
        pytest.param(["RespectIgnoreDifferences=true"], SyncOptions(respect_ignore_differences=True), id="respect"),
        pytest.param(["FailOnSharedResource=true"], SyncOptions(fail_on_shared_resource=True), id="fail-on-shared"),
        pytest.param(["FailOnSharedResource=false", "RespectIgnoreDifferences=no"], SyncOptions(), id="not-true"),
    ],
)
def test_prune_confirm_respect_ignore_and_fail_on_shared_options(options: list[str], expected: SyncOptions) -> None:
    assert SyncOptions.parse(options) == expected
