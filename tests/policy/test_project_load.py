"""Loading, validating and writing back an AppProject (issue 2 "AppProject"; reference §1.6–§1.11; §6 items 8,
22, 41).

Covers: the Argo CD manifest and a bare spec; every field issue 2 lists; ``to_dict`` round-trips exactly (absent
vs empty kept, stable key order); every validation error names the field path (and the source); YAML duplicate
keys (difference 7); the ``default`` project; role and token lookups.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from policy.errors import InvalidProject, InvalidWindow
from policy.project import AppProject, Destination, ResourceRule, default_project

EXAMPLE = Path(__file__).parents[2] / "config" / "examples" / "project.yaml"


def full_manifest() -> dict[str, Any]:
    """Every field of issue 2, in Argo CD's key order."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": "team-a", "namespace": "syncwarden", "labels": {"tier": "gold"},
                     "annotations": {"note": "x"}},
        "spec": {
            "sourceRepos": ["https://github.com/team-a/*", "!https://github.com/team-a/secret"],
            "destinations": [
                {"server": "https://kubernetes.default.svc", "namespace": "team-a-*"},
                {"namespace": "!kube-system", "name": "prod"},
            ],
            "description": "Team A",
            "roles": [
                {
                    "name": "ci",
                    "description": "pipelines",
                    "policies": ["p, proj:team-a:ci, applications, sync, team-a/*, allow"],
                    "jwtTokens": [{"iat": 1700000000, "id": "abc"}, {"iat": 1700000001, "exp": 1800000000}],
                    "groups": ["team-a:ci", '"cn=ci,ou=groups,dc=example,dc=org"'],
                },
                {"name": "viewer", "policies": [], "groups": []},
            ],
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace", "name": "team-a-*"}],
            "namespaceResourceBlacklist": [{"group": "", "kind": "ResourceQuota"}],
            "orphanedResources": {"warn": True, "ignore": [{"kind": "ConfigMap", "name": "gen-*"}]},
            "syncWindows": [
                {"kind": "deny", "schedule": "0 22 * * *", "duration": "1h", "applications": ["*"],
                 "manualSync": True, "timeZone": "Europe/Amsterdam"},
            ],
            "namespaceResourceWhitelist": [{"group": "*", "kind": "*"}],
            "signatureKeys": [{"keyID": "4AEE18F83AFDEB23"}],
            "clusterResourceBlacklist": [],
            "sourceNamespaces": ["team-a-apps", "/^team-a-ci-[0-9]+$/"],
            "permitOnlyProjectScopedClusters": False,
            "destinationServiceAccounts": [
                {"server": "https://kubernetes.default.svc", "namespace": "team-a-*",
                 "defaultServiceAccount": "deployer"},
            ],
            "sourceIntegrity": {"git": {"policies": [{"repos": [{"url": "*"}], "gpg": {"mode": "head"}}]}},
        },
        "status": {"jwtTokensByRole": {"ci": {"items": [{"iat": 1700000000, "id": "abc"}]}}},
    }


def test_full_manifest_loads_every_field() -> None:
    p = AppProject.from_dict(full_manifest(), source="team-a.yaml")
    assert (p.name, p.namespace, p.description) == ("team-a", "syncwarden", "Team A")
    assert p.source_repos == ("https://github.com/team-a/*", "!https://github.com/team-a/secret")
    assert p.destinations == (Destination("https://kubernetes.default.svc", None, "team-a-*"),
                              Destination(None, "prod", "!kube-system"))
    assert p.cluster_resource_whitelist == (ResourceRule("", "Namespace", "team-a-*"),)
    assert p.cluster_resource_blacklist == ()
    assert p.namespace_resource_whitelist == (ResourceRule("*", "*"),)
    ci = p.role("ci")
    assert ci is not None and ci.groups == ("team-a:ci", '"cn=ci,ou=groups,dc=example,dc=org"')
    assert [t.iat for t in ci.jwt_tokens] == [1700000000, 1700000001]
    assert p.role("nobody") is None
    assert p.sync_windows is not None and p.sync_windows[0].manual_sync
    assert p.orphaned_resources is not None and p.orphaned_resources.warn is True
    assert p.signature_keys == ("4AEE18F83AFDEB23",)
    assert p.source_namespaces == ("team-a-apps", "/^team-a-ci-[0-9]+$/")
    assert p.permit_only_project_scoped_clusters is False
    assert p.destination_service_accounts is not None
    assert p.destination_service_accounts[0].default_service_account == "deployer"
    assert [t.id for t in p.tokens("ci")] == ["abc"]
    assert p.tokens("viewer") == ()


