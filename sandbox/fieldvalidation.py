"""The API server's ``fieldValidation`` on writes: what it does with fields the object's type lacks.

A real server decodes the body into the type's Go struct; a field with no struct member is unknown.
``Strict`` rejects the request naming every unknown field, ``Warn`` (the server's default when the
query parameter is absent) and ``Ignore`` drop them. The sandbox has no OpenAPI schema, so it knows
the top-level fields of each built-in kind and the fields of ``metadata`` (ObjectMeta); objects of
custom resources are checked in ``metadata`` only (their schemas are not parsed).

Called by ``sandbox.verbs`` on create, update, patch and apply bodies before admission.
"""

from __future__ import annotations

from typing import Any

from sandbox.errors import ApiError
from sandbox.resources import BUILTIN, ResourceType

__all__ = ["MODES", "check_fields"]

MODES = ("Strict", "Warn", "Ignore")

_OBJECT_META = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields",
})
_COMMON = frozenset({"apiVersion", "kind", "metadata"})
_SPEC_STATUS = frozenset({"spec", "status"})
_TOP_LEVEL: dict[str, frozenset[str]] = {
    "ConfigMap": frozenset({"data", "binaryData", "immutable"}),
    "Secret": frozenset({"data", "stringData", "type", "immutable"}),
    "ServiceAccount": frozenset({"secrets", "imagePullSecrets", "automountServiceAccountToken"}),
    "Event": frozenset({
        "involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count", "type",
        "eventTime", "series", "action", "related", "reportingComponent", "reportingInstance",
    }),
    "Role": frozenset({"rules"}),
    "ClusterRole": frozenset({"rules", "aggregationRule"}),
    "RoleBinding": frozenset({"subjects", "roleRef"}),
    "ClusterRoleBinding": frozenset({"subjects", "roleRef"}),
    "Lease": frozenset({"spec"}),
}


def _known_top_level(rtype: ResourceType) -> frozenset[str] | None:
    """The top-level fields of a built-in kind; None for custom resources (not checked)."""
    if not any(b.group == rtype.group and b.kind == rtype.kind for b in BUILTIN):
        return None
    return _COMMON | _TOP_LEVEL.get(rtype.kind, _SPEC_STATUS)


def check_fields(rtype: ResourceType, body: dict[str, Any], mode: str) -> dict[str, Any]:
    """``body`` without unknown fields; with ``Strict``, a 422 naming them instead."""
    known = _known_top_level(rtype)
    unknown = sorted(k for k in body if known is not None and k not in known)
    meta = body.get("metadata")
    meta_unknown = sorted(k for k in meta if k not in _OBJECT_META) if isinstance(meta, dict) else []
    if not unknown and not meta_unknown:
        return body
    if mode == "Strict":
        fields = [f"metadata.{k}" for k in meta_unknown] + unknown
        listed = ", ".join(f'unknown field "{f}"' for f in fields)
        raise ApiError(
            422,
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
            f"strict decoding error: {listed}",
            details={
                "name": str(meta.get("name") or "") if isinstance(meta, dict) else "",
                "group": rtype.group,
                "kind": rtype.kind,
                "causes": [{"reason": "FieldValueUnknown", "message": f'unknown field "{f}"', "field": f}
                           for f in fields],
            },
        )
    kept = {k: v for k, v in body.items() if k not in unknown}
    if meta_unknown:
        assert isinstance(meta, dict)
        kept["metadata"] = {k: v for k, v in meta.items() if k not in meta_unknown}
    return kept
