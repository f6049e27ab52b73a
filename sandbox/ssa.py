"""Server-side apply and ``metadata.managedFields`` bookkeeping, as the Kubernetes API server does it.

Every write leaves a record of who owns which field (https://kubernetes.io/docs/reference/using-api/
server-side-apply/). An *apply* (``application/apply-patch+yaml``) declares the complete intent of
one field manager: its fields are merged into the live object, fields it applied before and no
longer applies are removed unless another manager owns them too, and changing a field another
manager owns is a conflict unless the apply is forced (then the field changes hands). Any other
write (create, update, JSON/merge/strategic patch) makes its manager the owner of what it changed,
with operation ``Update``. Applying the value another manager already set is not a conflict: the
field becomes shared.

Callers: ``sandbox.verbs`` (every write) and ``sandbox.app`` (controller status writes, with
``subresource="status"``). Built on ``sandbox.fieldwalk`` (typed merge/compare/remove) and
``sandbox.fieldset`` (the ``fieldsV1`` format). Time is the ``now`` parameter (RFC 3339 text).

Never owned through the main resource: ``apiVersion``, ``kind``, ``metadata.name``/``namespace``/
``uid``/``resourceVersion``/``generation``/``creationTimestamp``/``managedFields`` and ``status``
(the API server resets status on the main resource; the status subresource owns only status).

Error tree::

    ApplyConflict (Exception)   409: fields owned by other managers; ``conflicts`` lists them
    sandbox.patch.PatchError    422: a malformed applied configuration
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from sandbox import fieldwalk, schema
from sandbox.fieldset import FieldSet, from_fields_v1, path_string, to_fields_v1
from sandbox.patch import PatchError

__all__ = ["BEFORE_FIRST_APPLY", "ApplyConflict", "record_update", "server_side_apply"]

# The manager the API server invents for fields that existed before managedFields were tracked.
BEFORE_FIRST_APPLY = "before-first-apply"

_SERVER_META = frozenset({
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
    "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
})


@dataclass(frozen=True, slots=True)
class _Manager:
    """A managedFields identity: Apply entries are per manager, Update entries per API version too."""

    name: str
    operation: str
    api_version: str
    subresource: str = ""

    def describe(self) -> str:
        """The manager as the API server prints it in conflict messages."""
        text = f'"{self.name}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


@dataclass(slots=True)
class _Entry:
    fields: FieldSet
    api_version: str
    time: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ApplyConflict(Exception):
    """An apply would change fields other managers own; the message is the API server's.

    ``conflicts`` holds ``(manager, field path)`` pairs such as
    ``("kubectl-client-side-apply", ".spec.replicas")``.
    """

    def __init__(self, found: list[tuple[_Manager, str]]) -> None:
        self.conflicts: list[tuple[str, str]] = [(manager.name, path) for manager, path in found]
        self.causes: list[dict[str, str]] = [
            {"reason": "FieldManagerConflict", "message": f"conflict with {manager.describe()}", "field": path}
            for manager, path in found
        ]
        super().__init__(_conflict_message(found))


def _conflict_message(found: list[tuple[_Manager, str]]) -> str:
    if len(found) == 1:
        manager, path = found[0]
        return f"Apply failed with 1 conflict: conflict with {manager.describe()}: {path}"
    grouped: dict[str, list[str]] = {}
    for manager, path in found:
        grouped.setdefault(manager.describe(), []).append(path)
    lines: list[str] = []
    for described in sorted(grouped):
        lines.append(f"conflicts with {described}:")
        lines.extend(f"- {path}" for path in grouped[described])
    return f"Apply failed with {len(found)} conflicts: " + "\n".join(lines)


# ------------------------------------------------------------------------------------- managedFields


def _decode(entries: Any) -> dict[_Manager, _Entry] | None:
    """Parse managedFields; ``None`` when they are malformed (the API server then ignores them)."""
    if not isinstance(entries, list):
        return None
    out: dict[_Manager, _Entry] = {}
    for raw in entries:
        if not isinstance(raw, dict) or raw.get("operation") not in ("Apply", "Update"):
            return None
        name, api_version = raw.get("manager", ""), raw.get("apiVersion", "")
        subresource = raw.get("subresource", "")
        if not all(isinstance(x, str) for x in (name, api_version, subresource)):
            return None
        try:
            fields = from_fields_v1(raw.get("fieldsV1", {}))
        except ValueError:
            return None
        ident = _Manager(name, raw["operation"], api_version if raw["operation"] == "Update" else "", subresource)
        time = raw.get("time") if isinstance(raw.get("time"), str) else None
        known = {"manager", "operation", "apiVersion", "subresource", "time", "fieldsType", "fieldsV1"}
        extra = {k: v for k, v in raw.items() if k not in known}
        previous = out.get(ident)
        if previous is not None:
            fields |= previous.fields
        out[ident] = _Entry(fields, api_version, time, extra)
    return out


def _encode(managers: dict[_Manager, _Entry]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for ident, entry in managers.items():
        if not entry.fields:
            continue
        row: dict[str, Any] = {"manager": ident.name, "operation": ident.operation, "apiVersion": entry.api_version}
        if entry.time is not None:
            row["time"] = entry.time
        row["fieldsType"] = "FieldsV1"
        row["fieldsV1"] = to_fields_v1(entry.fields)
        if ident.subresource:
            row["subresource"] = ident.subresource
        row.update(entry.extra)
        rows.append(row)
    # The API server's order: operation, then time, manager, apiVersion, subresource.
    rows.sort(key=lambda r: (r["operation"], r.get("time") or "", r["manager"], r["apiVersion"],
                             r.get("subresource", "")))
    return rows


def _managers_of(obj: dict[str, Any] | None) -> dict[_Manager, _Entry]:
    if obj is None:
        return {}
    return _decode(obj.get("metadata", {}).get("managedFields", [])) or {}


def _owned(fields: FieldSet, subresource: str) -> FieldSet:
    """Drop the paths no manager may own through this endpoint (see the module docstring)."""
    if subresource == "status":
        return {path for path in fields if path[0] == "f:status"}
    return {path for path in fields if not _server_managed(path)}


def _server_managed(path: tuple[str, ...]) -> bool:
    if path[0] in ("f:apiVersion", "f:kind", "f:status"):
        return True
    return path[0] == "f:metadata" and len(path) > 1 and path[1][2:] in _SERVER_META


def _with_managed(obj: dict[str, Any], managers: dict[_Manager, _Entry]) -> dict[str, Any]:
    metadata = obj.setdefault("metadata", {})
    rows = _encode(managers)
    if rows:
        metadata["managedFields"] = rows
    else:
        metadata.pop("managedFields", None)
    return obj


def _strip_for_walk(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without its managedFields, so bookkeeping never compares itself."""
    out = dict(obj)
    metadata = out.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        out["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return out


# --------------------------------------------------------------------------------------------- apply


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    manager: str,
    force: bool,
    now: str,
    subresource: str = "",
) -> dict[str, Any]:
    """The object after ``manager`` applies ``applied`` to ``live`` (``None``: the object is new).

    Raises :class:`ApplyConflict` when a field another manager owns would change and ``force`` is
    false, and ``PatchError`` for a malformed configuration (no apiVersion/kind, a list item
    without its key field). Neither input is mutated.
    """
    if not isinstance(applied, dict) or not isinstance(applied.get("apiVersion"), str) or not isinstance(
        applied.get("kind"), str
    ):
        raise PatchError("an apply configuration must be an object with apiVersion and kind")
    if not manager:
        raise PatchError("fieldManager is required for apply")
    kind, api_version = applied["kind"], applied["apiVersion"]
    base = _strip_for_walk(copy.deepcopy(live)) if live is not None else {}
    managers = _managers_of(live)
    if live is not None and not managers:
        existing = _owned(fieldwalk.field_set(base, kind=kind), subresource)
        if existing:
            managers[_Manager(BEFORE_FIRST_APPLY, "Update", api_version)] = _Entry(existing, api_version, now)
    config = _config_for(applied, subresource)
    me = _Manager(manager, "Apply", "", subresource)
    try:
        config_fields = _owned(fieldwalk.field_set(config, kind=kind), subresource)
        merged = fieldwalk.merge(base, config, kind=kind)
        previous = managers.get(me)
        if previous is not None:
            others: FieldSet = set().union(*(e.fields for m, e in managers.items() if m != me))
            stale = previous.fields - config_fields - others
            merged = fieldwalk.remove(merged, stale, kind=kind)
        added, modified, removed = fieldwalk.compare(base, merged, kind=kind)
    except ValueError as exc:
        raise PatchError(str(exc)) from None
    changed = added | modified
    found = [
        (ident, path_string(path))
        for ident, entry in managers.items()
        if ident != me
        for path in sorted(entry.fields & changed)
    ]
    if found and not force:
        raise ApplyConflict(found)
    for ident, entry in managers.items():
        if ident != me:
            entry.fields -= changed | removed
    unchanged = not (added or modified or removed)
    time = previous.time if previous is not None and unchanged else now
    managers[me] = _Entry(config_fields, api_version, time, previous.extra if previous is not None else {})
    return _with_managed(merged, managers)


