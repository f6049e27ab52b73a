"""``fieldValidation`` on writes over HTTP: ``Strict`` rejects an unknown top-level or ``metadata`` field with
a 422 ``strict decoding error`` naming it (create, update, merge patch, server-side apply; nothing stored);
``Ignore``, ``Warn`` and no parameter (the server default, Warn) store the object without the field; an
unsupported value is a 400; the known fields of a Secret and a Role pass."""

from __future__ import annotations

from typing import Any

import pytest

import sandbox
from tests.sandbox.helpers import configmap, http

CMS = "/api/v1/namespaces/default/configmaps"
APPLY = "application/apply-patch+yaml"


def odd_configmap(name: str) -> dict[str, Any]:
    obj = configmap(name)
    obj["spec"] = {"replicas": 2}  # a ConfigMap has no spec
    obj["metadata"]["colour"] = "blue"  # nor has ObjectMeta a colour
    return obj


def test_strict_create_is_rejected_naming_every_unknown_field(sb: sandbox.Sandbox) -> None:
    reply = http(sb.url, "POST", CMS + "?fieldValidation=Strict", odd_configmap("a"))

    assert reply.status == 422
    assert reply.body["kind"] == "Status" and reply.body["reason"] == "Invalid"
    assert reply.body["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "metadata.colour", unknown field "spec"'
    )
    assert [c["field"] for c in reply.body["details"]["causes"]] == ["metadata.colour", "spec"]
    assert http(sb.url, "GET", CMS + "/a").status == 404


@pytest.mark.parametrize("query", ["?fieldValidation=Ignore", "?fieldValidation=Warn", ""])
def test_ignore_warn_and_default_store_the_object_without_the_unknown_fields(
    sb: sandbox.Sandbox, query: str
) -> None:
    reply = http(sb.url, "POST", CMS + query, odd_configmap("a"))

    assert reply.status == 201, reply.body
    stored = http(sb.url, "GET", CMS + "/a").body
    assert "spec" not in stored and "colour" not in stored["metadata"]
    assert stored["data"] == {"k": "v"}


def test_strict_server_side_apply_is_rejected_and_ignore_applies(sb: sandbox.Sandbox) -> None:
    path = CMS + "/a?fieldManager=me"
    strict = http(sb.url, "PATCH", path + "&fieldValidation=Strict", odd_configmap("a"), content_type=APPLY)
    assert strict.status == 422
    assert 'strict decoding error: unknown field "metadata.colour", unknown field "spec"' in strict.body["message"]
    assert http(sb.url, "GET", CMS + "/a").status == 404

    ignored = http(sb.url, "PATCH", path + "&fieldValidation=Ignore", odd_configmap("a"), content_type=APPLY)
    assert ignored.status == 201, ignored.body
    assert "spec" not in ignored.body and ignored.body["data"] == {"k": "v"}


def test_strict_update_and_merge_patch_are_rejected_and_leave_the_object_alone(sb: sandbox.Sandbox) -> None:
    created = http(sb.url, "POST", CMS, configmap("a")).body
    put = {**odd_configmap("a"), "data": {"k": "new"}}
    put["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    assert http(sb.url, "PUT", CMS + "/a?fieldValidation=Strict", put).status == 422
    merge = http(sb.url, "PATCH", CMS + "/a?fieldValidation=Strict", {"data": {"k": "new"}, "extra": 1},
                 content_type="application/merge-patch+json")
    assert merge.status == 422
    assert 'unknown field "extra"' in merge.body["message"]
    assert http(sb.url, "GET", CMS + "/a").body["data"] == {"k": "v"}

    relaxed = http(sb.url, "PUT", CMS + "/a?fieldValidation=Ignore", put)
    assert relaxed.status == 200 and relaxed.body["data"] == {"k": "new"} and "spec" not in relaxed.body


def test_an_unsupported_field_validation_is_a_bad_request(sb: sandbox.Sandbox) -> None:
    reply = http(sb.url, "POST", CMS + "?fieldValidation=Loose", configmap("a"))

    assert reply.status == 400
    assert 'fieldValidation: Unsupported value: "Loose"' in reply.body["message"]
    assert http(sb.url, "GET", CMS + "/a").status == 404


def test_known_fields_of_several_kinds_pass_strict_validation(sb: sandbox.Sandbox) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"a": "b"}},
              "type": "Opaque", "stringData": {"k": "v"}, "immutable": False}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"}, "rules": []}
    assert http(sb.url, "POST", "/api/v1/namespaces/default/secrets?fieldValidation=Strict", secret).status == 201
    assert http(sb.url, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles"
                "?fieldValidation=Strict", role).status == 201
