"""The API verbs on one resource: get, list, create, update, patch, delete and deletecollection.

``sandbox.server`` parses the URL into a ``Target`` and the query into options, then calls one of
these; each returns ``(HTTP code, body)`` or raises ``ApiError``. Patches are computed by the pure
``sandbox.patch`` and ``sandbox.ssa`` modules; what gets stored is shaped by ``sandbox.admission``;
deletion is ``sandbox.lifecycle``'s job. ``dryRun=All`` runs everything but the store write.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config import yamlsafe
from sandbox import admission, fieldvalidation, lifecycle, patch, ssa
from sandbox.core import Core, clone, key_of
from sandbox.errors import ApiError, status_object
from sandbox.resources import BUILTIN, ResourceType, types_from_crd
from sandbox.selectors import Selector, SelectorError, parse_field_selector, parse_label_selector
from sandbox.store import Key

__all__ = ["Target", "WriteOptions", "create", "delete", "delete_collection", "get", "list_objects",
           "patch_object", "render", "update"]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True, slots=True)
class Target:
    """A request's resource, namespace (None when the URL has none), name and subresource."""

    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None = None

    @property
    def key(self) -> Key:
        return key_of(self.rtype, self.namespace or "", self.name or "")


@dataclass(frozen=True, slots=True)
class WriteOptions:
    manager: str
    dry_run: bool = False
    force: bool = False
    #: ``fieldValidation``: Strict rejects unknown fields; Warn (the default) and Ignore drop them
    field_validation: str = "Warn"


def render(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The object as served at ``rtype``'s version (CRDs may serve one object at several versions)."""
    if obj.get("apiVersion") == rtype.api_version:
        return obj
    return {**obj, "apiVersion": rtype.api_version}


def _live(core: Core, target: Target) -> dict[str, Any]:
    obj = core.store.get(target.key)
    if obj is None:
        raise ApiError.not_found(target.rtype.group, target.rtype.plural, target.name or "")
    return obj


def get(core: Core, target: Target) -> dict[str, Any]:
    return render(target.rtype, _live(core, target))


def selector(query: Mapping[str, str]) -> Selector:
    try:
        return parse_label_selector(query.get("labelSelector")) & parse_field_selector(query.get("fieldSelector"))
    except SelectorError as exc:
        raise ApiError(400, f"unable to parse requirement: {exc}") from None


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(data[0]), str(data[1])
    except (ValueError, binascii.Error, IndexError, TypeError, KeyError):
        raise ApiError(400, "continue key is not valid: decode failed", reason="BadRequest") from None


def list_objects(core: Core, target: Target, query: Mapping[str, str]) -> dict[str, Any]:
    rtype = target.rtype
    match = selector(query)
    with core.store.lock:
        rv = core.store.resource_version
        items = [o for o in core.store.objects(rtype.group, rtype.plural, target.namespace) if match.matches(o)]
    if query.get("continue"):
        after = _decode_continue(query["continue"])
        items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after]
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    limit = query.get("limit")
    if limit:
        try:
            count = int(limit)
        except ValueError:
            raise ApiError(400, f"limit: invalid value {limit!r}") from None
        if 0 < count < len(items):
            last = items[count - 1]["metadata"]
            token = json.dumps([last.get("namespace", ""), last["name"]]).encode()
            meta["continue"] = base64.urlsafe_b64encode(token).decode()
            meta["remainingItemCount"] = len(items) - count
            items = items[:count]
    return {
        "kind": f"{rtype.kind}List",
        "apiVersion": rtype.api_version,
        "metadata": meta,
        "items": [render(rtype, o) for o in items],
    }


def _check_namespace(core: Core, target: Target) -> None:
    if not target.rtype.namespaced:
        return
    ns = core.store.get(("", "namespaces", "", target.namespace or ""))
    if ns is None:
        raise ApiError.not_found("", "namespaces", target.namespace or "")
    if ns["metadata"].get("deletionTimestamp"):
        raise ApiError(
            403,
            f'{target.rtype.plural} "{target.name or ""}" is forbidden: unable to create new content in '
            f"namespace {target.namespace} because it is being terminated",
            details={"name": target.name or "", "group": target.rtype.group, "kind": target.rtype.plural},
        )