def test_round_trip_is_exact_and_key_order_stable() -> None:
    manifest = full_manifest()
    p = AppProject.from_dict(copy.deepcopy(manifest))
    out = p.to_dict()
    assert out == manifest
    assert json.dumps(out) == json.dumps(manifest)  # same key order, at every level
    assert AppProject.from_dict(out) == p


def test_example_project_round_trips() -> None:
    from config import yamlsafe

    p = AppProject.from_yaml(EXAMPLE.read_text(), source=str(EXAMPLE))
    assert p.to_dict() == yamlsafe.load_one(EXAMPLE.read_text(), source="x")


LISTS = [
    "sourceRepos", "destinations", "roles", "clusterResourceWhitelist", "namespaceResourceBlacklist",
    "syncWindows", "namespaceResourceWhitelist", "signatureKeys", "clusterResourceBlacklist", "sourceNamespaces",
    "destinationServiceAccounts",
]


@pytest.mark.parametrize("key", LISTS)
def test_absent_and_empty_lists_stay_different(key: str) -> None:
    empty = AppProject.from_dict({key: []}, name="p")
    absent = AppProject.from_dict({}, name="p")
    assert empty.to_dict() == {key: []}
    assert absent.to_dict() == {}
    assert empty != absent


def test_bare_spec_uses_the_given_name_and_round_trips() -> None:
    spec = {"sourceRepos": ["*"], "roles": [{"name": "ci", "policies": ["p, proj:web:ci, logs, get, web/*, allow"]}]}
    p = AppProject.from_dict(spec, name="web")
    assert p.name == "web" and not p.manifest
    assert p.to_dict() == spec
    assert AppProject.from_dict({}).name == "default"


def test_spec_dict_of_a_manifest() -> None:
    assert AppProject.from_dict(full_manifest()).spec_dict() == full_manifest()["spec"]


def test_windows_state_delegates() -> None:
    p = AppProject.from_dict(full_manifest())
    at_night = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # 22:30 in Amsterdam (CET)
    state = p.windows_state(app="web", namespace="team-a-x", at=at_night)
    assert not state.can_sync_auto and state.can_sync_manual
    assert p.windows_state(app="web", namespace="team-a-x", at=datetime(2026, 3, 2, 12, tzinfo=UTC)).can_sync_auto
    assert AppProject.from_dict({}, name="p").windows_state(app="a", namespace="b", at=at_night).can_sync_auto


def test_default_project() -> None:
    p = default_project(namespace="syncwarden")
    assert p.to_dict() == {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": "default", "namespace": "syncwarden"},
        "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                 "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]},
    }
    assert AppProject.from_dict(p.to_dict()) == p
    assert p.check_source("https://anything/x")
    assert p.check_destination(server="https://any", namespace="any")
    assert not p.check_destination(name="in-cluster", namespace="any")  # server-only entry, as in Argo CD
    assert not p.check_source_namespace("team-a")  # no sourceNamespaces: only the control plane
    assert p.roles == () and p.sync_windows is None and p.orphaned_resources is None


def mutate(path: str, value: Any) -> dict[str, Any]:
    """The full manifest with ``path`` (dotted, ``[i]`` for list items) set to ``value`` (``...`` deletes)."""
    manifest = full_manifest()
    node: Any = manifest
    parts = path.replace("[", ".").replace("]", "").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]
    elif isinstance(node, list) and key == len(node):
        node.append(value)
    else:
        node[key] = value
    return manifest


