"""Helpers shared by the sandbox tests: a raw HTTP call (for what the typed client cannot express) and
small manifest builders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


def http(
    base: str, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
    timeout: float = 10,
) -> Response:
    """One request; a JSON (or raw bytes/str) body; the reply parsed as JSON when it is JSON."""
    data: bytes | None
    if body is None:
        data = None
    elif isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps(body).encode()
    reply = httpx.request(method, base + path, content=data, headers={"Content-Type": content_type},
                          timeout=timeout)
    try:
        parsed: Any = reply.json() if reply.content else None
    except ValueError:
        parsed = reply.text
    return Response(reply.status_code, dict(reply.headers), parsed)


def configmap(name: str, *, labels: dict[str, str] | None = None, data: dict[str, str] | None = None,
              namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}}


def deployment(name: str, *, replicas: int = 1, image: str = "nginx:1.27",
               labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
        },
    }
