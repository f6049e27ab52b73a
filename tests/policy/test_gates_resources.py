"""The resource-kind gate (reference §1.5; §6 items 6, 7, 41; security cases PROJ-03, PROJ-05).

Covers: both defaults tables row by row (absent vs empty vs non-empty white/blacklists, namespaced and
cluster-scoped), blacklist beating whitelist, FP patterns (``*`` for every group including core, ``""`` for
core only, case-sensitive kinds, ``!`` literal), the cluster whitelist/blacklist ``name`` glob, the default
project, and the decision's code, field, rule and message.
"""

from __future__ import annotations

from typing import Any

import pytest

from policy.decision import Code
from policy.project import AppProject, default_project

ALL = [{"group": "*", "kind": "*"}]
DEPLOY = {"group": "apps", "kind": "Deployment"}
QUOTA = {"group": "", "kind": "ResourceQuota"}
NS = {"group": "", "kind": "Namespace"}


def project(**lists: Any) -> AppProject:
    return AppProject.from_dict(lists, name="p")


NAMESPACED = [
    # namespace whitelist / blacklist table
    pytest.param({}, DEPLOY, True, id="ns-absent-absent-allows-all"),
    pytest.param({"namespaceResourceBlacklist": []}, DEPLOY, True, id="ns-absent-empty-allows-all"),
    pytest.param({"namespaceResourceBlacklist": [QUOTA]}, DEPLOY, True, id="ns-absent-blacklist-allows-others"),
    pytest.param({"namespaceResourceBlacklist": [QUOTA]}, QUOTA, False, id="ns-absent-blacklist-denies-listed"),
    pytest.param({"namespaceResourceWhitelist": []}, DEPLOY, False, id="item6-explicit-empty-whitelist-denies-all"),
    pytest.param({"namespaceResourceWhitelist": [], "namespaceResourceBlacklist": [QUOTA]}, DEPLOY, False,
                 id="item6-empty-whitelist-denies-even-unblacklisted"),
    pytest.param({"namespaceResourceWhitelist": [DEPLOY]}, DEPLOY, True, id="ns-whitelist-allows-listed"),
    pytest.param({"namespaceResourceWhitelist": [DEPLOY]}, QUOTA, False, id="ns-whitelist-denies-unlisted"),
    pytest.param({"namespaceResourceWhitelist": ALL, "namespaceResourceBlacklist": [DEPLOY]}, DEPLOY, False,
                 id="proj05-blacklist-beats-whitelist"),
    pytest.param({"namespaceResourceWhitelist": [{"group": "*", "kind": "Deploy*"}]}, DEPLOY, True, id="fp-kind-glob"),
    pytest.param({"namespaceResourceWhitelist": [{"group": "*", "kind": "*"}]}, QUOTA, True,
                 id="star-group-matches-core"),
    pytest.param({"namespaceResourceWhitelist": [{"group": "", "kind": "*"}]}, DEPLOY, False,
                 id="empty-group-is-core-only"),
    pytest.param({"namespaceResourceWhitelist": [{"group": "apps", "kind": "deployment"}]}, DEPLOY, False,
                 id="kinds-are-case-sensitive"),
    pytest.param({"namespaceResourceWhitelist": [{"group": "*.k8s.io", "kind": "*"}]},
                 {"group": "networking.k8s.io", "kind": "Ingress"}, True, id="fp-group-glob"),
    pytest.param({"namespaceResourceBlacklist": [{"group": "*", "kind": "!Secret"}]},
                 {"group": "", "kind": "Secret"}, True, id="item7-bang-is-literal-in-resource-lists"),
    pytest.param({"namespaceResourceWhitelist": [{"group": "[a-c]pps", "kind": "*"}]}, DEPLOY, True,
                 id="fp-character-class"),
]