ERRORS = [
    pytest.param("apiVersion", "v1", "apiVersion", "must be 'argoproj.io/v1alpha1'", id="api-version"),
    pytest.param("kind", "Application", "kind", "must be 'AppProject'", id="kind"),
    pytest.param("metadata.name", ..., "metadata.name", "is required", id="name-missing"),
    pytest.param("metadata.name", "Team_A", "metadata.name", "DNS-1123", id="name-not-dns"),
    pytest.param("metadata.name", "a,b", "metadata.name", "DNS-1123", id="name-comma"),
    pytest.param("metadata.name", "a" * 254, "metadata.name", "DNS-1123", id="name-too-long"),
    pytest.param("metadata.name", 7, "metadata.name", "must be a string, not integer", id="name-int"),
    pytest.param("metadata.namespace", "Bad NS", "metadata.namespace", "not a valid namespace", id="namespace"),
    pytest.param("metadata", [], "metadata", "must be a mapping", id="metadata-list"),
    pytest.param("spec", ..., "spec", "is required", id="spec-missing"),
    pytest.param("spec.sourceRepo", ["x"], "spec.sourceRepo", "unknown field", id="unknown-spec-field"),
    pytest.param("extra", 1, "extra", "unknown field", id="unknown-top-field"),
    pytest.param("spec.description", "x" * 256, "spec.description", "at most 255", id="description-long"),
    pytest.param("spec.description", 12, "spec.description", "must be a string", id="description-int"),
    pytest.param("spec.sourceRepos", "https://x", "spec.sourceRepos", "must be a list", id="repos-not-list"),
    pytest.param("spec.sourceRepos[1]", 3, "spec.sourceRepos[1]", "must be a string", id="repo-int"),
    pytest.param("spec.sourceRepos[1]", "!*", "spec.sourceRepos[1]", "'!*'", id="item8-repo-bang-star"),
    pytest.param("spec.sourceRepos[1]", "https://github.com/team-a/*", "spec.sourceRepos[1]", "duplicate",
                 id="item8-repo-duplicate"),
    pytest.param("spec.sourceRepos[1]", "", "spec.sourceRepos[1]", "non-empty", id="repo-empty"),
    pytest.param("spec.sourceRepos[1]", "!https://x/[a", "spec.sourceRepos[1]", "does not compile", id="repo-bad-glob"),
    pytest.param("spec.destinations[0].server", "!*", "spec.destinations[0].server", "'!*'", id="item8-server-bang"),
    pytest.param("spec.destinations[1].name", "!*", "spec.destinations[1].name", "'!*'", id="item8-name-bang"),
    pytest.param("spec.destinations[0].namespace", "!*", "spec.destinations[0].namespace", "'!*'",
                 id="item8-namespace-bang"),
    pytest.param("spec.destinations[1]", {"server": "https://kubernetes.default.svc", "namespace": "team-a-*"},
                 "spec.destinations[1]", "duplicate destination", id="item8-destination-duplicate"),
    pytest.param("spec.destinations[0]", {"name": "prod", "namespace": "!kube-system"}, "spec.destinations[1]",
                 "duplicate destination 'prod/!kube-system'", id="item8-blank-server-deduplicated-by-name"),
    pytest.param("spec.destinations[0]", {"namespace": "x"}, "spec.destinations[0]", "a server or a name",
                 id="destination-without-cluster"),
    pytest.param("spec.destinations[0].cluster", "x", "spec.destinations[0].cluster", "unknown field",
                 id="destination-unknown-key"),
    pytest.param("spec.destinations[0].namespace", "!{a,b", "spec.destinations[0].namespace", "does not compile",
                 id="destination-bad-negated-glob"),
    pytest.param("spec.destinations[0].server", "https://x\n", "spec.destinations[0].server", "control",
                 id="destination-newline"),
    pytest.param("spec.clusterResourceWhitelist[0].kind", ..., "spec.clusterResourceWhitelist[0].kind", "is required",
                 id="rule-kind-missing"),
    pytest.param("spec.namespaceResourceBlacklist[0].name", "x", "spec.namespaceResourceBlacklist[0].name",
                 "unknown field", id="namespace-rule-has-no-name"),
    pytest.param("spec.namespaceResourceBlacklist[0].kind", "[", "spec.namespaceResourceBlacklist[0].kind",
                 "does not compile", id="rule-bad-pattern"),
    pytest.param("spec.sourceNamespaces[1]", "team-a-apps", "spec.sourceNamespaces[1]", "duplicate",
                 id="source-namespace-duplicate"),
    pytest.param("spec.sourceNamespaces[1]", "/(?=x)team/", "spec.sourceNamespaces[1]", "RE2",
                 id="source-namespace-lookaround"),
    pytest.param("spec.sourceNamespaces[1]", "team-[", "spec.sourceNamespaces[1]", "does not compile",
                 id="source-namespace-bad-glob"),
    pytest.param("spec.syncWindows[0].schedule", "0 0 * * 7", "spec.syncWindows[0].schedule", "cron",
                 id="window-bad-schedule"),
    pytest.param("spec.syncWindows[0].kind", ..., "spec.syncWindows[0].kind", "required", id="window-no-kind"),
    pytest.param("spec.orphanedResources.warn", "yes", "spec.orphanedResources.warn", "true or false",
                 id="orphaned-warn-not-bool"),
    pytest.param("spec.orphanedResources.ignore[0].kind", "[", "spec.orphanedResources.ignore[0].kind",
                 "does not compile", id="orphaned-bad-glob"),
    pytest.param("spec.signatureKeys[0]", {}, "spec.signatureKeys[0].keyID", "GPG key ID", id="signature-key-empty"),
    pytest.param("spec.permitOnlyProjectScopedClusters", "true", "spec.permitOnlyProjectScopedClusters",
                 "true or false", id="permit-only-string"),
    pytest.param("spec.destinationServiceAccounts[0].server", "!https://x", "spec.destinationServiceAccounts[0].server",
                 "negation", id="item22-sa-negation"),
    pytest.param("spec.destinationServiceAccounts[0].namespace", "a!b",
                 "spec.destinationServiceAccounts[0].namespace", "negation", id="item22-sa-bang-anywhere"),
    pytest.param("spec.destinationServiceAccounts[0].namespace", "team-[",
                 "spec.destinationServiceAccounts[0].namespace", "does not compile", id="item22-sa-bad-glob"),
    pytest.param("spec.destinationServiceAccounts[0].defaultServiceAccount", "  ",
                 "spec.destinationServiceAccounts[0].defaultServiceAccount", "service account", id="item22-sa-blank"),
    pytest.param("spec.destinationServiceAccounts[0].defaultServiceAccount", "ns/sa",
                 "spec.destinationServiceAccounts[0].defaultServiceAccount", "contains /", id="item22-sa-slash"),
    pytest.param("spec.destinationServiceAccounts[0].defaultServiceAccount", "a\\b",
                 "spec.destinationServiceAccounts[0].defaultServiceAccount", "contains \\", id="item22-sa-backslash"),
    pytest.param("spec.destinationServiceAccounts[0].defaultServiceAccount", "{sa}",
                 "spec.destinationServiceAccounts[0].defaultServiceAccount", "contains {", id="item22-sa-brace"),
    pytest.param("spec.destinationServiceAccounts[0].defaultServiceAccount", "s*",
                 "spec.destinationServiceAccounts[0].defaultServiceAccount", "contains *", id="item22-sa-star"),
    pytest.param("spec.destinationServiceAccounts[1]", {"server": "https://kubernetes.default.svc",
                                                        "namespace": "team-a-*", "defaultServiceAccount": "other"},
                 "spec.destinationServiceAccounts[1]", "duplicate", id="item22-sa-duplicate"),
    pytest.param("status.conditions", [], "status.conditions", "unknown field", id="status-unknown"),
    pytest.param("status.jwtTokensByRole.ci.items[0].iat", "now", "status.jwtTokensByRole.ci.items[0].iat",
                 "must be an integer", id="token-iat-string"),
    pytest.param("status.jwtTokensByRole.ci.items[0].iat", True, "status.jwtTokensByRole.ci.items[0].iat",
                 "must be an integer, not boolean", id="token-iat-bool"),
    pytest.param("spec.roles[0].jwtTokens[0].iat", ..., "spec.roles[0].jwtTokens[0].iat", "is required",
                 id="legacy-token-iat-missing"),
]


