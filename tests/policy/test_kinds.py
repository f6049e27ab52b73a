"""policy.kinds: the built-in scope table, CRDs among manifests, and `kubectl api-resources` output."""

from __future__ import annotations

import pytest

from policy.kinds import KindTable, KindTableError, group_of

API_RESOURCES = """\
NAME                              SHORTNAMES   APIVERSION                        NAMESPACED   KIND
configmaps                        cm           v1                                true         ConfigMap
namespaces                        ns           v1                                false        Namespace
widgets                                        example.com/v1                    true         Widget
clusterwidgets                                 example.com/v1                    false        ClusterWidget
"""


@pytest.mark.parametrize(
    ("group", "kind", "expected"),
    [
        pytest.param("", "ConfigMap", True, id="configmap"),
        pytest.param("", "Namespace", False, id="namespace"),
        pytest.param("apps", "Deployment", True, id="deployment"),
        pytest.param("rbac.authorization.k8s.io", "ClusterRoleBinding", False, id="crb"),
        pytest.param("apiextensions.k8s.io", "CustomResourceDefinition", False, id="crd"),
        pytest.param("argoproj.io", "Application", True, id="argo-app"),
        pytest.param("example.com", "Widget", None, id="unknown"),
        pytest.param("", "deployment", None, id="case-sensitive"),
    ],
)
def test_builtin_table(group: str, kind: str, expected: bool | None) -> None:
    assert KindTable.builtin().namespaced(group, kind) is expected


def test_group_of() -> None:
    assert group_of("v1") == ""
    assert group_of("apps/v1") == "apps"
    assert group_of("rbac.authorization.k8s.io/v1") == "rbac.authorization.k8s.io"


def test_crds_among_manifests_define_kinds() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {"group": "example.com", "names": {"kind": "Widget"}, "scope": "Cluster"},
    }
    table = KindTable.builtin().with_crds([(crd, "crds.yaml[0]")])
    assert table.namespaced("example.com", "Widget") is False
    assert table.source_of("example.com", "Widget") == "CRD in crds.yaml[0]"


def test_a_malformed_crd_is_an_error_naming_it() -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "spec": {"group": "x"}}
    with pytest.raises(KindTableError, match=r"crds.yaml\[2\]"):
        KindTable.builtin().with_crds([(crd, "crds.yaml[2]")])


def test_api_resources_output_with_blank_shortnames() -> None:
    table = KindTable.builtin().with_api_resources(API_RESOURCES, source="res.txt")
    assert table.namespaced("example.com", "Widget") is True
    assert table.namespaced("example.com", "ClusterWidget") is False
    assert table.source_of("example.com", "Widget") == "res.txt line 4"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("NAME KIND\nx Y\n", "APIVERSION, NAMESPACED", id="no-columns"),
        pytest.param("NAME  APIVERSION  NAMESPACED  KIND\nx     v1          maybe       X\n", "line 2", id="bad-bool"),
    ],
)
def test_bad_api_resources_files(text: str, needle: str) -> None:
    with pytest.raises(KindTableError, match=needle):
        KindTable.builtin().with_api_resources(text, source="res.txt")
