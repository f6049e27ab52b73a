"""The sandbox's PATCH formats, as pure functions.

Covers: RFC 6902 JSON patch (every op, pointer escapes, ``-``, every error), RFC 7386 merge patch,
and Kubernetes strategic merge patch (merge keys per list under each pod-spec location and Service
ports, atomic lists, every ``$`` directive, null deletion, errors); inputs are never mutated.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sandbox import patch
from sandbox.patch import PatchError

# ------------------------------------------------------------------------------------- JSON patch

DOC: dict[str, Any] = {
    "metadata": {"name": "web", "labels": {"app": "web", "a/b": "slash", "m~n": "tilde"}},
    "spec": {"items": ["x", "y"], "n": 1},
}


@pytest.mark.parametrize(
    ("ops", "path", "expected"),
    [
        pytest.param([{"op": "add", "path": "/spec/new", "value": {"k": 1}}], ("spec", "new"), {"k": 1}, id="add-field"),
        pytest.param([{"op": "add", "path": "/spec/n", "value": 2}], ("spec", "n"), 2, id="add-replaces-field"),
        pytest.param([{"op": "add", "path": "/spec/items/1", "value": "z"}], ("spec", "items"), ["x", "z", "y"],
                     id="add-inserts-at-index"),
        pytest.param([{"op": "add", "path": "/spec/items/-", "value": "z"}], ("spec", "items"), ["x", "y", "z"],
                     id="add-dash-appends"),
        pytest.param([{"op": "add", "path": "/spec/items/2", "value": "z"}], ("spec", "items"), ["x", "y", "z"],
                     id="add-at-length-appends"),
        pytest.param([{"op": "replace", "path": "/metadata/labels/a~1b", "value": "v"}],
                     ("metadata", "labels", "a/b"), "v", id="escape-tilde-one-is-slash"),
        pytest.param([{"op": "replace", "path": "/metadata/labels/m~0n", "value": "v"}],
                     ("metadata", "labels", "m~n"), "v", id="escape-tilde-zero-is-tilde"),
        pytest.param([{"op": "add", "path": "/metadata/labels/x~01y", "value": "v"}],
                     ("metadata", "labels", "x~1y"), "v", id="escape-tilde-zero-one-is-literal"),
        pytest.param([{"op": "remove", "path": "/spec/items/0"}], ("spec", "items"), ["y"], id="remove-item"),
        pytest.param([{"op": "replace", "path": "/spec/items/0", "value": "q"}], ("spec", "items"), ["q", "y"],
                     id="replace-item"),
        pytest.param([{"op": "move", "from": "/spec/n", "path": "/spec/m"}], ("spec",),
                     {"items": ["x", "y"], "m": 1}, id="move"),
        pytest.param([{"op": "move", "from": "/spec/n", "path": "/spec/n"}], ("spec", "n"), 1, id="move-to-itself"),
        pytest.param([{"op": "copy", "from": "/spec/items", "path": "/spec/copy"}], ("spec", "copy"), ["x", "y"],
                     id="copy"),
        pytest.param([{"op": "test", "path": "/spec/n", "value": 1.0}, {"op": "remove", "path": "/spec/n"}],
                     ("spec",), {"items": ["x", "y"]}, id="test-passes-then-continues"),
        pytest.param([{"op": "test", "path": "/metadata/labels/a~1b", "value": "slash"}], ("spec", "n"), 1,
                     id="test-with-escape"),
    ],
)
def test_json_patch_applies(ops: list[Any], path: tuple[str, ...], expected: Any) -> None:
    before = copy.deepcopy(DOC)
    result: Any = patch.apply_json_patch(DOC, ops)
    for key in path:
        result = result[key]
    assert result == expected
    assert before == DOC


def test_json_patch_copy_is_independent_of_its_source() -> None:
    result = patch.apply_json_patch(DOC, [
        {"op": "copy", "from": "/metadata/labels", "path": "/spec/labels"},
        {"op": "add", "path": "/spec/labels/extra", "value": "1"},
    ])
    assert "extra" not in result["metadata"]["labels"]
    assert result["spec"]["labels"]["extra"] == "1"


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        pytest.param([{"op": "remove", "path": "/spec/missing"}], "operation 0 (remove '/spec/missing'): path does not exist",
                     id="remove-missing"),
        pytest.param([{"op": "replace", "path": "/spec/missing", "value": 1}], "path does not exist",
                     id="replace-missing"),
        pytest.param([{"op": "add", "path": "/nope/deeper", "value": 1}], "path '/nope' does not exist",
                     id="add-missing-parent"),
        pytest.param([{"op": "add", "path": "/spec/items/5", "value": 1}], "out of range", id="index-out-of-range"),
        pytest.param([{"op": "remove", "path": "/spec/items/-"}], "not a valid array index", id="dash-not-removable"),
        pytest.param([{"op": "add", "path": "/spec/items/01", "value": 1}], "not a valid array index",
                     id="leading-zero-index"),
        pytest.param([{"op": "test", "path": "/spec/n", "value": 2}], "operation 0 (test '/spec/n'): testing value 2 failed",
                     id="test-fails"),
        pytest.param([{"op": "test", "path": "/spec/n", "value": True}], "testing value true failed",
                     id="test-true-is-not-one"),
        pytest.param([{"op": "add", "path": "/spec/x", "value": 1}, {"op": "test", "path": "/spec/x", "value": 0}],
                     "operation 1", id="failure-names-the-operation"),
        pytest.param([{"op": "frobnicate", "path": "/spec"}], "unknown op 'frobnicate'", id="unknown-op"),
        pytest.param([{"op": "add", "path": "/spec/x"}], "missing 'value'", id="add-without-value"),
        pytest.param([{"op": "move", "path": "/spec/x"}], "missing 'from'", id="move-without-from"),
        pytest.param([{"op": "add", "value": 1}], "missing 'path'", id="op-without-path"),
        pytest.param([{"op": "add", "path": "spec", "value": 1}], "must start with '/'", id="relative-pointer"),
        pytest.param([{"op": "add", "path": "/spec/a~2b", "value": 1}], "invalid '~' escape", id="bad-escape"),
        pytest.param([{"op": "move", "from": "/spec", "path": "/spec/inner"}], "into one of its children",
                     id="move-into-child"),
        pytest.param([{"op": "replace", "path": "", "value": [1]}], "must remain a JSON object", id="root-not-object"),
        pytest.param([{"op": "remove", "path": ""}], "whole object cannot be removed", id="remove-root"),
        pytest.param(["add"], "must be an object", id="op-not-object"),
        pytest.param([{"op": "add", "path": "/spec/n/deeper", "value": 1}], "is not an object or array",
                     id="descend-into-scalar"),
    ],
)
def test_json_patch_errors(ops: list[Any], message: str) -> None:
    before = copy.deepcopy(DOC)
    with pytest.raises(PatchError, match=None) as caught:
        patch.apply_json_patch(DOC, ops)
    assert message in str(caught.value)
    assert before == DOC


def test_json_patch_must_be_a_list() -> None:
    with pytest.raises(PatchError, match="must be a list of operations"):
        patch.apply_json_patch(DOC, {"op": "add"})  # type: ignore[arg-type]


def test_json_patch_add_at_root_replaces_the_document() -> None:
    assert patch.apply_json_patch(DOC, [{"op": "add", "path": "", "value": {"a": 1}}]) == {"a": 1}


# ------------------------------------------------------------------------------------ merge patch


@pytest.mark.parametrize(
    ("original", "merge", "expected"),
    [
        pytest.param({"a": 1, "b": 2}, {"b": None}, {"a": 1}, id="null-deletes"),
        pytest.param({"a": {"x": 1, "y": 2}}, {"a": {"y": 3, "z": 4}}, {"a": {"x": 1, "y": 3, "z": 4}}, id="nested"),
        pytest.param({"a": [1, 2, 3]}, {"a": [4]}, {"a": [4]}, id="lists-replaced"),
        pytest.param({"a": "text"}, {"a": {"b": 1}}, {"a": {"b": 1}}, id="scalar-becomes-object"),
        pytest.param({}, {"a": {"b": None, "c": 1}}, {"a": {"c": 1}}, id="nulls-dropped-in-new-objects"),
        pytest.param({"a": 1}, {"missing": None}, {"a": 1}, id="null-for-absent-key-is-noop"),
        pytest.param({"a": {"b": 1}}, {"a": None}, {}, id="null-deletes-subtree"),
    ],
)
def test_merge_patch(original: dict[str, Any], merge: dict[str, Any], expected: dict[str, Any]) -> None:
    before = copy.deepcopy(original)
    assert patch.apply_merge_patch(original, merge) == expected
    assert original == before


def test_merge_patch_must_be_an_object() -> None:
    with pytest.raises(PatchError, match="must be a JSON object"):
        patch.apply_merge_patch({}, [1])  # type: ignore[arg-type]


# -------------------------------------------------------------------------- strategic merge patch


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "finalizers": ["a", "b", "c"], "labels": {"app": "web", "tier": "front"}},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "args": ["--a", "--b"],
                            "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 9090, "name": "metrics"}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "volumeMounts": [{"mountPath": "/data", "name": "data"}],
                        },
                        {"name": "sidecar", "image": "side:1"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}],
                    "imagePullSecrets": [{"name": "regcred"}],
                    "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}],
                }
            },
        },
    }


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def _container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in _pod_spec(obj)["containers"] if c["name"] == name)


def _smp(body: dict[str, Any]) -> dict[str, Any]:
    original = _deployment()
    result = patch.apply_strategic_merge_patch(original, body, kind="Deployment")
    assert original == _deployment(), "the input must not be mutated"
    return result


def _tpl(pod_spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": pod_spec}}}


def test_smp_merges_containers_by_name() -> None:
    result = _smp(_tpl({"containers": [{"name": "app", "image": "app:2"}]}))
    assert _container(result, "app")["image"] == "app:2"
    assert _container(result, "app")["args"] == ["--a", "--b"]
    assert _container(result, "sidecar") == {"name": "sidecar", "image": "side:1"}


@pytest.mark.parametrize(
    ("body", "check"),
    [
        pytest.param(_tpl({"containers": [{"name": "new", "image": "n:1"}]}),
                     lambda r: [c["name"] for c in _pod_spec(r)["containers"]] == ["app", "sidecar", "new"],
                     id="new-container-appended"),
        pytest.param(_tpl({"containers": [{"name": "sidecar", "$patch": "delete"}]}),
                     lambda r: [c["name"] for c in _pod_spec(r)["containers"]] == ["app"],
                     id="list-item-patch-delete"),
        pytest.param(_tpl({"containers": [{"name": "only", "image": "o:1"}, {"$patch": "replace"}]}),
                     lambda r: _pod_spec(r)["containers"] == [{"name": "only", "image": "o:1"}],
                     id="list-patch-replace"),
        pytest.param(_tpl({"containers": [{"name": "app", "ports": [{"containerPort": 80, "protocol": "UDP"}]}]}),
                     lambda r: _container(r, "app")["ports"] == [
                         {"containerPort": 80, "name": "http", "protocol": "UDP"},
                         {"containerPort": 9090, "name": "metrics"}],
                     id="container-ports-by-containerPort"),
        pytest.param(_tpl({"containers": [{"name": "app", "env": [{"name": "B", "value": "22"}, {"name": "C", "value": "3"}]}]}),
                     lambda r: _container(r, "app")["env"] == [
                         {"name": "A", "value": "1"}, {"name": "B", "value": "22"}, {"name": "C", "value": "3"}],
                     id="env-by-name"),
        pytest.param(_tpl({"containers": [{"name": "app", "env": [{"name": "A", "$patch": "delete"}]}]}),
                     lambda r: _container(r, "app")["env"] == [{"name": "B", "value": "2"}],
                     id="env-delete"),
        pytest.param(_tpl({"containers": [{"name": "app", "volumeMounts": [{"mountPath": "/cache", "name": "cache"}]}]}),
                     lambda r: [m["mountPath"] for m in _container(r, "app")["volumeMounts"]] == ["/data", "/cache"],
                     id="volumeMounts-by-mountPath"),
        pytest.param(_tpl({"volumes": [{"name": "data", "emptyDir": None, "configMap": {"name": "cm"}}]}),
                     lambda r: _pod_spec(r)["volumes"] == [
                         {"name": "data", "configMap": {"name": "cm"}}, {"name": "cache", "emptyDir": {}}],
                     id="volumes-by-name-with-null"),
        pytest.param(_tpl({"imagePullSecrets": [{"name": "other"}]}),
                     lambda r: _pod_spec(r)["imagePullSecrets"] == [{"name": "regcred"}, {"name": "other"}],
                     id="imagePullSecrets-by-name"),
        pytest.param(_tpl({"tolerations": [{"key": "c", "operator": "Exists"}]}),
                     lambda r: _pod_spec(r)["tolerations"] == [{"key": "c", "operator": "Exists"}],
                     id="tolerations-replaced"),
        pytest.param(_tpl({"containers": [{"name": "app", "args": ["--c"]}]}),
                     lambda r: _container(r, "app")["args"] == ["--c"],
                     id="args-replaced"),
        pytest.param({"spec": {"replicas": None}}, lambda r: "replicas" not in r["spec"], id="null-deletes"),
        pytest.param({"spec": {"strategy": {"$patch": "delete"}}}, lambda r: "strategy" not in r["spec"],
                     id="map-patch-delete"),
        pytest.param({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}},
                     lambda r: r["spec"]["strategy"] == {"type": "Recreate"}, id="map-patch-replace"),
        pytest.param({"spec": {"strategy": {"$patch": "merge", "type": "Recreate"}}},
                     lambda r: r["spec"]["strategy"] == {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}},
                     id="map-patch-merge"),
        pytest.param({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
                     lambda r: r["spec"]["strategy"] == {"type": "Recreate"}, id="retainKeys"),
        pytest.param({"metadata": {"finalizers": ["d", "a"]}},
                     lambda r: r["metadata"]["finalizers"] == ["a", "b", "c", "d"], id="finalizers-merge-as-set"),
        pytest.param({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}},
                     lambda r: r["metadata"]["finalizers"] == ["a", "c"], id="deleteFromPrimitiveList"),
        pytest.param({"metadata": {"$setElementOrder/finalizers": ["c", "b"]}},
                     lambda r: r["metadata"]["finalizers"] == ["a", "c", "b"], id="setElementOrder-unlisted-first"),
        pytest.param({"metadata": {"$setElementOrder/finalizers": ["c", "a", "b"]}},
                     lambda r: r["metadata"]["finalizers"] == ["c", "a", "b"], id="setElementOrder-primitive"),
        pytest.param(_tpl({"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                           "containers": [{"name": "app", "image": "app:3"}]}),
                     lambda r: [(c["name"], c["image"]) for c in _pod_spec(r)["containers"]] == [
                         ("sidecar", "side:1"), ("app", "app:3")],
                     id="setElementOrder-by-merge-key"),
        pytest.param(_tpl({"$setElementOrder/containers": [{"name": "new"}, {"name": "app"}],
                           "containers": [{"name": "new", "image": "n:1"}]}),
                     lambda r: [c["name"] for c in _pod_spec(r)["containers"]] == ["new", "app", "sidecar"],
                     id="setElementOrder-unlisted-keep-place"),
        pytest.param({"metadata": {"labels": {"tier": None, "new": "1"}}},
                     lambda r: r["metadata"]["labels"] == {"app": "web", "new": "1"}, id="labels-map-merge"),
        pytest.param({"spec": {"template": {"metadata": {"labels": {"x": "1", "gone": None}}}}},
                     lambda r: r["spec"]["template"]["metadata"] == {"labels": {"x": "1"}},
                     id="new-subtree-drops-nulls"),
    ],
)
def test_smp_directives_and_lists(body: dict[str, Any], check: Any) -> None:
    assert check(_smp(body))


@pytest.mark.parametrize(
    ("kind", "original", "body", "expected"),
    [
        pytest.param(
            "Pod",
            {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}},
            {"spec": {"containers": [{"name": "b", "image": "2"}]}},
            {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}},
            id="pod-spec-directly",
        ),
        pytest.param(
            "CronJob",
            {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}}}}},
            {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}]}}}}}},
            {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}}}}},
            id="cronjob-job-template",
        ),
        pytest.param(
            "Job",
            {"spec": {"template": {"spec": {"initContainers": [{"name": "i", "image": "1"}]}}}},
            {"spec": {"template": {"spec": {"initContainers": [{"name": "j", "image": "1"}]}}}},
            {"spec": {"template": {"spec": {"initContainers": [{"name": "i", "image": "1"}, {"name": "j", "image": "1"}]}}}},
            id="job-init-containers",
        ),
        pytest.param(
            "Service",
            {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}},
            {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}},
            {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}},
            id="service-ports-by-port",
        ),
        pytest.param(
            "Widget",
            {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}},
            {"spec": {"template": {"spec": {"containers": [{"name": "b"}]}}}},
            {"spec": {"template": {"spec": {"containers": [{"name": "b"}]}}}},
            id="unknown-kind-lists-replaced",
        ),
        pytest.param(
            "Deployment",
            {"spec": {"containers": [{"name": "a"}]}},
            {"spec": {"containers": [{"name": "b"}]}},
            {"spec": {"containers": [{"name": "b"}]}},
            id="merge-keys-only-under-the-pod-template",
        ),
    ],
)
def test_smp_merge_key_locations(
    kind: str, original: dict[str, Any], body: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert patch.apply_strategic_merge_patch(original, body, kind=kind) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(_tpl({"containers": [{"image": "x"}]}), "does not contain declared merge key: name",
                     id="missing-merge-key"),
        pytest.param({"spec": {"strategy": {"$patch": "explode"}}}, "unknown patch type 'explode'",
                     id="unknown-patch-directive"),
        pytest.param({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}},
                     "field 'rollingUpdate' is patched but not listed in $retainKeys", id="retainKeys-violation"),
        pytest.param({"spec": {"strategy": {"$retainKeys": "type"}}}, "$retainKeys must be a list",
                     id="retainKeys-not-a-list"),
        pytest.param({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, "must be a list",
                     id="deleteFromPrimitiveList-not-a-list"),
        pytest.param({"metadata": {"$setElementOrder/finalizers": "a"}}, "must be a list",
                     id="setElementOrder-not-a-list"),
    ],
)
def test_smp_errors(body: dict[str, Any], message: str) -> None:
    with pytest.raises(PatchError) as caught:
        _smp(body)
    assert message in str(caught.value)


def test_smp_must_be_an_object() -> None:
    with pytest.raises(PatchError, match="must be a JSON object"):
        patch.apply_strategic_merge_patch({}, [], kind="Pod")  # type: ignore[arg-type]