@pytest.mark.parametrize(("lists", "gk", "allowed"), NAMESPACED)
def test_namespaced_table(lists: dict[str, Any], gk: dict[str, str], allowed: bool) -> None:
    assert bool(project(**lists).check_resource(namespaced=True, **gk)) is allowed


CLUSTER = [
    pytest.param({}, NS, "", False, id="proj03-cluster-absent-denies"),
    pytest.param({"clusterResourceWhitelist": []}, NS, "", False, id="cluster-empty-denies"),
    pytest.param({"clusterResourceBlacklist": []}, NS, "", False, id="item6-empty-project-blocks-namespace"),
    pytest.param({"clusterResourceWhitelist": [NS]}, NS, "", True, id="cluster-listed-allows"),
    pytest.param({"clusterResourceWhitelist": [NS]}, {"group": "rbac.authorization.k8s.io", "kind": "ClusterRole"},
                 "", False, id="cluster-unlisted-denies"),
    pytest.param({"clusterResourceWhitelist": ALL, "clusterResourceBlacklist": ALL}, NS, "", False,
                 id="item6-star-in-both-blocks-everything"),
    pytest.param({"clusterResourceWhitelist": ALL, "clusterResourceBlacklist": [NS]}, NS, "", False,
                 id="proj05-cluster-blacklist-beats-whitelist"),
    pytest.param({"clusterResourceWhitelist": [{**NS, "name": "team1-*"}]}, NS, "team1-web", True,
                 id="item6-whitelist-name-glob-allows"),
    pytest.param({"clusterResourceWhitelist": [{**NS, "name": "team1-*"}]}, NS, "team2-web", False,
                 id="item6-whitelist-name-glob-denies-others"),
    pytest.param({"clusterResourceWhitelist": [{**NS, "name": "team1-*"}]}, NS, "", False,
                 id="whitelist-name-glob-denies-unknown-name"),
    pytest.param({"clusterResourceWhitelist": ALL, "clusterResourceBlacklist": [{**NS, "name": "kube-*"}]},
                 NS, "kube-system", False, id="blacklist-name-glob-denies"),
    pytest.param({"clusterResourceWhitelist": ALL, "clusterResourceBlacklist": [{**NS, "name": "kube-*"}]},
                 NS, "team-a", True, id="blacklist-name-glob-allows-others"),
    pytest.param({"clusterResourceWhitelist": [{**NS, "name": ""}]}, NS, "any", True, id="empty-name-matches-any"),
    pytest.param({"namespaceResourceWhitelist": ALL}, NS, "", False, id="namespace-lists-do-not-grant-cluster-kinds"),
]


@pytest.mark.parametrize(("lists", "gk", "name", "allowed"), CLUSTER)
def test_cluster_table(lists: dict[str, Any], gk: dict[str, str], name: str, allowed: bool) -> None:
    assert bool(project(**lists).check_resource(namespaced=False, name=name, **gk)) is allowed


def test_namespaced_kinds_ignore_cluster_lists() -> None:
    p = project(clusterResourceBlacklist=ALL)
    assert p.check_resource(namespaced=True, **DEPLOY)


def test_default_project_allows_everything() -> None:
    p = default_project()
    assert p.check_resource(namespaced=False, **NS)
    assert p.check_resource(namespaced=True, **DEPLOY)


def test_absent_whitelist_allow_names_the_rule() -> None:
    decision = project().check_resource(namespaced=True, **DEPLOY)
    assert decision.rule == "spec.namespaceResourceWhitelist (absent: every namespaced kind not blacklisted)"


def test_whitelist_allow_names_the_entry() -> None:
    decision = project(clusterResourceWhitelist=[DEPLOY, NS]).check_resource(namespaced=False, **NS)
    assert decision.rule == 'spec.clusterResourceWhitelist[1] {group: "", kind: Namespace}'


