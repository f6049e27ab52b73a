"""list with label selectors (=, ==, !=, in, notin, exists, !exists) and field selectors
(metadata.name, metadata.namespace), pagination with limit/continue, bad selectors as 400; watch from a
resourceVersion (ADDED/MODIFIED/DELETED in order), the initial ADDED burst without one, selector
transitions, BOOKMARK with allowWatchBookmarks, 410 Gone for a too-old resourceVersion (the official
client's ``Watch`` raises ``ApiException(410)``), timeoutSeconds ending the stream."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

import sandbox
from tests.sandbox.helpers import configmap, http


@pytest.fixture
def labelled(api: client.ApiClient) -> client.CoreV1Api:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "other"}})
    core.create_namespaced_config_map("default", configmap("web", labels={"app": "web", "tier": "front"}))
    core.create_namespaced_config_map("default", configmap("api", labels={"app": "api", "tier": "back"}))
    core.create_namespaced_config_map("default", configmap("db", labels={"app": "db"}))
    core.create_namespaced_config_map("other", configmap("web", labels={"app": "web"}))
    return core


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("app=web", ["default/web", "other/web"], id="equals"),
        pytest.param("app==web", ["default/web", "other/web"], id="double-equals"),
        pytest.param("app!=web", ["default/api", "default/db"], id="not-equals"),
        pytest.param("app in (api,db)", ["default/api", "default/db"], id="in"),
        pytest.param("app notin (api, db)", ["default/web", "other/web"], id="notin"),
        pytest.param("tier", ["default/api", "default/web"], id="exists"),
        pytest.param("!tier", ["default/db", "other/web"], id="not-exists"),
        pytest.param("app=web,tier=front", ["default/web"], id="and"),
        pytest.param("tier in (front,back),app!=api", ["default/web"], id="set-and-compare"),
    ],
)
def test_label_selectors(labelled: client.CoreV1Api, selector: str, expected: list[str]) -> None:
    items = labelled.list_config_map_for_all_namespaces(label_selector=selector).items
    assert sorted(f"{i.metadata.namespace}/{i.metadata.name}" for i in items) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("metadata.name=web", ["default/web", "other/web"], id="name"),
        pytest.param("metadata.namespace=other", ["other/web"], id="namespace"),
        pytest.param("metadata.name!=web,metadata.namespace==default", ["default/api", "default/db"], id="combined"),
    ],
)
def test_field_selectors(labelled: client.CoreV1Api, selector: str, expected: list[str]) -> None:
    items = labelled.list_config_map_for_all_namespaces(field_selector=selector).items
    assert sorted(f"{i.metadata.namespace}/{i.metadata.name}" for i in items) == expected


@pytest.mark.parametrize("query", ["labelSelector=app+in+(web", "labelSelector=%3D%3Dx",
                                   "fieldSelector=spec.nodeName%3Dx"])
def test_bad_selectors_are_400(sb: sandbox.Sandbox, query: str) -> None:
    reply = http(sb.url, "GET", f"/api/v1/configmaps?{query}")
    assert reply.status == 400 and reply.body["kind"] == "Status"


def test_pagination(labelled: client.CoreV1Api) -> None:
    first = labelled.list_namespaced_config_map("default", limit=2)
    assert [i.metadata.name for i in first.items] == ["api", "db"]
    assert first.metadata._continue and first.metadata.remaining_item_count == 1
    rest = labelled.list_namespaced_config_map("default", limit=2, _continue=first.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["web"] and not rest.metadata._continue


def _events(sb: sandbox.Sandbox, path: str, *, until: int, timeout: float = 10) -> list[dict[str, Any]]:
    """Read watch frames from ``path`` until ``until`` have arrived (or the stream ends)."""
    frames: list[dict[str, Any]] = []
    with httpx.stream("GET", sb.url + path, timeout=timeout) as reply:
        assert reply.status_code == 200
        for line in reply.iter_lines():
            frames.append(json.loads(line))
            if len(frames) >= until:
                break
    return frames


def test_watch_from_resource_version(sb: sandbox.Sandbox, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", configmap("a"))
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "2"}})
    core.delete_namespaced_config_map("a", "default")
    core.create_namespaced_secret("default", {"metadata": {"name": "s"}})  # another resource: not seen
    frames = _events(sb, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={start}"
                         "&timeoutSeconds=1", until=10)
    assert [(f["type"], f["object"]["metadata"]["name"]) for f in frames] == [
        ("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    versions = [int(f["object"]["metadata"]["resourceVersion"]) for f in frames]
    assert versions == sorted(versions) and versions[0] > int(start)
    assert frames[1]["object"]["data"] == {"k": "2"}


def test_watch_streams_live_events_with_the_official_client(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", configmap("old"))
    seen: list[tuple[str, str]] = []
    watcher = watch.Watch()

    def consume() -> None:
        for event in watcher.stream(core.list_namespaced_config_map, "default", timeout_seconds=5):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                watcher.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    core.create_namespaced_config_map("default", configmap("new"))
    core.delete_namespaced_config_map("new", "default")
    thread.join(timeout=10)
    assert seen == [("ADDED", "old"), ("ADDED", "new"), ("DELETED", "new")]


def test_watch_selector_transitions(sb: sandbox.Sandbox, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", configmap("a", labels={"team": "x"}))
    core.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"team": "y"}}})
    core.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"team": "x"}}})
    frames = _events(sb, f"/api/v1/configmaps?watch=1&labelSelector=team%3Dx&resourceVersion={start}"
                         "&timeoutSeconds=1", until=10)
    assert [f["type"] for f in frames] == ["ADDED", "DELETED", "ADDED"]


def test_watch_bookmarks(sb: sandbox.Sandbox) -> None:
    rv = sb.core.store.resource_version
    frames = _events(sb, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}"
                         "&allowWatchBookmarks=true&timeoutSeconds=2", until=1)
    assert frames[0]["type"] == "BOOKMARK"
    assert frames[0]["object"]["kind"] == "ConfigMap"
    assert int(frames[0]["object"]["metadata"]["resourceVersion"]) >= rv


def test_watch_without_bookmarks_has_none(sb: sandbox.Sandbox) -> None:
    rv = sb.core.store.resource_version
    frames = _events(sb, f"/api/v1/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=1", until=5)
    assert frames == []


def test_watch_timeout_ends_the_stream(sb: sandbox.Sandbox) -> None:
    started = time.monotonic()
    frames = _events(sb, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1",
                     until=100)
    assert frames == []
    assert time.monotonic() - started < 5


def test_watch_too_old_is_410_gone() -> None:
    with sandbox.Sandbox(history=3) as small:
        core = client.CoreV1Api(client.ApiClient(client.Configuration(host=small.url)))
        start = core.list_namespaced_config_map("default").metadata.resource_version
        for i in range(5):
            core.create_namespaced_config_map("default", configmap(f"c{i}"))
        frames = _events(small, f"/api/v1/configmaps?watch=true&resourceVersion={start}", until=1)
        assert frames[0]["type"] == "ERROR"
        assert frames[0]["object"]["code"] == 410 and frames[0]["object"]["reason"] == "Expired"
        with pytest.raises(ApiException) as err:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                          resource_version=start, timeout_seconds=1):
                pass
        assert err.value.status == 410


def test_watch_bad_resource_version_is_400(sb: sandbox.Sandbox) -> None:
    reply = http(sb.url, "GET", "/api/v1/configmaps?watch=true&resourceVersion=abc")
    assert reply.status == 400 and reply.body["kind"] == "Status"


def test_watch_send_initial_events_ends_with_marked_bookmark(sb: sandbox.Sandbox, api: client.ApiClient) -> None:
    client.CoreV1Api(api).create_namespaced_config_map("default", configmap("a"))
    frames = _events(sb, "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true"
                         "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1", until=2)
    assert [f["type"] for f in frames] == ["ADDED", "BOOKMARK"]
    assert frames[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_watch_without_resource_version_starts_with_existing_objects(sb: sandbox.Sandbox,
                                                                     api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", configmap("b"))
    core.create_namespaced_config_map("default", configmap("a"))
    frames = _events(sb, "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1", until=5)
    assert [(f["type"], f["object"]["metadata"]["name"]) for f in frames] == [("ADDED", "a"), ("ADDED", "b")]
