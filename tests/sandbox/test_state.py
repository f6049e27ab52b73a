"""Persistence: in memory by default; with a state file, objects (including CRDs and their custom
objects) and the resourceVersion counter survive a restart, in process and for
``python -m sandbox --port P --state F`` stopped with SIGTERM; a corrupt state file is a clear error;
``write_kubeconfig`` gives a working context."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

import sandbox
from tests.sandbox.helpers import configmap, http
from tests.sandbox.test_lifecycle import CRD

ROOT = Path(__file__).resolve().parents[2]


def test_memory_only_by_default() -> None:
    with sandbox.start() as first:
        http(first.url, "POST", "/api/v1/namespaces/default/configmaps", configmap("a"))
    with sandbox.start() as second:
        assert http(second.url, "GET", "/api/v1/namespaces/default/configmaps/a").status == 404


def test_state_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with sandbox.start(state_file=state) as first:
        made = http(first.url, "POST", "/api/v1/namespaces/default/configmaps", configmap("a")).body
        http(first.url, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
        http(first.url, "POST", "/apis/example.com/v1/namespaces/default/widgets",
             {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
        last_rv = first.core.store.resource_version
    with sandbox.start(state_file=state) as second:
        again = http(second.url, "GET", "/api/v1/namespaces/default/configmaps/a").body
        assert again["metadata"]["uid"] == made["metadata"]["uid"]
        assert http(second.url, "GET", "/apis/example.com/v1/namespaces/default/widgets/w").status == 200
        newer = http(second.url, "POST", "/api/v1/namespaces/default/configmaps", configmap("b")).body
        assert int(newer["metadata"]["resourceVersion"]) > last_rv
        # History before the restart is gone: watching from an older version is 410.
        frame = http(second.url, "GET", f"/api/v1/configmaps?watch=true&resourceVersion={last_rv - 1}").body
        assert frame["type"] == "ERROR" and frame["object"]["code"] == 410


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json", encoding="utf-8")
    with pytest.raises(sandbox.StateFileError, match="state.json"):
        sandbox.start(state_file=state)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _serve(port: int, state: Path, stop: signal.Signals) -> Iterator[str]:
    """Run ``python -m sandbox`` until the block ends, then stop it with ``stop``; it must exit 0."""
    with subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--state", str(state)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            line = proc.stdout.readline()
            assert f"127.0.0.1:{port}" in line, line
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.send_signal(stop)
            _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err


def test_module_entry_point_keeps_state_across_processes(tmp_path: Path) -> None:
    state, port = tmp_path / "state.json", _free_port()
    with _serve(port, state, signal.SIGTERM) as url:
        assert http(url, "POST", "/api/v1/namespaces/default/configmaps", configmap("kept")).status == 201
    with _serve(port, state, signal.SIGINT) as url:
        assert http(url, "GET", "/api/v1/namespaces/default/configmaps/kept").status == 200


def test_module_entry_point_reports_bad_state(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("[]", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "sandbox", "--port", "0", "--state", str(state)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "not a sandbox state file" in result.stderr
    assert "Traceback" not in result.stderr


def test_kubeconfig_works_with_the_official_client(sb: sandbox.Sandbox, tmp_path: Path) -> None:
    path = sb.write_kubeconfig(tmp_path / "kube" / "config", context="demo")
    api = config.new_client_from_config(config_file=str(path), context="demo")
    with api:
        names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
    assert "default" in names


def test_state_file_in_a_new_directory(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "er" / "state.json"
    with sandbox.start(state_file=state) as sb:
        http(sb.url, "POST", "/api/v1/namespaces/default/configmaps", configmap("a"))
    assert state.exists()
