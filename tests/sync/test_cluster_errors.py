"""Error mapping onto the sync.cluster tree, from ApiExceptions built the way the client builds them.

Covers: every status class (404, 409 Conflict vs AlreadyExists, 401/403, 400/422, 410, 429/5xx, 0),
Retry-After from the header and from Status details, non-JSON bodies, the original kept for chaining,
and that credentials never reach a message (redaction, including config-loading errors).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from sync import cluster, kube
from sync.cluster_registry import ClusterEntry


def _exc(
    status: int,
    reason: str = "",
    message: str = "boom",
    headers: dict[str, str] | None = None,
    details: dict[str, object] | None = None,
) -> ApiException:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": status}
    if reason:
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    exc = ApiException(status=status, reason="HTTP reason", body=json.dumps(body))
    exc.headers = headers
    return exc


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        pytest.param(404, "NotFound", cluster.NotFound, id="404"),
        pytest.param(409, "Conflict", cluster.Conflict, id="409-conflict"),
        pytest.param(409, "AlreadyExists", cluster.AlreadyExists, id="409-already-exists"),
        pytest.param(409, "", cluster.Conflict, id="409-no-reason"),
        pytest.param(401, "Unauthorized", cluster.Unauthorized, id="401"),
        pytest.param(403, "Forbidden", cluster.Forbidden, id="403"),
        pytest.param(400, "BadRequest", cluster.Invalid, id="400"),
        pytest.param(422, "Invalid", cluster.Invalid, id="422"),
        pytest.param(410, "Expired", cluster.Gone, id="410"),
        pytest.param(429, "TooManyRequests", cluster.Unavailable, id="429"),
        pytest.param(500, "InternalError", cluster.Unavailable, id="500"),
        pytest.param(503, "ServiceUnavailable", cluster.Unavailable, id="503"),
        pytest.param(504, "Timeout", cluster.Unavailable, id="504"),
        pytest.param(405, "MethodNotAllowed", cluster.ClusterError, id="405-generic"),
    ],
)
def test_status_maps_to_our_error(status: int, reason: str, expected: type[cluster.ClusterError]) -> None:
    err = kube.map_api_exception(_exc(status, reason, message="it went wrong"), what="get v1/ConfigMap a/b")
    assert type(err) is expected
    assert err.status == status
    assert "get v1/ConfigMap a/b" in str(err)
    assert "it went wrong" in str(err)


def test_forbidden_family() -> None:
    assert isinstance(kube.map_api_exception(_exc(401), what="x"), cluster.Forbidden)


def test_retry_after_header_wins_over_details() -> None:
    err = kube.map_api_exception(
        _exc(429, "TooManyRequests", headers={"Retry-After": "7"}, details={"retryAfterSeconds": 3}), what="x"
    )
    assert isinstance(err, cluster.Unavailable)
    assert err.retry_after == 7


def test_retry_after_from_status_details() -> None:
    err = kube.map_api_exception(_exc(503, details={"retryAfterSeconds": 3}), what="x")
    assert isinstance(err, cluster.Unavailable)
    assert err.retry_after == 3


def test_no_retry_after_is_none() -> None:
    err = kube.map_api_exception(_exc(500, headers={"Retry-After": "soon"}), what="x")
    assert isinstance(err, cluster.Unavailable)
    assert err.retry_after is None


def test_plain_text_body_and_status_zero() -> None:
    exc = ApiException(status=0, reason="SSLError: certificate verify failed")
    err = kube.map_api_exception(exc, what="GET /api")
    assert isinstance(err, cluster.Unavailable)
    assert "certificate verify failed" in str(err)
    text = cluster.error_from_status(502, what="GET /api", body="upstream connect error")
    assert "upstream connect error" in str(text)


def test_original_is_chained_when_raised_from() -> None:
    original = _exc(404, "NotFound")
    with pytest.raises(cluster.NotFound) as info:
        try:
            raise original
        except ApiException as exc:
            raise kube.map_api_exception(exc, what="x") from exc
    assert info.value.__cause__ is original


def test_server_message_with_credentials_is_redacted() -> None:
    message = "webhook denied: Authorization: Bearer abc.def.ghi token=s3cr3t client-key-data: LS0tLS1CRUdJTg=="
    err = kube.map_api_exception(_exc(403, "Forbidden", message=message), what="apply v1/Secret a/b")
    text = str(err)
    for secret in ("abc.def.ghi", "s3cr3t", "LS0tLS1CRUdJTg=="):
        assert secret not in text
    assert "<redacted>" in text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl", id="bearer-jwt"),
        pytest.param("token is eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl", id="bare-jwt"),
        pytest.param("-----BEGIN RSA PRIVATE KEY-----\nMIIEsecret\n-----END RSA PRIVATE KEY-----", id="pem"),
        pytest.param('{"password": "hunter2"}', id="json-password"),
    ],
)
def test_redact(text: str) -> None:
    out = cluster.redact(text)
    for secret in ("c2lnbmF0dXJl", "MIIEsecret", "hunter2"):
        assert secret not in out


def test_long_messages_are_cut() -> None:
    err = cluster.error_from_status(422, what="apply", body=json.dumps({"message": "x" * 5000}))
    assert len(str(err)) < 700


def test_unusable_kubeconfig_is_config_error_without_the_token(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: nope\nusers:\n- name: u\n  user: {token: sekret-token-123}\n",
        encoding="utf-8",
    )
    with pytest.raises(cluster.ConfigError) as info:
        kube.connect(ClusterEntry(name="nope", server="https://x", context="nope", kubeconfig=str(path)))
    assert "nope" in str(info.value)
    assert "sekret-token-123" not in str(info.value)
    assert info.value.__cause__ is not None


def test_in_cluster_without_a_pod_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(cluster.ConfigError, match="in-cluster config"):
        kube.connect(ClusterEntry(name="in-cluster", server="https://kubernetes.default.svc"))
