"""The list+watch cache (sync.cluster_cache) over KubeCluster and the sandbox.

Covers: warm-up lists each type once and keeps only tracked top-level objects, indexed by app; a
change made by a second client reaches the callback (ADDED, MODIFIED, DELETED, tracking removed) and
the cache; watches resume from the last resourceVersion seen; a 410 makes the watcher relist; a
resync reports what changed while nobody watched; the periodic resync follows the injected clock; a
CRD created while running is watched and its tracked objects reported; label tracking narrows lists
server-side; a failing callback does not stop the watch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sandbox
from sync import cluster, kube
from sync.cluster import ResourceKey, TrackingSelector
from sync.cluster_cache import CacheEvent, ClusterCache
from sync.cluster_registry import ClusterEntry, ClusterRegistry

TRACK = "syncwarden.io/tracking-id"
WAIT = 15.0  # generous bound for an event to arrive on a loaded machine; never an assertion on time


@pytest.fixture
def sb() -> Iterator[sandbox.Sandbox]:
    with sandbox.start(port=0, bookmark_interval=0.2) as box:
        yield box


@pytest.fixture
def entry(sb: sandbox.Sandbox, tmp_path: Path) -> ClusterEntry:
    path = sb.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
    return ClusterRegistry.load([path], environ={}).get("sandbox")


@pytest.fixture
def kc(entry: ClusterEntry) -> Iterator[kube.KubeCluster]:
    c = kube.connect(entry, timeout_seconds=10, qps=0)
    yield c
    c.close()


@pytest.fixture
def other(entry: ClusterEntry) -> Iterator[kube.KubeCluster]:
    """A second, independent client: changes made through it are 'someone else's'."""
    c = kube.connect(entry, timeout_seconds=10, qps=0)
    yield c
    c.close()


