"""The cluster registry, seeded from kubeconfig files written in tmp dirs.

Covers: one entry per context named after it with its server URL; current-context; KUBECONFIG with
several files (first wins); in-cluster entry when running in a pod; resolving a destination by server
or name; ``https://kubernetes.default.svc`` / ``in-cluster`` meaning the in-cluster config or the
current context; unknown destinations and bad files give clear errors; labels and allowed namespaces.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sync import cluster
from sync.cluster_registry import IN_CLUSTER_SERVER, ClusterEntry, ClusterRegistry, default_kubeconfig_paths

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: prod-cluster
  cluster: {server: "https://prod.example.com:6443/"}
- name: dev-cluster
  cluster: {server: "https://dev.example.com"}
contexts:
- name: prod
  context: {cluster: prod-cluster, user: admin}
- name: dev
  context: {cluster: dev-cluster, user: admin, namespace: team}
- name: dangling
  context: {cluster: missing, user: admin}
current-context: dev
users:
- name: admin
  user: {token: sekret-token-123}
"""


def _write(tmp_path: Path, text: str = KUBECONFIG, name: str = "config") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_each_context_becomes_a_cluster(tmp_path: Path) -> None:
    path = _write(tmp_path)
    reg = ClusterRegistry.load([path], environ={})
    assert {e.name: e.server for e in reg.entries()} == {
        "prod": "https://prod.example.com:6443",
        "dev": "https://dev.example.com",
    }
    assert reg.current == "dev"
    prod = reg.get("prod")
    assert prod.context == "prod"
    assert prod.kubeconfig == str(path)
    assert not prod.in_cluster
    assert "sekret" not in repr(reg.entries())


def test_resolve_by_server_and_by_name(tmp_path: Path) -> None:
    reg = ClusterRegistry.load([_write(tmp_path)], environ={})
    assert reg.resolve(server="https://prod.example.com:6443").name == "prod"
    assert reg.resolve(server="https://prod.example.com:6443/").name == "prod"
    assert reg.resolve(name="dev").server == "https://dev.example.com"


def test_local_cluster_means_current_context_outside_a_pod(tmp_path: Path) -> None:
    reg = ClusterRegistry.load([_write(tmp_path)], environ={})
    assert reg.resolve(server=IN_CLUSTER_SERVER).name == "dev"
    assert reg.resolve(name="in-cluster").name == "dev"


def test_local_cluster_means_in_cluster_config_in_a_pod(tmp_path: Path) -> None:
    reg = ClusterRegistry.load([_write(tmp_path)], environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    entry = reg.resolve(server=IN_CLUSTER_SERVER)
    assert entry.name == "in-cluster"
    assert entry.in_cluster
    assert reg.resolve(name="in-cluster") == entry


def test_local_cluster_without_any_config_is_unknown() -> None:
    reg = ClusterRegistry.load([], environ={})
    with pytest.raises(cluster.UnknownCluster, match="no in-cluster config"):
        reg.resolve(server=IN_CLUSTER_SERVER)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"server": "https://other.example.com"}, "not a registered cluster; known: dev, prod", id="server"
        ),
        pytest.param({"name": "staging"}, "'staging' is not a registered cluster", id="name"),
        pytest.param({}, "set spec.destination.server or .name", id="neither"),
        pytest.param({"server": "https://dev.example.com", "name": "dev"}, "both server", id="both"),
    ],
)
def test_unknown_destinations(tmp_path: Path, kwargs: dict[str, str], message: str) -> None:
    reg = ClusterRegistry.load([_write(tmp_path)], environ={})
    with pytest.raises(cluster.UnknownCluster, match=message):
        reg.resolve(**kwargs)


def test_same_server_prefers_the_current_context(tmp_path: Path) -> None:
    text = KUBECONFIG.replace("https://dev.example.com", "https://prod.example.com:6443")
    reg = ClusterRegistry.load([_write(tmp_path, text)], environ={})
    assert reg.resolve(server="https://prod.example.com:6443").name == "dev"


def test_kubeconfig_env_lists_files_first_wins(tmp_path: Path) -> None:
    first = _write(
        tmp_path,
        "contexts:\n- name: dev\n  context: {cluster: c}\nclusters:\n- name: c\n  cluster: {server: 'https://first'}\n",
        "a",
    )
    second = _write(tmp_path, name="b")
    env = {"KUBECONFIG": f"{first}:{tmp_path / 'missing'}:{second}"}
    assert default_kubeconfig_paths(env) == [first, tmp_path / "missing", second]
    reg = ClusterRegistry.load(environ=env)
    assert reg.get("dev").server == "https://first"
    assert reg.get("prod").server == "https://prod.example.com:6443"
    assert reg.current == "dev"


def test_default_path_is_home_kube_config(tmp_path: Path) -> None:
    assert default_kubeconfig_paths({"HOME": str(tmp_path)}) == [tmp_path / ".kube" / "config"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("- just\n- a list\n", "must be a mapping", id="not-mapping"),
        pytest.param("contexts: {a: b}\n", "contexts: expected a list", id="contexts-not-list"),
        pytest.param("contexts:\n- context: {cluster: c}\n", r"contexts\[0\].name", id="no-name"),
        pytest.param(
            "clusters:\n- name: c\n  cluster: [1]\n",
            r"clusters\[0\].cluster: expected a mapping",
            id="cluster-not-mapping",
        ),
        pytest.param("a: 1\na: 2\n", "duplicate", id="duplicate-key"),
    ],
)
def test_bad_kubeconfig_names_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(cluster.ConfigError, match=message) as info:
        ClusterRegistry.load([path], environ={})
    assert str(path) in str(info.value)


def test_unreadable_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(cluster.ConfigError, match="cannot read"):
        ClusterRegistry.load([tmp_path], environ={})  # a directory


def test_register_labels_and_allowed_namespaces(tmp_path: Path) -> None:
    reg = ClusterRegistry.load([_write(tmp_path)], environ={})
    prod = reg.get("prod")
    reg.register(
        ClusterEntry(
            name="prod",
            server=prod.server,
            context="prod",
            kubeconfig=prod.kubeconfig,
            labels={"env": "prod"},
            namespaces=("web", "api"),
        )
    )
    entry = reg.resolve(server="https://prod.example.com:6443")
    assert entry.labels == {"env": "prod"}
    assert entry.allows_namespace("web")
    assert not entry.allows_namespace("kube-system")
    assert not entry.allows_namespace("")  # cluster-scoped objects on a namespace-restricted cluster
    assert reg.get("dev").allows_namespace("anything")
    assert reg.get("dev").allows_namespace("")


def test_context_selection(tmp_path: Path) -> None:
    reg = ClusterRegistry.load([_write(tmp_path)], environ={})
    assert reg.select().name == "dev"  # current-context
    assert reg.select("prod").name == "prod"
    with pytest.raises(cluster.UnknownCluster, match="'nope' is not registered; known: dev, prod"):
        reg.select("nope")
    with pytest.raises(cluster.UnknownCluster, match="no usable current-context"):
        ClusterRegistry.load([], environ={}).select()
