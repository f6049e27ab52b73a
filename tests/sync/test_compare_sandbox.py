"""sync.compare against the sandbox over HTTP, through the official client (KubeCluster).

A second client (another connection with its own field manager, as ``kubectl`` would be) writes objects; the
comparison reads them back the way the reconciler does (``list_managed`` for what the app tracks, ``get`` for
adoption candidates, discovery for scope) and must see: an object in sync, drift, a missing object, a prune
candidate, an untracked object to adopt, another app's object left alone, and a Secret whose values never
appear. Then syncwarden applies ``Comparison.targets`` and deletes the prune candidates, and a new comparison
is Synced: server-populated fields (managedFields, resourceVersion, uid, defaults) are not differences.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sandbox
from config.settings import SyncSettings
from sync import cluster, kube, tracking
from sync.cluster_registry import ClusterRegistry
from sync.compare import Comparison, SyncStatus, compare
from sync.models import ResourceKey
from sync.plan import key_of
from tests.sync.compare_fixtures import ANN, application, cm, row

SECRET_VALUE = "sandbox-secret-value"


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[tuple[kube.KubeCluster, kube.KubeCluster]]:
    with sandbox.start(port=0) as sb:
        path = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
        entry = ClusterRegistry.load([path], environ={}).resolve(server=sb.url)
        ours, theirs = kube.connect(entry, qps=0), kube.connect(entry, qps=0)
        try:
            yield ours, theirs
        finally:
            ours.close()
            theirs.close()


def stamped(obj: dict[str, Any], instance: str = "gb") -> dict[str, Any]:
    t = tracking.Tracking()
    return t.stamp(obj, instance=instance, destination_namespace="web")


def compare_live(kc: kube.KubeCluster, manifests: list[dict[str, Any]]) -> Comparison:
    settings = SyncSettings()
    selector = tracking.Tracking.from_settings(settings).selector("gb")

    def namespaced(group: str, kind: str) -> bool | None:
        try:
            return kc.is_namespaced(group, kind)
        except cluster.UnknownKind:
            return None

    kinds = [("", "ConfigMap"), ("", "Secret")]
    return compare(
        application(),
        manifests,
        kc.list_managed(selector, kinds=kinds),
        namespaced=namespaced,
        permitted=lambda _o: True,
        settings=settings,
        fetch=kc.get,
    )


def secret(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "type": "Opaque",
        "stringData": {"password": value},
    }


def test_compare_sync_and_compare_again(clients: tuple[kube.KubeCluster, kube.KubeCluster]) -> None:
    ours, other = clients
    other.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}, field_manager="kubectl")
    writes = [
        stamped(cm("same", ns="web")),
        stamped(cm("drift", ns="web", data={"k": "changed-by-hand"})),
        stamped(cm("old", ns="web")),  # no longer in Git
        cm("adopt", ns="web"),  # untracked, at a target key
        stamped(cm("theirs", ns="web"), instance="other"),  # another app's
        stamped({**secret("old-" + SECRET_VALUE), "metadata": {"name": "creds", "namespace": "web"}}),
    ]
    for obj in writes:
        other.apply(obj, field_manager="kubectl")

    manifests = [cm("same"), cm("drift"), cm("adopt"), cm("theirs"), cm("missing"), secret(SECRET_VALUE)]
    first = compare_live(ours, manifests)
    assert row(first, "ConfigMap", "same").status is SyncStatus.SYNCED
    drift = row(first, "ConfigMap", "drift")
    assert drift.status is SyncStatus.OUT_OF_SYNC
    assert drift.diff is not None and [i.path for i in drift.diff.items] == ["/data/k"]
    assert row(first, "ConfigMap", "missing").status is SyncStatus.OUT_OF_SYNC
    assert row(first, "ConfigMap", "old").requires_pruning
    assert row(first, "ConfigMap", "adopt").status is SyncStatus.OUT_OF_SYNC
    assert row(first, "ConfigMap", "theirs").shared_with == "other"
    assert row(first, "Secret", "creds").status is SyncStatus.OUT_OF_SYNC
    assert first.sync_status is SyncStatus.OUT_OF_SYNC
    assert [c.type for c in first.conditions] == ["SharedResourceWarning"]
    text = json.dumps(first.to_dict())
    for value in (SECRET_VALUE, base64.b64encode(SECRET_VALUE.encode()).decode()):
        assert value not in text

    # sync: apply what the comparison hands over, prune what has no target
    target_keys = {key_of(t) for t in first.targets}
    assert ResourceKey("", "ConfigMap", "web", "theirs") not in target_keys
    for target in first.targets:
        ours.apply(target, force=True)
    for obj in first.managed_live:
        if key_of(obj) not in target_keys:
            ours.delete(key_of(obj))

    second = compare_live(ours, manifests)
    statuses = {r.key.name: r.status for r in second.resources if not r.shared_with}
    assert statuses == {
        "same": SyncStatus.SYNCED,
        "drift": SyncStatus.SYNCED,
        "adopt": SyncStatus.SYNCED,
        "missing": SyncStatus.SYNCED,
        "creds": SyncStatus.SYNCED,
    }
    assert ours.get(ResourceKey("", "ConfigMap", "web", "adopt"))["metadata"]["annotations"][ANN] == (
        "gb:/ConfigMap:web/adopt"
    )
    with pytest.raises(cluster.NotFound):
        ours.get(ResourceKey("", "ConfigMap", "web", "old"))
    theirs = ours.get(ResourceKey("", "ConfigMap", "web", "theirs"))
    assert theirs["metadata"]["annotations"][ANN] == "other:/ConfigMap:web/theirs"  # left alone
    # another app's object already holding what this app wants does not keep the app OutOfSync
    assert row(second, "ConfigMap", "theirs").status is SyncStatus.SYNCED
    assert second.sync_status is SyncStatus.SYNCED