def cm(name: str, app: str | None, ns: str = "default", data: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if app:
        meta["annotations"] = {TRACK: f"{app}:/ConfigMap:{ns}/{name}"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


class Events:
    def __init__(self) -> None:
        self.q: queue.Queue[CacheEvent] = queue.Queue()

    def __call__(self, event: CacheEvent) -> None:
        self.q.put(event)

    def next(self, name: str) -> CacheEvent:
        """The next event about object ``name`` (others are skipped)."""
        while True:
            event = self.q.get(timeout=WAIT)
            if event.key.name == name:
                return event


KINDS = [("", "ConfigMap"), ("apps", "Deployment")]


def _cache(kc: kube.KubeCluster, events: Events | None = None, **kw: Any) -> ClusterCache:
    kw.setdefault("kinds", KINDS)
    return ClusterCache(
        kc, TrackingSelector(key=TRACK), on_event=events, watch_timeout_seconds=2, retry_seconds=0.2, **kw
    )


def test_warm_keeps_tracked_objects_one_list_per_type(kc: kube.KubeCluster, sb: sandbox.Sandbox) -> None:
    kc.apply(cm("a1", "a"))
    kc.apply(cm("a2", "a"))
    kc.apply(cm("b1", "b"))
    kc.apply(cm("plain", None))
    kc.served_resources()
    sb.requests.clear()
    cache = _cache(kc)
    cache.warm()
    lists = [r for r in sb.requests.records() if r.verb == "list"]
    assert len([r for r in lists if "configmaps" in r.path]) == 1
    assert len([r for r in lists if "deployments" in r.path]) == 1
    assert len(cache) == 3
    assert sorted(o["metadata"]["name"] for o in cache.managed("a")) == ["a1", "a2"]
    assert cache.apps() == {"a", "b"}
    assert cache.get(ResourceKey("", "ConfigMap", "default", "plain")) is None
    sb.requests.clear()
    assert len(cache.managed("a")) == 2
    assert sb.requests.records() == []  # reads from the cache cost no request


def test_second_client_changes_reach_the_callback(kc: kube.KubeCluster, other: kube.KubeCluster) -> None:
    kc.apply(cm("web", "a", data={"v": "1"}))
    events = Events()
    cache = _cache(kc, events)
    cache.start()
    try:
        other.apply(cm("web", "a", data={"v": "drifted"}), field_manager="human", force=True)
        event = events.next("web")
        assert (event.type, event.apps) == ("MODIFIED", frozenset({"a"}))
        assert event.obj["data"] == {"v": "drifted"}
        assert cache.get(event.key)["data"] == {"v": "drifted"}  # type: ignore[index]

        other.apply(cm("new", "b"))
        event = events.next("new")
        assert (event.type, event.apps) == ("ADDED", frozenset({"b"}))
        assert [o["metadata"]["name"] for o in cache.managed("b")] == ["new"]

        other.apply(cm("ignored", None))
        other.delete(ResourceKey("", "ConfigMap", "default", "new"))
        event = events.next("new")  # the untracked object made no event before this one
        assert (event.type, event.apps) == ("DELETED", frozenset({"b"}))
        assert cache.managed("b") == []
    finally:
        cache.stop()


def test_tracking_removed_leaves_the_app(kc: kube.KubeCluster, other: kube.KubeCluster) -> None:
    kc.apply(cm("web", "a"))
    events = Events()
    cache = _cache(kc, events)
    cache.start()
    try:
        other.apply(cm("web", None), mode="replace")
        event = events.next("web")
        assert (event.type, event.apps) == ("DELETED", frozenset({"a"}))
        assert cache.managed("a") == []
    finally:
        cache.stop()


class Recording:
    """Our own seam, observed: the real KubeCluster, with the watch calls' resourceVersions recorded."""

    def __init__(self, inner: kube.KubeCluster) -> None:
        self.inner = inner
        self.watched_from: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def watch_objects(self, info: Any, **kw: Any) -> Iterator[Any]:
        self.watched_from.append(kw["resource_version"])
        return self.inner.watch_objects(info, **kw)


def eventually(predicate: Callable[[], bool]) -> None:
    for _ in range(int(WAIT / 0.05)):
        if predicate():
            return
        threading.Event().wait(0.05)
    raise AssertionError("condition not reached")


def test_watch_resumes_from_last_resource_version(
    kc: kube.KubeCluster, other: kube.KubeCluster, sb: sandbox.Sandbox
) -> None:
    events = Events()
    rec = Recording(kc)
    cache = ClusterCache(
        rec,
        TrackingSelector(key=TRACK),
        on_event=events,  # type: ignore[arg-type]
        kinds=[("", "ConfigMap")],
        watch_timeout_seconds=1,
        retry_seconds=0.2,
    )
    cache.start()
    try:
        live = other.apply(cm("web", "a"))
        events.next("web")
        rv = int(live["metadata"]["resourceVersion"])
        calls = len(rec.watched_from)
        eventually(lambda: len(rec.watched_from) >= calls + 2)  # the server ended the watch; re-watched
        assert all(v for v in rec.watched_from)
        assert int(rec.watched_from[-1]) >= rv  # resumed after the event, not from scratch
        lists = [r for r in sb.requests.records() if r.verb == "list"]
        assert len([r for r in lists if "configmaps" in r.path]) == 1  # never relisted
        assert events.q.empty()  # and nothing reported twice
    finally:
        cache.stop()


def test_410_makes_the_watcher_relist(kc: kube.KubeCluster, sb: sandbox.Sandbox, other: kube.KubeCluster) -> None:
    events = Events()
    cache = _cache(kc, events, kinds=[("", "ConfigMap")])
    cache.warm()
    sb.faults.add("watch", "configmaps", status=410, times=1)
    cache.start()
    try:
        other.apply(cm("after-gone", "a"))
        event = events.next("after-gone")
        assert event.type == "ADDED"
        assert cache.stats.relists >= 1
    finally:
        cache.stop()


def test_resync_reports_what_changed_unwatched(kc: kube.KubeCluster, other: kube.KubeCluster) -> None:
    kc.apply(cm("keep", "a", data={"v": "1"}))
    kc.apply(cm("drop", "a"))
    events = Events()
    cache = _cache(kc, events)
    cache.warm()  # not watching
    other.apply(cm("keep", "a", data={"v": "2"}))
    other.delete(ResourceKey("", "ConfigMap", "default", "drop"))
    other.apply(cm("fresh", "c"))
    cache.resync()
    seen = {}
    while not events.q.empty():
        e = events.q.get()
        seen[e.key.name] = (e.type, e.apps)
    assert seen == {
        "keep": ("MODIFIED", frozenset({"a"})),
        "drop": ("DELETED", frozenset({"a"})),
        "fresh": ("ADDED", frozenset({"c"})),
    }


def test_periodic_resync_follows_the_clock(kc: kube.KubeCluster) -> None:
    now = [0.0]
    cache = _cache(kc, kinds=[("", "ConfigMap")], resync_seconds=100.0, clock=lambda: now[0])
    cache.start()
    try:
        threading.Event().wait(0.5)
        assert cache.stats.relists == 0
        now[0] = 200.0
        eventually(lambda: cache.stats.relists > 0)
    finally:
        cache.stop()


def test_new_crd_is_watched(kc: kube.KubeCluster, other: kube.KubeCluster) -> None:
    from tests.sync.test_kube import CRD

    events = Events()
    cache = _cache(kc, events, kinds=None)
    cache.start()
    try:
        other.apply(CRD)
        widget = {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {
                "name": "gadget",
                "namespace": "default",
                "annotations": {TRACK: "a:example.com/Widget:default/gadget"},
            },
        }
        other.apply(widget)  # applying the CRD refreshed the other client's discovery
        event = events.next("gadget")
        assert event.type == "ADDED"
        assert event.key == ResourceKey("example.com", "Widget", "default", "gadget")
        assert cache.get(event.key) is not None
    finally:
        cache.stop()


def test_label_tracking_lists_with_selector(kc: kube.KubeCluster, sb: sandbox.Sandbox) -> None:
    labelled = cm("l", None)
    labelled["metadata"]["labels"] = {TRACK: "a"}
    kc.apply(labelled)
    kc.apply(cm("annotated", "a"))
    sb.requests.clear()
    cache = ClusterCache(kc, TrackingSelector(key=TRACK, method="label"), kinds=[("", "ConfigMap")])
    cache.warm()
    assert [o["metadata"]["name"] for o in cache.managed("a")] == ["l"]
    assert len([r for r in sb.requests.records() if "configmaps" in r.path]) == 1


def test_failing_callback_does_not_stop_the_watch(kc: kube.KubeCluster, other: kube.KubeCluster) -> None:
    good = Events()
    calls = []

    def callback(event: CacheEvent) -> None:
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("handler bug")
        good(event)

    cache = _cache(kc, callback, kinds=[("", "ConfigMap")])  # type: ignore[arg-type]
    cache.start()
    try:
        other.apply(cm("first", "a"))
        other.apply(cm("second", "a"))
        assert good.next("second").type == "ADDED"
    finally:
        cache.stop()


def test_server_restart_loses_history_410_in_stream_then_relist(tmp_path: Path) -> None:
    """The API server restarts (state kept, watch history lost): a watch from an older resourceVersion
    gets the ERROR event with 410 Expired inside the stream, and the cache relists and reports."""
    state = tmp_path / "state.json"
    first = sandbox.start(port=0, state_file=state)
    port = int(first.url.rsplit(":", 1)[1])
    path = first.write_kubeconfig(tmp_path / "kubeconfig", context="sandbox")
    entry = ClusterRegistry.load([path], environ={}).get("sandbox")
    kc = kube.connect(entry, timeout_seconds=10, qps=0)
    kc.apply(cm("seen", "a"))
    events = Events()
    rec = Recording(kc)
    cache = ClusterCache(
        rec,
        TrackingSelector(key=TRACK),
        on_event=events,  # type: ignore[arg-type]
        kinds=[("", "ConfigMap")],
        watch_timeout_seconds=2,
        retry_seconds=0.2,
    )
    cache.warm()
    kc.apply(cm("unseen", "a"))  # written while nobody watches
    first.stop()
    kc.close()
    second = sandbox.start(port=port, state_file=state)
    # a restarted server drops its clients' connections; reconnect (the old sandbox keeps serving
    # kept-alive connections after stop, so a fresh client stands in for the reconnect)
    kc = rec.inner = kube.connect(entry, timeout_seconds=10, qps=0)
    try:
        info = kc.resource_for("v1", "ConfigMap")
        with pytest.raises(cluster.Gone):
            list(kc.watch_objects(info, resource_version="1", timeout_seconds=1))
        cache.start()
        event = events.next("unseen")
        assert (event.type, event.apps) == ("ADDED", frozenset({"a"}))
        assert cache.stats.relists >= 1
        assert sorted(o["metadata"]["name"] for o in cache.managed("a")) == ["seen", "unseen"]
    finally:
        cache.stop()
        kc.close()
        second.stop()