def _config_for(applied: dict[str, Any], subresource: str) -> dict[str, Any]:
    """The part of an applied configuration that is merged: server-set metadata never is."""
    config = copy.deepcopy(applied)
    if subresource == "status":  # the status endpoint changes status only, whatever else is sent
        raw_meta = config.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        config = {k: v for k, v in config.items() if k in ("apiVersion", "kind", "status")}
        config["metadata"] = {k: v for k, v in meta.items() if k in ("name", "namespace")}
    else:
        config.pop("status", None)
    metadata = config.get("metadata")
    if isinstance(metadata, dict):
        for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
                    "deletionTimestamp", "deletionGracePeriodSeconds"):
            metadata.pop(key, None)
    return config


# -------------------------------------------------------------------------------------------- update


def record_update(
    before: dict[str, Any] | None, after: dict[str, Any], *, manager: str, now: str, subresource: str = ""
) -> dict[str, Any]:
    """``after`` with managedFields updated for a non-apply write by ``manager``.

    The fields the write added or changed become ``manager``'s (operation ``Update``) and leave every
    other manager's set; removed fields leave every set. The baseline is ``after``'s own
    managedFields when the request carried valid ones (``[{}]`` clears them), else ``before``'s;
    for ``subresource="status"`` always ``before``'s. ``after`` is not mutated.
    """
    kind = str(after.get("kind", ""))
    api_version = str(after.get("apiVersion", ""))
    result = copy.deepcopy(after)
    requested = result.get("metadata", {}).get("managedFields")
    if subresource == "" and requested == [{}]:
        managers: dict[_Manager, _Entry] = {}
    else:
        decoded = _decode(requested) if subresource == "" and requested else None
        managers = decoded if decoded else _managers_of(before)
    old = _strip_for_walk(before) if before is not None else _empty_like(after)
    if isinstance(after.get("status"), dict) and not isinstance(old.get("status"), dict):
        old["status"] = {}  # a typed object's status struct always exists, so it is never owned itself
    try:
        added, modified, removed = fieldwalk.compare(old, _strip_for_walk(result), kind=kind)
    except ValueError:
        # A list item without its key cannot be tracked; the write itself is the server's to judge.
        return _with_managed(result, managers)
    changed = _owned(added | modified, subresource)
    removed = _owned(removed, subresource)
    me = _Manager(manager, "Update", api_version, subresource)
    for entry in managers.values():
        entry.fields -= changed | removed
    if changed:
        mine = managers.get(me)
        if mine is None:
            managers[me] = _Entry(set(changed), api_version, now)
        else:
            mine.fields |= changed
            mine.time = now
    return _with_managed(result, managers)


def _empty_like(obj: dict[str, Any]) -> dict[str, Any]:
    """What a create is compared with: the typed zero object, whose metadata, spec and pod template
    structs exist but are empty (so, as on a real cluster, they never show up as owned ``"."``)."""
    empty: dict[str, Any] = {"metadata": {}}
    if not isinstance(obj.get("spec"), dict):
        return empty
    empty["spec"] = {}
    node = empty
    for name in schema.pod_spec_prefix(str(obj.get("kind", ""))) or ():
        node = node.setdefault(name, {})
        if name == "template":
            node["metadata"] = {}
    return empty
