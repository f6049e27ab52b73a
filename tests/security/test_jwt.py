"""Project API tokens over HTTP, black box: the JWT rows' cases the existing tests do not send
(security-cases A.2 JWT-02, JWT-04, JWT-05, JWT-11).

Rows covered here: JWT-02 (a token whose header names RS256/ES256/PS256/EdDSA but is "signed" with the HMAC
secret as if it were a public key, and header-embedded keys ``jwk``/``jku``/``x5u``, are 401), JWT-04 (a project
token minted with an expiry stops working once the clock passes it), JWT-05 (a deleted token is refused on the
next request, while a sibling of the same role keeps working), JWT-11 (a refused token never appears in the
response body, the audit log or the application log).

Real components: ``TestClient(create_app(...))`` on the ``database_url`` database, the real token registry and
keyring; forged tokens are built by hand with ``hmac``, so no JWT library vouches for them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.apihelpers import Harness, harness, project_manifest


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _forge(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return signing_input + "." + _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def h(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    with harness(tmp_path, database_url) as value:
        roles = [{"name": "ci", "policies": ["p, proj:web:ci, applications, get, web/*, allow"]}]
        made = value.client.post("/api/v1/projects", headers=value.admin(),
                                 json={"project": project_manifest(roles=roles)})
        assert made.status_code == 200, made.text
        yield value


def _mint(h: Harness, **body: Any) -> dict[str, Any]:
    response = h.client.post("/api/v1/projects/web/roles/ci/token", headers=h.admin(), json=body)
    assert response.status_code == 200, response.text
    minted: dict[str, Any] = response.json()
    return minted


def _claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def _can_read(h: Harness, token: str) -> int:
    return h.client.get("/api/v1/projects/web", headers=_bearer(token)).status_code


@pytest.mark.parametrize("extra", [
    pytest.param({"alg": "RS256"}, id="RS256-with-hmac-secret"),
    pytest.param({"alg": "ES256"}, id="ES256-with-hmac-secret"),
    pytest.param({"alg": "PS256"}, id="PS256-with-hmac-secret"),
    pytest.param({"alg": "EdDSA"}, id="EdDSA-with-hmac-secret"),
    pytest.param({"alg": "hs256"}, id="lower-case-alg"),
    pytest.param({"jwk": {"kty": "oct", "k": _b64(b"attacker-key-" * 4)}}, id="embedded-jwk"),
    pytest.param({"jku": "http://169.254.169.254/keys"}, id="jku"),
    pytest.param({"x5u": "http://169.254.169.254/cert"}, id="x5u"),
])
def test_jwt_02_only_hs256_with_the_servers_key_is_accepted(h: Harness, extra: dict[str, Any]) -> None:
    issued = _mint(h, expiresIn=3600)
    assert _can_read(h, issued["token"]) == 200
    key = h.state.store.keyring.current
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    claims = _claims_of(issued["token"])
    assert _can_read(h, _forge(header, claims, key.secret)) == 200  # the forge is faithful

    forged = _forge({**header, **extra}, claims, key.secret)
    response = h.client.get("/api/v1/projects/web", headers=_bearer(forged))

    assert response.status_code == 401
    assert forged not in response.text


def test_jwt_02_an_embedded_jwk_with_the_attackers_key_is_401(h: Harness) -> None:
    issued = _mint(h, expiresIn=3600)
    attacker = b"attacker-controlled-key-0123456789abcdef"
    header = {"alg": "HS256", "typ": "JWT", "kid": h.state.store.keyring.current.kid,
              "jwk": {"kty": "oct", "k": _b64(attacker)}}
    forged = _forge(header, _claims_of(issued["token"]), attacker)
    assert _can_read(h, forged) == 401


def test_jwt_04_a_token_stops_working_when_it_expires(h: Harness) -> None:
    issued = _mint(h, expiresIn=600)
    assert _can_read(h, issued["token"]) == 200
    h.clock.advance(seconds=599)
    assert _can_read(h, issued["token"]) == 200
    h.clock.advance(seconds=120)  # past exp plus any small leeway
    assert _can_read(h, issued["token"]) == 401


def test_jwt_05_a_deleted_token_fails_next_request_and_its_sibling_survives(h: Harness) -> None:
    first, second = _mint(h, expiresIn=3600), _mint(h, expiresIn=3600)
    assert _can_read(h, first["token"]) == _can_read(h, second["token"]) == 200

    deleted = h.client.delete(f"/api/v1/projects/web/roles/ci/token/{first['info']['id']}", headers=h.admin())
    assert deleted.status_code == 200, deleted.text

    assert _can_read(h, first["token"]) == 401
    assert _can_read(h, second["token"]) == 200


def test_jwt_11_a_refused_token_is_never_echoed_logged_or_audited(h: Harness,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    issued = _mint(h, expiresIn=3600)
    token = issued["token"]
    h.client.delete(f"/api/v1/projects/web/roles/ci/token/{issued['info']['id']}", headers=h.admin())
    signature = token.rsplit(".", 1)[1]
    with caplog.at_level(logging.DEBUG):
        refused = h.client.get("/api/v1/projects/web", headers=_bearer(token))
        in_query = h.client.get("/api/v1/projects/web", params={"token": token})
    assert refused.status_code == 401 and in_query.status_code == 401
    audit = h.client.get("/api/v1/audit", params={"limit": 1000}, headers=h.admin())
    assert audit.status_code == 200
    # the test client's own request log (httpx) is not the service's
    server_log = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    for text, where in ((refused.text, "response"), (in_query.text, "query response"), (server_log, "log"),
                        (audit.text, "audit log")):
        assert signature not in text, f"the token's signature appears in the {where}"
