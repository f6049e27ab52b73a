"""Authentication over HTTP: sessions for local accounts, project tokens, and the hostile cases.

Covers: the admin bootstrap (AUTH-06), login / logout / userinfo, login throttling that survives a restart and
cannot be evicted by spraying other names (AUTH-01), concurrent failures (AUTH-03), unknown vs known user
(AUTH-04), disabled accounts and password changes (AUTH-05), forged project tokens (JWT-01/02/04/08/10), token
hygiene (JWT-11), anonymous access, and the unauthenticated allow-list (LEAK-04).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import pytest

from api.app import PUBLIC_ROUTES
from policy import audit
from policy.accounts import PasswordHasher, ThrottleRules
from tests.api.apihelpers import FAST_HASHER, Harness, harness, project_manifest


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Any:
    with harness(tmp_path, database_url) as value:
        yield value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def forge(header: dict[str, Any], claims: dict[str, Any], key: bytes, *, alg: str = "sha256") -> str:
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    digest = hmac.new(key, signing_input.encode(), getattr(hashlib, alg)).digest()
    return signing_input + "." + _b64(digest)


def _project_with_role(h: Harness) -> dict[str, str]:
    admin = h.admin()
    roles = [{"name": "ci", "policies": ["p, proj:web:ci, applications, get, web/*, allow"]}]
    response = h.client.post("/api/v1/projects", headers=admin, json={"project": project_manifest(roles=roles)})
    assert response.status_code == 200, response.text
    return admin


def _valid_claims(h: Harness) -> dict[str, Any]:
    now = int(h.clock.now.timestamp())
    return {"iss": "syncwarden", "aud": "syncwarden", "sub": "proj:web:ci", "iat": now, "nbf": now,
            "exp": now + 3600, "jti": "x"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- bootstrap and sessions --------------------------------------------------------------------------------


def test_initial_admin_password_is_random_announced_once_and_stored_hashed(tmp_path: Path, database_url: str) -> None:
    with harness(tmp_path, database_url) as first:
        assert len(first.announced) == 1
        assert re.fullmatch(r"initial admin password: [A-Za-z0-9_-]{24}", first.announced[0])
        stored = first.state.accounts.find("admin")
        assert first.admin_password not in stored.password_hash
        assert stored.password_hash.startswith("scrypt$")
        first.login()
    with harness(tmp_path, database_url) as second:  # restart: no new password, the old one still works
        assert second.announced == []
        second.login("admin", first.admin_password)


def test_login_returns_a_token_that_authenticates_and_logout_ends_it(h: Harness) -> None:
    token = h.login()
    info = h.client.get("/api/v1/session/userinfo", headers=_bearer(token))
    assert info.json() == {"loggedIn": True, "username": "admin", "kind": "account", "project": ""}
    assert h.client.delete("/api/v1/session", headers=_bearer(token)).status_code == 204
    assert h.client.get("/api/v1/session/userinfo", headers=_bearer(token)).status_code == 401


def test_session_expires(h: Harness) -> None:
    token = h.login()
    h.clock.advance(hours=25)
    assert h.client.get("/api/v1/projects", headers=_bearer(token)).status_code == 401


def test_unknown_user_and_wrong_password_look_the_same(h: Harness) -> None:
    unknown = h.client.post("/api/v1/session", json={"username": "nobody", "password": "wrong-password"})
    wrong = h.client.post("/api/v1/session", json={"username": "admin", "password": "wrong-password"})
    assert unknown.status_code == wrong.status_code == 401
    strip = lambda r: {k: v for k, v in r.json().items() if k != "request_id"}  # noqa: E731
    assert strip(unknown) == strip(wrong) == {"error": "unauthenticated", "message": "invalid username or password"}


def test_disabled_account_and_password_change_end_sessions(h: Harness) -> None:
    ctx = audit.AuditContext(subject="test")
    h.state.accounts.create("alice", FAST_HASHER.hash("alice-password"), ctx=ctx, now=h.clock.now)
    first = h.login("alice", "alice-password")
    h.clock.advance(seconds=1)
    h.state.accounts.set_password("alice", FAST_HASHER.hash("new-password!"), ctx=ctx, now=h.clock.now)
    assert h.client.get("/api/v1/session/userinfo", headers=_bearer(first)).status_code == 401
    h.clock.advance(seconds=1)
    second = h.login("alice", "new-password!")
    h.state.accounts.set_enabled("alice", False, ctx=ctx, now=h.clock.now)
    assert h.client.get("/api/v1/session/userinfo", headers=_bearer(second)).status_code == 401
    denied = h.client.post("/api/v1/session", json={"username": "alice", "password": "new-password!"})
    assert denied.status_code == 401


def test_logins_are_audited_without_the_password(h: Harness) -> None:
    h.client.post("/api/v1/session", json={"username": "admin", "password": "guess-one"})
    h.client.post("/api/v1/session", json={"username": "hunter2-typed-as-name", "password": "guess-two"})
    h.login()
    page = h.client.get("/api/v1/audit", headers=h.admin(), params={"action": "session.create"}).json()
    results = [(r["result"], r["details"]["user"]) for r in page["items"]]
    assert results[:3] == [("denied", "admin"), ("denied", "(unknown user)"), ("ok", "admin")]
    text = json.dumps(page)
    assert "guess-one" not in text and "hunter2-typed-as-name" not in text and h.admin_password not in text


# --- throttling ----------------------------------------------------------------------------------------------


def test_throttle_locks_admin_survives_restart_and_spraying(tmp_path: Path, database_url: str) -> None:
    rules = ThrottleRules(max_failures=5, base_lock_seconds=60)
    with harness(tmp_path, database_url, throttle=rules) as h:
        for _ in range(5):
            assert h.client.post("/api/v1/session", json={"username": "admin", "password": "bad-guess"}).status_code == 401
        locked = h.client.post("/api/v1/session", json={"username": "admin", "password": h.admin_password})
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) > 0
        for i in range(300):  # spray other names: admin's lock must not be evicted
            h.client.post("/api/v1/session", json={"username": f"user{i}", "password": "x"})
        assert h.client.post("/api/v1/session", json={"username": "admin", "password": h.admin_password}).status_code == 429
        password = h.admin_password
    with harness(tmp_path, database_url, throttle=rules) as again:  # a restart keeps the lock
        again.clock.advance(seconds=30)
        assert again.client.post("/api/v1/session",
                                 json={"username": "admin", "password": password}).status_code == 429
        again.clock.advance(seconds=31)
        assert again.client.post("/api/v1/session",
                                 json={"username": "admin", "password": password}).status_code == 200


def test_concurrent_failed_logins_and_password_edits_stay_consistent(h: Harness) -> None:
    ctx = audit.AuditContext(subject="test")
    h.state.accounts.create("alice", FAST_HASHER.hash("alice-password"), ctx=ctx, now=h.clock.now)

    def attempt(i: int) -> int:
        if i % 50 == 0:  # credential edits racing the logins
            h.state.accounts.set_password("alice", FAST_HASHER.hash(f"new-password-{i}"), ctx=ctx, now=h.clock.now)
            return 0
        user = "admin" if i % 2 else "alice"
        return h.client.post("/api/v1/session", json={"username": user, "password": "wrong-one"}).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        codes = list(pool.map(attempt, range(500)))
    assert set(codes) <= {0, 401, 429}
    throttled = [h.state.accounts.throttle(name) for name in ("admin", "alice")]
    assert sum(t.failures for t in throttled) == codes.count(401)
    assert all(t.locked(now=h.clock.now) for t in throttled)
    assert h.client.get("/readyz").status_code == 200


# --- project tokens, forged and hygienic ---------------------------------------------------------------------


def test_project_token_is_accepted_only_when_exactly_right(h: Harness) -> None:
    admin = _project_with_role(h)
    issued = h.client.post("/api/v1/projects/web/roles/ci/token", headers=admin, json={"expiresIn": 3600}).json()
    assert h.client.get("/api/v1/projects/web", headers=_bearer(issued["token"])).status_code == 200
    key = h.state.store.keyring.current
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    claims = {**_valid_claims(h), "jti": issued["info"]["id"]}
    forged_ok = forge(header, claims, key.secret)
    assert h.client.get("/api/v1/projects/web", headers=_bearer(forged_ok)).status_code == 200  # sanity: the forge works
    bad = {
        "alg none": forge({**header, "alg": "none"}, claims, key.secret).rsplit(".", 1)[0] + ".",
        "HS384": forge({**header, "alg": "HS384"}, claims, key.secret, alg="sha384"),
        "HS512": forge({**header, "alg": "HS512"}, claims, key.secret, alg="sha512"),
        "expired": forge(header, {**claims, "exp": claims["iat"] - 120}, key.secret),
        "nbf future": forge(header, {**claims, "nbf": claims["iat"] + 3600}, key.secret),
        "iat future": forge(header, {**claims, "iat": claims["iat"] + 3600}, key.secret),
        "other aud": forge(header, {**claims, "aud": "other-service"}, key.secret),
        "no aud": forge(header, {k: v for k, v in claims.items() if k != "aud"}, key.secret),
        "other iss": forge(header, {**claims, "iss": "other"}, key.secret),
        "wrong key": forge(header, claims, b"z" * 48),
        "unknown jti": forge(header, {**claims, "jti": "never-issued"}, key.secret),
    }
    for why, token in bad.items():
        response = h.client.get("/api/v1/projects/web", headers=_bearer(token))
        assert response.status_code == 401, why
        assert token not in response.text


def test_oversized_authorization_header_is_rejected_before_parsing(h: Harness) -> None:
    response = h.client.get("/api/v1/projects", headers=_bearer("a" * (1024 * 1024)))
    assert response.status_code == 431
    assert response.json()["error"] == "headers-too-large"


def test_token_in_query_string_is_not_accepted_and_never_echoed(h: Harness) -> None:
    token = h.login()
    response = h.client.get("/api/v1/projects", params={"token": token, "access_token": token})
    assert response.status_code == 401
    assert token not in response.text
    records = h.client.get("/api/v1/audit/export", headers=_bearer(token)).text
    assert token not in records


def test_malformed_authorization_header(h: Harness) -> None:
    for value in ("Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer a b", "token"):
        response = h.client.get("/api/v1/projects", headers={"Authorization": value})
        assert response.status_code == 401, value
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_revoked_token_fails_on_next_request(h: Harness) -> None:
    admin = _project_with_role(h)
    issued = h.client.post("/api/v1/projects/web/roles/ci/token", headers=admin, json={}).json()
    assert h.client.get("/api/v1/projects/web", headers=_bearer(issued["token"])).status_code == 200
    revoked = h.client.delete(f"/api/v1/projects/web/roles/ci/token/{issued['info']['id']}", headers=admin)
    assert revoked.json() == {"id": issued["info"]["id"], "revoked": True}
    assert h.client.get("/api/v1/projects/web", headers=_bearer(issued["token"])).status_code == 401


# --- anonymous access and the allow-list ---------------------------------------------------------------------


def test_only_the_allow_list_answers_without_a_token(h: Harness) -> None:
    paths = h.client.get("/openapi.json").json()["paths"]
    checked = 0
    for template, operations in paths.items():
        path = re.sub(r"\{[^}]+\}", "web", template)
        for method in operations:
            if (method.upper(), template) in PUBLIC_ROUTES:
                continue
            response = h.client.request(method.upper(), path, json={})
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.json()["error"] == "unauthenticated"
            checked += 1
    assert checked >= 15
    for path in ("/healthz", "/readyz", "/metrics"):
        assert h.client.get(path).status_code == 200


def test_anonymous_access_when_enabled_gets_only_what_rbac_grants(tmp_path: Path, database_url: str) -> None:
    with harness(tmp_path, database_url, api={"anonymous": True}) as h:
        response = h.client.get("/api/v1/projects/default")
        assert response.status_code == 403
        assert response.json()["violations"][0]["code"] == "rbac.denied"
        assert h.client.get("/api/v1/session/userinfo").json()["kind"] == "anonymous"


def test_tokens_never_reach_the_logs(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    admin = _project_with_role(h)
    created = h.client.post("/api/v1/projects/web/roles/ci/token", headers=admin, json={}).json()
    issued = created["token"]
    h.client.delete(f"/api/v1/projects/web/roles/ci/token/{created['info']['id']}", headers=admin)
    session = h.login()
    with caplog.at_level(logging.DEBUG):
        h.client.get("/api/v1/projects", headers=_bearer(issued))  # revoked: rejected and logged
        h.client.get("/api/v1/projects", headers=_bearer(issued[:-4] + "AAAA"))  # bad signature
        h.client.delete("/api/v1/session", headers=_bearer(session))
        h.client.get("/api/v1/projects", headers=_bearer(session))  # logged out
    assert any("rejected" in r.getMessage() for r in caplog.records)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert issued not in text and issued.split(".")[2] not in text and session not in text


class CountingHasher(PasswordHasher):
    calls: ClassVar[list[str]] = []

    def verify(self, password: str, stored: str) -> bool:
        CountingHasher.calls.append(stored)
        return super().verify(password, stored)


def test_unknown_users_are_checked_against_a_dummy_hash(tmp_path: Path, database_url: str) -> None:
    CountingHasher.calls.clear()
    with harness(tmp_path, database_url, hasher=CountingHasher(n=2**8)) as h:
        h.client.post("/api/v1/session", json={"username": "ghost", "password": "whatever-1"})
        h.client.post("/api/v1/session", json={"username": "admin", "password": "whatever-1"})
    dummy, real = CountingHasher.calls
    assert dummy.split("$")[:4] == real.split("$")[:4]  # same algorithm and cost: same work
    assert dummy != real