@pytest.mark.parametrize(("path", "value", "field", "fragment"), ERRORS)
def test_errors_name_the_field(path: str, value: Any, field: str, fragment: str) -> None:
    with pytest.raises(InvalidProject) as info:
        AppProject.from_dict(mutate(path, value), source="team-a.yaml")
    assert info.value.field == field
    assert fragment in info.value.detail
    assert str(info.value).startswith(f"team-a.yaml: {field}: ")


def test_window_errors_are_invalid_window() -> None:
    with pytest.raises(InvalidWindow):
        AppProject.from_dict(mutate("spec.syncWindows[0].duration", "0s"), source="x")


def test_duplicate_windows_name_the_second() -> None:
    manifest = full_manifest()
    manifest["spec"]["syncWindows"].append({**manifest["spec"]["syncWindows"][0], "manualSync": False})
    with pytest.raises(InvalidWindow) as info:
        AppProject.from_dict(manifest, source="x")
    assert info.value.field == "spec.syncWindows[1]"


def test_bare_spec_errors_use_bare_paths() -> None:
    with pytest.raises(InvalidProject) as info:
        AppProject.from_dict({"destinations": [{"server": "!*"}]}, name="p")
    assert info.value.field == "destinations[0].server"


@pytest.mark.parametrize("value", [pytest.param([], id="list"), pytest.param("text", id="string")])
def test_non_mapping_input(value: Any) -> None:
    with pytest.raises(InvalidProject, match="must be a mapping"):
        AppProject.from_dict(value, source="x")


