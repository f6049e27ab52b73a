"""SyncEngine's CreateNamespace with ``managedNamespaceMetadata`` against the sandbox over HTTP (§4.2).

Covers: a missing namespace is created carrying the metadata, gated with it, and the state records what was
applied; an existing namespace is applied again only when there is metadata, by server-side apply, so labels
another client set survive while an entry dropped from the metadata is removed; the namespace carries no
tracking unless the metadata brings it; a Git-defined destination Namespace wins (nothing of the metadata is
applied or recorded); a dry run writes and records nothing; without CreateNamespace the metadata is inert.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.cluster import NotFound
from sync.models import ResourceKey
from sync.operation import OperationPhase, OperationState
from tests.sync.enginefixtures import Harness, application, cm, connect, harness, new_op, ns_path

TRACK = "syncwarden.io/tracking-id"
METADATA = {"labels": {"team": "web", "tier": "gold"}, "annotations": {"owner": "web-team@example.com"}}


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    yield from harness(tmp_path)


def results(op: OperationState) -> dict[str, tuple[str, str, str]]:
    return {
        f"{r.sync_phase.value}:{r.key.kind}/{r.key.name}": (r.status.value, r.task_phase.value, r.message)
        for r in op.results
    }


def namespace(h: Harness, name: str) -> dict[str, Any]:
    return h.cluster.get(ResourceKey("", "Namespace", "", name))


def managed_app(dest_ns: str, metadata: dict[str, Any] | None = METADATA) -> Any:
    policy: dict[str, Any] = {"syncOptions": ["CreateNamespace=true"]}
    if metadata is not None:
        policy["managedNamespaceMetadata"] = metadata
    return application(dest_ns=dest_ns, **policy)


def test_a_missing_namespace_is_created_with_the_metadata_and_gated_with_it(h: Harness) -> None:
    app = managed_app("fresh")
    op, _ = h.run(new_op(), lambda: h.request([cm("cfg")], app=app, create_namespace=True))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    ns = namespace(h, "fresh")
    assert ns["metadata"]["labels"] == {"team": "web", "tier": "gold"}
    assert ns["metadata"]["annotations"] == {"owner": "web-team@example.com"}  # no tracking id: untracked
    gated = h.gate.calls[0].objects[0]
    assert (gated["kind"], gated["metadata"]["labels"]) == ("Namespace", {"team": "web", "tier": "gold"})
    assert results(op)["PreSync:Namespace/fresh"] == ("Synced", "Succeeded", "namespace fresh created")
    assert op.managed_namespace_metadata == METADATA
    assert OperationState.from_dict(op.to_dict()).to_dict()["managedNamespaceMetadata"] == METADATA


def test_an_existing_namespace_gets_the_metadata_by_server_side_apply(h: Harness, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    other = connect(h.sb, tmp_path / "other")  # another tool that labels the namespace itself
    try:
        other.apply({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": "shared", "labels": {"istio-injection": "enabled"}}}, field_manager="istio")
    finally:
        other.close()
    h.sb.requests.clear()
    app = managed_app("shared")
    op, _ = h.run(new_op(), lambda: h.request([cm("cfg")], app=app, create_namespace=True))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert h.writes()[0] == ("patch", "/api/v1/namespaces/shared")
    assert h.sb.requests.writes()[0].body_summary.split()[0] == "application/apply-patch+yaml"
    assert namespace(h, "shared")["metadata"]["labels"] == {"istio-injection": "enabled", "team": "web",
                                                            "tier": "gold"}
    assert results(op)["PreSync:Namespace/shared"] == ("Synced", "Succeeded", "namespace shared metadata applied")

    # the metadata loses a label: the next sync removes it, and only it
    smaller = managed_app("shared", {"labels": {"team": "web"}})
    op, _ = h.run(new_op("op-2"), lambda: h.request([cm("cfg")], app=smaller, create_namespace=True))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    labels = namespace(h, "shared")["metadata"]["labels"]
    assert labels == {"istio-injection": "enabled", "team": "web"}
    assert op.managed_namespace_metadata == {"labels": {"team": "web"}, "annotations": {}}


def test_an_existing_namespace_without_metadata_is_not_written(h: Harness) -> None:
    app = managed_app("team-a", None)
    op, _ = h.run(new_op(), lambda: h.request([cm("cfg")], app=app, create_namespace=True))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert h.writes() == [("patch", ns_path("ConfigMap", "cfg"))] * 2  # the namespace is left alone
    assert op.managed_namespace_metadata is None


def test_the_metadata_can_make_the_namespace_tracked(h: Harness) -> None:
    tracked = {"annotations": {TRACK: "web:/Namespace:tracked/tracked"}}
    op, _ = h.run(new_op(), lambda: h.request([cm("cfg")], app=managed_app("tracked", tracked),
                                              create_namespace=True))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert namespace(h, "tracked")["metadata"]["annotations"] == {TRACK: "web:/Namespace:tracked/tracked"}


def test_a_git_defined_namespace_wins_over_the_metadata(h: Harness) -> None:
    git_ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gitns", "labels": {"from": "git"}}}
    app = managed_app("gitns")
    op, _ = h.run(new_op(), lambda: h.request([git_ns, cm("cfg")], app=app, create_namespace=True))

    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert namespace(h, "gitns")["metadata"]["labels"] == {"from": "git"}
    assert [o["kind"] for o in h.gate.calls[0].objects].count("Namespace") == 1
    assert op.managed_namespace_metadata is None


def test_a_dry_run_writes_and_records_nothing(h: Harness) -> None:
    app = managed_app("dry")
    op, _ = h.run(new_op(), lambda: h.request([cm("cfg")], app=app, create_namespace=True, dry_run=True))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    with pytest.raises(NotFound):
        namespace(h, "dry")
    assert op.managed_namespace_metadata is None


def test_without_create_namespace_the_metadata_is_inert(h: Harness) -> None:
    app = managed_app("team-a")
    op, _ = h.run(new_op(), lambda: h.request([cm("cfg")], app=app))
    assert op.phase is OperationPhase.SUCCEEDED, op.message
    assert h.writes() == [("patch", ns_path("ConfigMap", "cfg"))] * 2
    assert "labels" not in namespace(h, "team-a")["metadata"]
    assert op.managed_namespace_metadata is None
