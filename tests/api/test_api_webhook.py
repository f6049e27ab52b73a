"""``/api/webhook``: signatures per provider over the raw bytes (HOOK-03), malformed payloads are 400 and the
next valid one still works (HOOK-02), payload URLs are never fetched (HOOK-06), pushes only refresh (coalesced),
never sync a payload's revision. The body cap (HOOK-01) is tested through real HTTP in test_api_http.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.api.apihelpers import Harness, harness

SECRETS = {"github": "gh-secret", "gitea": "gitea-secret", "gitlab": "gl-secret", "bitbucket": "bb-secret"}
REPO = "https://github.com/acme/guestbook"


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Any:
    with harness(tmp_path, database_url, webhook_secrets=SECRETS) as value:
        yield value


def _sig(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github(body: bytes, *, event: str = "push") -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-Hub-Signature-256": "sha256=" + _sig(SECRETS["github"], body),
            "Content-Type": "application/json"}


def push_payload(url: str = REPO, **extra: Any) -> bytes:
    payload = {"ref": "refs/heads/main", "after": "0" * 40,
               "repository": {"html_url": url, "clone_url": url + ".git"}, **extra}
    return json.dumps(payload).encode()


def test_github_push_refreshes_the_repository_with_a_revision_hint_only(h: Harness) -> None:
    body = push_payload()
    response = h.client.post("/api/webhook", content=body, headers=github(body))
    assert response.status_code == 202
    assert response.json()["refreshed"] == [REPO]
    assert response.json()["coalesced"] == [REPO + ".git"]  # the same repository, one refresh
    assert h.refreshed == [(REPO, "refs/heads/main")]


def test_pushes_are_coalesced(h: Harness) -> None:
    body = push_payload()
    h.client.post("/api/webhook", content=body, headers=github(body))
    second = h.client.post("/api/webhook", content=body, headers=github(body))
    assert second.json()["refreshed"] == [] and second.json()["coalesced"] == [REPO, REPO + ".git"]
    assert len(h.refreshed) == 1
    h.client.app.state.syncwarden.webhook_seen.clear()  # as if the coalescing window had passed
    third = h.client.post("/api/webhook", content=body, headers=github(body))
    assert third.json()["refreshed"] == [REPO]


@pytest.mark.parametrize("headers", [
    pytest.param({"X-GitHub-Event": "push"}, id="no-signature"),
    pytest.param({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + "0" * 64}, id="wrong"),
    pytest.param({"X-GitHub-Event": "push", "X-Hub-Signature": "sha1=" + "0" * 40}, id="sha1-only"),
    pytest.param({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "gl-secreT"}, id="gitlab-wrong-token"),
    pytest.param({"X-Gitea-Event": "push", "X-Gitea-Signature": "sha256=x"}, id="gitea-wrong"),
    pytest.param({"X-Event-Key": "repo:push"}, id="bitbucket-unsigned"),
])
def test_bad_signatures_are_401(h: Harness, headers: dict[str, str]) -> None:
    response = h.client.post("/api/webhook", content=push_payload(), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert h.refreshed == []


def test_signature_is_over_the_raw_bytes(h: Harness) -> None:
    body = push_payload()
    reserialised = json.dumps(json.loads(body), indent=2).encode()
    response = h.client.post("/api/webhook", content=reserialised, headers=github(body))
    assert response.status_code == 401


def test_unconfigured_provider_is_refused(tmp_path: Path, database_url: str) -> None:
    with harness(tmp_path, database_url) as h:
        body = push_payload()
        assert h.client.post("/api/webhook", content=body, headers=github(body)).status_code == 401


def test_other_providers(h: Harness) -> None:
    gitea = json.dumps({"ref": "refs/heads/dev", "repository": {"clone_url": "https://gitea.example/a/b.git"}}).encode()
    r1 = h.client.post("/api/webhook", content=gitea,
                       headers={"X-Gitea-Event": "push", "X-GitHub-Event": "push",
                                "X-Gitea-Signature": _sig("gitea-secret", gitea)})
    assert r1.status_code == 202 and r1.json()["provider"] == "gitea"
    gitlab = json.dumps({"ref": "refs/heads/main",
                         "project": {"web_url": "https://gitlab.example/g/p"}}).encode()
    r2 = h.client.post("/api/webhook", content=gitlab,
                       headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "gl-secret"})
    assert r2.status_code == 202
    bitbucket = json.dumps({"repository": {"links": {"html": {"href": "https://bitbucket.org/t/r"}}},
                            "push": {"changes": [{"new": {"name": "main"}}]}}).encode()
    r3 = h.client.post("/api/webhook", content=bitbucket,
                       headers={"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + _sig("bb-secret", bitbucket)})
    assert r3.status_code == 202
    assert h.refreshed == [("https://gitea.example/a/b.git", "refs/heads/dev"),
                           ("https://gitlab.example/g/p", "refs/heads/main"), ("https://bitbucket.org/t/r", "main")]


def test_non_push_events_are_acknowledged_and_ignored(h: Harness) -> None:
    body = b'{"zen": "hi"}'
    response = h.client.post("/api/webhook", content=body, headers=github(body, event="ping"))
    assert response.status_code == 202 and response.json()["ignored"] == "not a push event"
    assert h.refreshed == []


MALFORMED = {
    "links-clone-string": b'{"repository": {"links": {"clone": "boom"}}}',
    "ref-updates-empty": b'{"refUpdates": [], "repository": {"links": {"html": {"href": 3}}}}',
    "repository-null": b'{"repository": null}',
    "commits-null-repo": b'{"commits": [{"repo": null}]}',
    "top-level-array": b"[1, 2, 3]",
    "invalid-utf8": b'{"repository": "\xff\xfe"}',
    "deep-nesting": b"[" * 10_000 + b"]" * 10_000,
    "not-json": b"{nope",
}


@pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_payloads_are_400_and_the_next_valid_one_works(h: Harness, body: bytes) -> None:
    bitbucket = {"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + _sig("bb-secret", body)}
    assert h.client.post("/api/webhook", content=body, headers=bitbucket).status_code == 400
    assert h.client.post("/api/webhook", content=body, headers=github(body)).status_code == 400
    good = push_payload()
    assert h.client.post("/api/webhook", content=good, headers=github(good)).status_code == 202


@pytest.fixture
def trap() -> Iterator[list[str]]:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def do_POST(self) -> None:
            self.do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hits.append(f"http://127.0.0.1:{server.server_address[1]}")
    yield hits
    server.shutdown()
    server.server_close()


def test_payload_urls_are_never_fetched(h: Harness, trap: list[str]) -> None:
    base = trap.pop(0)
    body = push_payload(url=f"{base}/repo", compare=f"{base}/compare", hook={"url": f"{base}/hook"},
                        links={"diffstat": {"href": f"{base}/diffstat"}})
    response = h.client.post("/api/webhook", content=body, headers=github(body))
    assert response.status_code == 202
    assert trap == []
    assert all(url.startswith(base) for url, _ in h.refreshed)  # only handed on as a string to match apps


def test_secrets_come_from_settings_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.api.apihelpers import settings_for

    settings = settings_for(tmp_path, f"sqlite:///{tmp_path / 's.db'}", webhook_secrets={"github": "gh-secret"})
    with TestClient(create_app(settings)) as client:
        body = push_payload()
        assert client.post("/api/webhook", content=body, headers=github(body)).status_code == 202
        assert client.post("/api/webhook", content=body, headers={"X-GitHub-Event": "push"}).status_code == 401
    printed = capsys.readouterr().out
    assert printed.count("initial admin password: ") == 1  # printed on stdout, once
