"""``syncwarden serve`` refuses bad input before starting anything: a lease shorter than two passes, a port that
is already taken (so the one-time admin password is never printed for a server that cannot run)."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from api.cli import cli

runner = CliRunner()


def _env(tmp_path: Path) -> dict[str, str | None]:
    return {"SYNCWARDEN_DATA_DIR": str(tmp_path / "data"), "SYNCWARDEN_DATABASE_URL": None,
            "SYNCWARDEN_CONFIG": None, "SYNCWARDEN_SIGNING_KEY": None, "KUBECONFIG": None}


def test_a_lease_shorter_than_two_passes_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["serve", "--interval", "1", "--lease-seconds", "1.5"], env=_env(tmp_path))
    assert result.exit_code == 2
    assert "--lease-seconds (1.5) must be at least twice --interval (1)" in result.stderr


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(cli, ["serve", "--sandbox", "--port", str(port)], env=_env(tmp_path))
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "initial admin password" not in result.stdout
    assert not (tmp_path / "data" / "syncwarden.db").exists()
