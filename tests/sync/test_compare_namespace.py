"""sync.compare with ``managedNamespaceMetadata`` (argocd-sync-semantics §3.1 step 7, §3.7), and the §2.1 check
of the metadata against what the last sync applied (sync.namespace_meta).

Aspects: a destination Namespace this app tracks (the metadata carries the tracking id) but Git lacks is
compared with a target built from the metadata: Synced when the live namespace carries it (labels other tools set
do not count), OutOfSync when not, never handed to the engine and never a prune candidate; without CreateNamespace
it is an ordinary prune candidate; a Git-defined destination Namespace that does not exist yet is Synced (the
sync creates it) but only with the metadata set; the metadata differs from what was applied when it was never
applied or changed since, not when only the spelling differs, and never when Git defines the namespace.
"""

from __future__ import annotations

import copy
from typing import Any

from sync import namespace_meta
from sync.application import Application
from sync.compare import SyncStatus
from sync.models import ResourceKey
from tests.sync.compare_fixtures import ANN, cm, live, row, run, tracked_by

METADATA = {"labels": {"team": "web"}, "annotations": {ANN: "gb:/Namespace:web/web"}}
NS_KEY = ResourceKey("", "Namespace", "", "web")


def app(metadata: dict[str, Any] | None = METADATA, *, create: bool = True) -> Application:
    policy: dict[str, Any] = {"syncOptions": ["CreateNamespace=true"] if create else []}
    if metadata is not None:
        policy["managedNamespaceMetadata"] = metadata
    return Application.from_dict({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "gb", "namespace": "syncwarden"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example.com/gb.git", "path": ".", "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
            "syncPolicy": policy,
        },
    })


def live_namespace(labels: dict[str, str]) -> dict[str, Any]:
    obj = {"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": "web", "labels": labels, "annotations": {ANN: "gb:/Namespace:web/web"}},
           "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    return live(obj)


def test_a_tracked_destination_namespace_is_compared_with_the_metadata_not_pruned() -> None:
    c = run([cm()], [live(tracked_by(cm())), live_namespace({"team": "web", "istio-injection": "enabled"})],
            app=app())
    ns = row(c, "Namespace", "web")
    assert (ns.key, ns.status, ns.requires_pruning) == (NS_KEY, SyncStatus.SYNCED, False)
    assert c.sync_status is SyncStatus.SYNCED
    assert [t["kind"] for t in c.targets] == ["ConfigMap"]  # CreateNamespace applies it, not the resource steps
    assert [o["kind"] for o in c.managed_live] == ["ConfigMap"]  # so it is never pruned


def test_a_tracked_namespace_lacking_the_metadata_is_out_of_sync() -> None:
    c = run([cm()], [live(tracked_by(cm())), live_namespace({"team": "other"})], app=app())
    ns = row(c, "Namespace", "web")
    assert ns.status is SyncStatus.OUT_OF_SYNC and not ns.requires_pruning
    assert ns.diff is not None and [i.path for i in ns.diff.items] == ["/metadata/labels/team"]
    assert c.sync_status is SyncStatus.OUT_OF_SYNC


def test_without_create_namespace_a_tracked_namespace_is_a_prune_candidate() -> None:
    c = run([cm()], [live(tracked_by(cm())), live_namespace({"team": "web"})], app=app(create=False))
    ns = row(c, "Namespace", "web")
    assert (ns.status, ns.requires_pruning) == (SyncStatus.OUT_OF_SYNC, True)
    assert "Namespace" in [o["kind"] for o in c.managed_live]


def test_a_git_namespace_that_the_sync_will_create_is_synced() -> None:
    git_ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}
    c = run([git_ns, cm()], [live(tracked_by(cm()))], app=app())
    assert row(c, "Namespace", "web").status is SyncStatus.SYNCED
    assert c.sync_status is SyncStatus.SYNCED
    assert [t["kind"] for t in c.targets] == ["Namespace", "ConfigMap"]  # Git's Namespace is applied as usual

    plain = run([git_ns, cm()], [live(tracked_by(cm()))], app=app(None))
    assert row(plain, "Namespace", "web").status is SyncStatus.OUT_OF_SYNC  # no metadata: no special case


def test_the_metadata_differs_from_what_was_applied() -> None:
    a = app({"labels": {"team": "web"}})
    assert namespace_meta.differs_from_applied(a, [], None)  # never applied
    assert not namespace_meta.differs_from_applied(a, [], {"annotations": {}, "labels": {"team": "web"}})
    assert namespace_meta.differs_from_applied(a, [], {"labels": {"team": "api"}, "annotations": {}})
    assert not namespace_meta.differs_from_applied(app(None), [], {"labels": {"team": "api"}})  # none wanted
    assert not namespace_meta.differs_from_applied(app({"labels": {"x": "y"}}, create=False), [], None)
    git_ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}
    assert not namespace_meta.differs_from_applied(a, [git_ns], None)  # Git's Namespace wins


def test_inputs_are_not_mutated() -> None:
    manifests, live_objs = [cm()], [live(tracked_by(cm())), live_namespace({"team": "web"})]
    before = copy.deepcopy((manifests, live_objs))
    run(manifests, live_objs, app=app())
    assert (manifests, live_objs) == before