def _commit(core: Core, target: Target, key: Key, obj: dict[str, Any], *, created: bool) -> dict[str, Any]:
    """Store a prepared object, keep the CRD registry in step, and let a deletion make progress."""
    store = core.store
    with store.lock:
        before = store.get(key)
        if created and before is not None:
            raise ApiError.already_exists(target.rtype.group, target.rtype.plural, key[3])
        stored = store.put(key, obj, "ADDED" if created else "MODIFIED")
        if before is None or before["metadata"].get("generation") != obj["metadata"].get("generation"):
            core.spec_changed_at[key] = core.clock()
        if key[:2] == ("apiextensions.k8s.io", "customresourcedefinitions"):
            core.registry.add_crd(key[3], types_from_crd(stored))
        if stored["metadata"].get("deletionTimestamp"):
            lifecycle.progress(core, key)
        return stored


def create(core: Core, target: Target, body: Any, opts: WriteOptions) -> tuple[int, dict[str, Any]]:
    admission.check_body(target.rtype, body, namespace=target.namespace, url_name=None)
    body = fieldvalidation.check_fields(target.rtype, body, opts.field_validation)
    if target.rtype.namespaced and not target.namespace:
        raise ApiError.unknown_resource()
    with core.store.lock:
        obj = admission.prepare_create(target.rtype, body, namespace=target.namespace, now=core.now())
        obj = ssa.record_update(None, obj, manager=opts.manager, now=core.now())
        named = Target(target.rtype, target.namespace, obj["metadata"]["name"])
        _check_namespace(core, named)
        if core.store.get(named.key) is not None:
            raise ApiError.already_exists(target.rtype.group, target.rtype.plural, named.name or "")
        if opts.dry_run:
            return 201, obj
        return 201, render(target.rtype, _commit(core, named, named.key, obj, created=True))


def update(core: Core, target: Target, body: Any, opts: WriteOptions) -> tuple[int, dict[str, Any]]:
    admission.check_body(target.rtype, body, namespace=target.namespace, url_name=target.name)
    body = fieldvalidation.check_fields(target.rtype, body, opts.field_validation)
    with core.store.lock:
        live = _live(core, target)
        obj = admission.prepare_update(target.rtype, live, body, subresource=target.subresource)
        return _finish_write(core, target, live, obj, opts)


def _finish_write(
    core: Core, target: Target, live: dict[str, Any], obj: dict[str, Any], opts: WriteOptions
) -> tuple[int, dict[str, Any]]:
    obj = ssa.record_update(live, obj, manager=opts.manager, now=core.now(),
                            subresource=target.subresource or "")
    if opts.dry_run or obj == live:
        return 200, render(target.rtype, obj)
    return 200, render(target.rtype, _commit(core, target, target.key, obj, created=False))


def _parse_patch(raw: bytes, content_type: str) -> Any:
    try:
        if content_type == APPLY_PATCH:
            return yamlsafe.load_one(raw, source="request body")
        return yamlsafe.loads_json(raw, source="request body")
    except yamlsafe.YamlError as exc:
        raise ApiError(400, str(exc)) from None


def patch_object(
    core: Core, target: Target, raw: bytes, content_type: str, opts: WriteOptions
) -> tuple[int, dict[str, Any]]:
    rtype = target.rtype
    kind = content_type.split(";")[0].strip()
    if kind not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH):
        raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                       f"include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}, {STRATEGIC_PATCH}")
    if kind == STRATEGIC_PATCH and not _builtin(rtype):
        raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                       f"include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}")
    body = _parse_patch(raw, kind)
    if kind == APPLY_PATCH:
        return _apply(core, target, body, opts)
    with core.store.lock:
        live = _live(core, target)
        try:
            if kind == JSON_PATCH:
                if not isinstance(body, list):
                    raise ApiError(400, "a JSON patch must be a list of operations")
                result = patch.apply_json_patch(clone(live), body)
            elif not isinstance(body, dict):
                raise ApiError(400, "a merge patch must be a JSON object")
            elif kind == MERGE_PATCH:
                result = patch.apply_merge_patch(clone(live), body)
            else:
                result = patch.apply_strategic_merge_patch(clone(live), body, kind=rtype.kind)
        except patch.PatchError as exc:
            raise ApiError(422, str(exc)) from None
        admission.check_body(rtype, result, namespace=target.namespace, url_name=target.name)
        result = fieldvalidation.check_fields(rtype, result, opts.field_validation)
        obj = admission.prepare_update(rtype, live, result, subresource=target.subresource)
        return _finish_write(core, target, live, obj, opts)


def _builtin(rtype: ResourceType) -> bool:
    return any(b.group == rtype.group and b.plural == rtype.plural for b in BUILTIN)