def test_yaml_duplicate_keys_are_an_error_difference_7() -> None:
    text = "sourceRepos: ['*']\nsourceRepos: ['https://evil/*']\n"
    with pytest.raises(InvalidProject, match="(?i)duplicate") as info:
        AppProject.from_yaml(text, source="p.yaml")
    assert "p.yaml" in str(info.value)


def test_yaml_python_tags_are_an_error() -> None:
    with pytest.raises(InvalidProject):
        AppProject.from_yaml("sourceRepos: !!python/object/apply:os.system ['true']\n", source="p.yaml")


def test_explicit_null_list_reads_as_absent() -> None:
    assert AppProject.from_dict({"sourceRepos": None}, name="p").source_repos is None


def test_project_is_immutable_and_hashable_parts() -> None:
    p = AppProject.from_dict(full_manifest())
    with pytest.raises(AttributeError):
        p.name = "other"  # type: ignore[misc]
    assert len({p.destinations, p.cluster_resource_whitelist}) == 2


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("a\nb", id="newline"),
        pytest.param('a"b', id="quote"),
        pytest.param("a[b]", id="brackets"),
        pytest.param("a b", id="space"),
        pytest.param("Web", id="upper-case"),
        pytest.param("a:b", id="colon-would-break-subjects"),
        pytest.param("a/b", id="slash-would-break-objects"),
        pytest.param("-a", id="leading-dash"),
        pytest.param("", id="empty"),
    ],
)
def test_hostile_project_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidProject) as info:
        AppProject.from_dict(mutate("metadata.name", name))
    assert info.value.field == "metadata.name"
    with pytest.raises(InvalidProject) as bare:
        AppProject.from_dict({}, name=name or "-")
    assert bare.value.field == "name"


def test_dotted_project_name_is_a_valid_subdomain() -> None:
    assert AppProject.from_dict({}, name="team.a").name == "team.a"


def test_non_string_keys_are_rejected() -> None:
    with pytest.raises(InvalidProject, match="keys must be strings"):
        AppProject.from_dict({"sourceRepos": ["*"], 1: "x"}, name="p")