def test_blacklist_violation() -> None:
    decision = project(namespaceResourceBlacklist=[QUOTA]).check_resource(
        namespaced=True, field="manifests/a.yaml[0]", **QUOTA)
    (violation,) = decision.violations
    assert violation.code == Code.RESOURCE_DENIED
    assert violation.rule == 'spec.namespaceResourceBlacklist[0] {group: "", kind: ResourceQuota}'
    assert violation.field == "manifests/a.yaml[0]"
    assert "core/ResourceQuota" in violation.message


@pytest.mark.parametrize(
    ("lists", "namespaced", "fragment"),
    [
        pytest.param({}, False, "must be listed in spec.clusterResourceWhitelist, which is absent", id="cluster-absent"),
        pytest.param({"clusterResourceWhitelist": []}, False, "which is empty", id="cluster-empty"),
        pytest.param({"namespaceResourceWhitelist": []}, True, "empty list, which permits no namespaced kind",
                     id="namespace-empty"),
        pytest.param({"namespaceResourceWhitelist": [QUOTA]}, True,
                     "no entry of spec.namespaceResourceWhitelist matches", id="namespace-unlisted"),
    ],
)
def test_not_permitted_messages(lists: dict[str, Any], namespaced: bool, fragment: str) -> None:
    decision = project(**lists).check_resource(namespaced=namespaced, **DEPLOY)
    (violation,) = decision.violations
    assert violation.code == Code.RESOURCE_NOT_PERMITTED
    assert fragment in violation.message
    assert "apps/Deployment" in violation.message


def test_item41_absent_and_empty_whitelists_survive_a_round_trip() -> None:
    """Argo CD's API drops an empty list (omitempty), flipping "none" into "all"; we keep it."""
    empty = project(namespaceResourceWhitelist=[])
    reloaded = AppProject.from_dict(empty.to_dict(), name="p")
    assert reloaded.namespace_resource_whitelist == ()
    assert not reloaded.check_resource(namespaced=True, **DEPLOY)
    absent = AppProject.from_dict(project().to_dict(), name="p")
    assert absent.namespace_resource_whitelist is None
    assert absent.check_resource(namespaced=True, **DEPLOY)


class TestGlobalProjects:
    """§1.1 step 4 and §6 item 42: global projects append their lists."""

    def test_item42_global_namespace_whitelist_restricts_an_unrestricted_project(self) -> None:
        local = project()
        assert local.check_resource(namespaced=True, **DEPLOY)
        effective = local.with_global(AppProject.from_dict({"namespaceResourceWhitelist": [QUOTA]}, name="global"))
        assert effective.namespace_resource_whitelist == AppProject.from_dict(
            {"namespaceResourceWhitelist": [QUOTA]}, name="x").namespace_resource_whitelist
        assert not effective.check_resource(namespaced=True, **DEPLOY)
        assert effective.check_resource(namespaced=True, **QUOTA)

    def test_lists_are_appended_and_not_inherited_fields_kept(self) -> None:
        local = AppProject.from_dict({"sourceRepos": ["https://a/*"], "sourceNamespaces": ["a"]}, name="p")
        glob = AppProject.from_dict({"sourceRepos": ["!https://a/secret"], "sourceNamespaces": ["b"],
                                     "clusterResourceWhitelist": [NS]}, name="g")
        effective = local.with_global(glob)
        assert effective.source_repos == ("https://a/*", "!https://a/secret")
        assert effective.source_namespaces == ("a",)
        assert not effective.check_source("https://a/secret")
        assert effective.check_resource(namespaced=False, **NS)

    def test_empty_global_list_keeps_absent_absent(self) -> None:
        effective = project().with_global(AppProject.from_dict({"namespaceResourceWhitelist": []}, name="g"))
        assert effective.namespace_resource_whitelist is None
        assert effective.check_resource(namespaced=True, **DEPLOY)

    def test_a_project_is_never_its_own_global_project(self) -> None:
        local = AppProject.from_dict({"sourceRepos": ["*"]}, name="p")
        assert local.with_global(local).source_repos == ("*",)
