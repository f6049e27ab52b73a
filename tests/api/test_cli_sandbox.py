"""``syncwarden sandbox``: serves until interrupted, writes a kubeconfig with context ``sandbox`` that
the official client accepts, prints how to use kubectl, keeps objects in ``--state``; an unusable
state file or port exits 2 with a message and no traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from kubernetes import client, config
from typer.testing import CliRunner

import sandbox
from api.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serves_until_interrupted_and_keeps_state(tmp_path: Path) -> None:
    port, state, kubeconfig = _free_port(), tmp_path / "state.json", tmp_path / "kube.yaml"
    argv = [sys.executable, "-c", "from api.cli import main; main()", "sandbox", "--port", str(port),
            "--state", str(state), "--kubeconfig", str(kubeconfig)]
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}) as proc:
        assert proc.stdout is not None
        lines = []
        try:
            for line in proc.stdout:
                lines.append(line)
                if "Ctrl-C" in line:
                    break
            text = "".join(lines)
            assert f"http://127.0.0.1:{port}" in text
            assert f"export KUBECONFIG={kubeconfig}" in text and "kubectl get namespaces" in text
            api = config.new_client_from_config(config_file=str(kubeconfig), context="sandbox")
            with api:
                client.CoreV1Api(api).create_namespaced_config_map(
                    "default", {"metadata": {"name": "kept"}, "data": {"a": "b"}})
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert "kept" in {o["metadata"]["name"] for o in saved["objects"]}
    with sandbox.start(state_file=state) as again:
        reply = httpx.get(again.url + "/api/v1/namespaces/default/configmaps/kept")
        assert reply.json()["data"] == {"a": "b"}


def test_bad_state_file_exits_2(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("nonsense", encoding="utf-8")
    result = CliRunner().invoke(cli, ["sandbox", "--port", "0", "--state", str(state),
                                      "--kubeconfig", str(tmp_path / "k.yaml")])
    assert result.exit_code == 2
    assert "not a sandbox state file" in result.output
    assert not (tmp_path / "k.yaml").exists()


def test_port_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["sandbox", "--port", str(port), "--kubeconfig", str(tmp_path / "k")])
    assert result.exit_code == 2 and "cannot listen" in result.output
