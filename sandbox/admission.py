"""What the API server does to every object it is about to store: identity and bookkeeping metadata,
generation, the status subresource split, validation, and per-kind defaults (Namespace, CRD).

Pure functions of (type, live object, incoming object, time), so ``sandbox.verbs`` can run them for
real writes and for ``dryRun=All`` alike.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

from sandbox.core import clone
from sandbox.errors import ApiError
from sandbox.lifecycle import CRD_FINALIZER
from sandbox.resources import ResourceType, types_from_crd

__all__ = ["check_body", "prepare_create", "prepare_update", "spec_changed"]

# RFC 1123 subdomain, as the API server requires of most object names.
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_RANDOM_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_IGNORED_FOR_GENERATION = frozenset({"apiVersion", "kind", "metadata", "status"})


def spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when anything but metadata and status differs: what bumps ``metadata.generation``."""
    keys = (set(old) | set(new)) - _IGNORED_FOR_GENERATION
    return any(old.get(k) != new.get(k) for k in keys)


def check_body(rtype: ResourceType, body: Any, *, namespace: str | None, url_name: str | None) -> None:
    """The request body is an object of this resource, for this namespace and name."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON or YAML object")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind is not None and kind != rtype.kind:
        raise ApiError(400, f"the kind of the object ({kind}) does not match the resource ({rtype.kind})")
    if api_version is not None and api_version != rtype.api_version:
        raise ApiError(
            400, f"the API version in the data ({api_version}) does not match the expected API version "
            f"({rtype.api_version})",
        )
    meta = body.get("metadata", {})
    if not isinstance(meta, dict):
        raise ApiError(400, "metadata: must be an object")
    body_ns = meta.get("namespace")
    if rtype.namespaced and body_ns not in (None, "", namespace):
        raise ApiError(
            400, "the namespace of the provided object does not match the namespace sent on the request"
        )
    if url_name is not None and meta.get("name") not in (None, url_name):
        raise ApiError(
            400, f"the name of the object ({meta.get('name')}) does not match the name on the URL ({url_name})"
        )


def _validate(rtype: ResourceType, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError.invalid(rtype.kind, rtype.group, "", "metadata.name", "Required value: name or "
                               "generateName is required")
    if len(name) > 253 or not _NAME_RE.match(name):
        raise ApiError.invalid(
            rtype.kind, rtype.group, name, "metadata.name",
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        )
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and (
            not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
        ):
            raise ApiError.invalid(rtype.kind, rtype.group, name, f"metadata.{field}", "values must be strings")
    if rtype.kind == "CustomResourceDefinition":
        try:
            types_from_crd(obj)
        except ValueError as exc:
            raise ApiError.invalid(rtype.kind, rtype.group, name, "spec", str(exc)) from None


def _defaults(rtype: ResourceType, obj: dict[str, Any], *, creating: bool) -> None:
    if rtype.group == "" and rtype.kind == "Namespace":
        spec = obj.setdefault("spec", {})
        spec.setdefault("finalizers", ["kubernetes"])
        if not obj["metadata"].get("deletionTimestamp"):
            obj["status"] = {"phase": "Active"}
    elif rtype.kind == "CustomResourceDefinition" and rtype.group == "apiextensions.k8s.io":
        meta = obj["metadata"]
        if creating and CRD_FINALIZER not in (meta.get("finalizers") or []):
            meta["finalizers"] = [*(meta.get("finalizers") or []), CRD_FINALIZER]
        names = dict(obj["spec"].get("names") or {})
        names.setdefault("singular", str(names.get("kind", "")).lower())
        names.setdefault("listKind", f"{names.get('kind')}List")
        obj["status"] = {
            "acceptedNames": names,
            "storedVersions": [v["name"] for v in obj["spec"]["versions"] if v.get("storage")]
            or [obj["spec"]["versions"][0]["name"]],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted"},
            ],
        }


def prepare_create(rtype: ResourceType, body: dict[str, Any], *, namespace: str | None, now: str) -> dict[str, Any]:
    """The object as first stored: new uid, generation 1, creationTimestamp, no status of the client's."""
    obj: dict[str, Any] = clone(body)
    obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
    meta = obj.setdefault("metadata", {})
    if not meta.get("name") and isinstance(meta.get("generateName"), str) and meta["generateName"]:
        meta["name"] = meta["generateName"] + "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(5))
    if rtype.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        meta.pop(field, None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now
    meta["generation"] = 1
    if rtype.has_status:
        obj.pop("status", None)
    _validate(rtype, obj)
    _defaults(rtype, obj, creating=True)
    return obj


def prepare_update(
    rtype: ResourceType, live: dict[str, Any], incoming: dict[str, Any], *, subresource: str | None
) -> dict[str, Any]:
    """The object to store for a write of ``incoming`` over ``live``.

    Identity (uid, name, namespace, creationTimestamp, deletionTimestamp) always stays. A write of the
    main resource keeps the live status when the type has a status subresource; a write of ``/status``
    changes only the status. Generation goes up when the spec (anything outside metadata and status)
    changed. A stale ``metadata.resourceVersion`` is a 409 Conflict.
    """
    sent_rv = (incoming.get("metadata") or {}).get("resourceVersion")
    if sent_rv not in (None, "") and sent_rv != live["metadata"]["resourceVersion"]:
        raise ApiError.conflict(
            rtype.group, rtype.plural, live["metadata"]["name"],
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    obj: dict[str, Any]
    if subresource == "status":
        obj = clone(live)
        if "status" in incoming:
            obj["status"] = clone(incoming["status"])
        else:
            obj.pop("status", None)
        managed = (incoming.get("metadata") or {}).get("managedFields")
        if managed is not None:
            obj["metadata"]["managedFields"] = clone(managed)
        return obj
    obj = clone(incoming)
    obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise ApiError(400, "metadata: must be an object")
    live_meta = live["metadata"]
    for field in ("uid", "name", "namespace", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "generation", "resourceVersion"):
        if field in live_meta:
            meta[field] = live_meta[field]
        else:
            meta.pop(field, None)
    if rtype.has_status:
        if "status" in live:
            obj["status"] = clone(live["status"])
        else:
            obj.pop("status", None)
    _validate(rtype, obj)
    _defaults(rtype, obj, creating=False)
    if spec_changed(live, obj):
        meta["generation"] = int(live_meta.get("generation", 1)) + 1
    return obj
