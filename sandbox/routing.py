"""URL paths to what they address: a discovery document, or a resource ``Target`` and its verb.

Paths follow the API server: ``/api/v1/...`` for the core group, ``/apis/<group>/<version>/...`` for
the others, ``namespaces/<ns>/`` before namespaced resources, ``/<name>/status`` for the status
subresource. A namespaced resource addressed without a namespace can only be listed or watched; a
cluster-scoped one addressed inside a namespace does not exist (404). Used by ``sandbox.server``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.errors import ApiError
from sandbox.resources import Registry
from sandbox.verbs import Target

__all__ = ["Route", "resolve", "verb_of"]

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True, slots=True)
class Route:
    """Either a fixed document (discovery, version) or a resource target."""

    document: dict[str, Any] | None = None
    target: Target | None = None


def resolve(registry: Registry, path: str, *, server_address: str) -> Route:
    """Raises ``ApiError`` 404 for anything the sandbox does not serve."""
    segments = [s for s in path.split("/") if s]
    if not segments:
        raise ApiError.unknown_resource()
    if segments == ["version"]:
        return Route(document=dict(VERSION))
    if segments[0] == "api":
        if len(segments) == 1:
            return Route(document=registry.api_versions(server_address))
        if segments[1] != "v1":
            raise ApiError.unknown_resource()
        group, version, rest = "", "v1", segments[2:]
    elif segments[0] == "apis":
        if len(segments) == 1:
            return Route(document=registry.group_list())
        if len(segments) == 2:
            document = registry.group_document(segments[1])
            if document is None:
                raise ApiError.unknown_resource()
            return Route(document=document)
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        raise ApiError.unknown_resource()
    if not rest:
        listing = registry.resource_list(group, version)
        if listing is None:
            raise ApiError.unknown_resource()
        return Route(document=listing)
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (group == "" and len(rest) == 3 and rest[2] == "status"):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise ApiError.unknown_resource()
    rtype = registry.lookup(group, version, rest[0])
    if rtype is None:
        raise ApiError.unknown_resource()
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if namespace is not None and not rtype.namespaced:
        raise ApiError.unknown_resource()
    if subresource is not None and (subresource != "status" or not rtype.has_status):
        raise ApiError.unknown_resource()
    return Route(target=Target(rtype, namespace, name, subresource))


def verb_of(method: str, target: Target, query: dict[str, str]) -> str:
    """The Kubernetes verb of a request, or an ``ApiError`` for a method the path does not allow."""
    collection = target.name is None
    if target.rtype.namespaced and target.namespace is None and (method != "GET" or not collection):
        raise ApiError.unknown_resource()
    if method == "GET":
        if collection:
            return "watch" if query.get("watch") in ("true", "1") else "list"
        return "get"
    verbs = {"POST": "create", "DELETE": "deletecollection"} if collection else {
        "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    verb = verbs.get(method)
    if verb is None:
        raise ApiError(405, f"the server does not allow this method on the requested resource ({method})")
    return verb