def _apply(core: Core, target: Target, body: Any, opts: WriteOptions) -> tuple[int, dict[str, Any]]:
    """Server-side apply: create when absent, else merge the manager's fields; 409 on conflicts."""
    rtype = target.rtype
    if not opts.manager:
        raise ApiError(422, "PatchOptions.meta.k8s.io is invalid: fieldManager: Required value: is required "
                       "for apply patch")
    admission.check_body(rtype, body, namespace=target.namespace, url_name=target.name)
    if not body.get("apiVersion") or not body.get("kind"):
        raise ApiError(400, "apiVersion and kind are required in an apply patch")
    applied = clone(fieldvalidation.check_fields(rtype, body, opts.field_validation))
    if rtype.has_status and target.subresource != "status":
        applied.pop("status", None)
    with core.store.lock:
        live = core.store.get(target.key)
        try:
            result = ssa.server_side_apply(
                live, applied, manager=opts.manager, force=opts.force, now=core.now(),
                subresource=target.subresource or "",
            )
        except ssa.ApplyConflict as exc:
            raise ApiError(409, str(exc), reason="Conflict", details={
                "name": target.name or "", "group": rtype.group, "kind": rtype.plural, "causes": exc.causes,
            }) from None
        except patch.PatchError as exc:
            raise ApiError(422, str(exc)) from None
        if live is None:
            if target.subresource:
                raise ApiError.not_found(rtype.group, rtype.plural, target.name or "")
            obj = admission.prepare_create(rtype, result, namespace=target.namespace, now=core.now())
            obj["metadata"]["managedFields"] = result.get("metadata", {}).get("managedFields", [])
            _check_namespace(core, target)
            if opts.dry_run:
                return 201, obj
            return 201, render(rtype, _commit(core, target, target.key, obj, created=True))
        obj = admission.prepare_update(rtype, live, result, subresource=target.subresource)
        obj["metadata"]["managedFields"] = result.get("metadata", {}).get("managedFields", [])
        if opts.dry_run or obj == live:
            return 200, render(rtype, obj)
        return 200, render(rtype, _commit(core, target, target.key, obj, created=False))


def _delete_options(query: Mapping[str, str], body: Any) -> tuple[str | None, str | None, str | None]:
    """(propagationPolicy, uid precondition, resourceVersion precondition) from query and DeleteOptions."""
    options = body if isinstance(body, dict) else {}
    policy = query.get("propagationPolicy") or options.get("propagationPolicy")
    if policy is None and (options.get("orphanDependents") is True or query.get("orphanDependents") == "true"):
        policy = "Orphan"
    pre = options.get("preconditions") or {}
    return policy, pre.get("uid"), pre.get("resourceVersion")


def delete(
    core: Core, target: Target, query: Mapping[str, str], body: Any, *, dry_run: bool
) -> tuple[int, dict[str, Any]]:
    policy, uid, rv = _delete_options(query, body)
    rtype = target.rtype
    with core.store.lock:
        live = _live(core, target)
        if rv is not None and rv != live["metadata"]["resourceVersion"]:
            raise ApiError.conflict(rtype.group, rtype.plural, target.name or "",
                                    f"Precondition failed: ResourceVersion in precondition: {rv}, "
                                    f"ResourceVersion in object meta: {live['metadata']['resourceVersion']}")
        obj, gone = lifecycle.request_delete(core, target.key, propagation=policy, dry_run=dry_run, uid=uid)
        if gone and not dry_run:
            core.spec_changed_at.pop(target.key, None)
    if gone:
        return 200, status_object(200, "", details={
            "name": target.name, "group": rtype.group, "kind": rtype.plural, "uid": obj["metadata"]["uid"]})
    return 200, render(rtype, obj)


def delete_collection(
    core: Core, target: Target, query: Mapping[str, str], body: Any, *, dry_run: bool
) -> tuple[int, dict[str, Any]]:
    rtype = target.rtype
    match = selector(query)
    policy, _, _ = _delete_options(query, body)
    with core.store.lock:
        doomed = [o for o in core.store.objects(rtype.group, rtype.plural, target.namespace) if match.matches(o)]
        for obj in doomed:
            key = key_of(rtype, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            if core.store.get(key) is not None:
                lifecycle.request_delete(core, key, propagation=policy, dry_run=dry_run)
    return 200, status_object(200, "", details={"group": rtype.group, "kind": rtype.plural})
