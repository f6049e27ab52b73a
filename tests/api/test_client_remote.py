"""``api.cli.remote``: the one "local or server?" decision and the stored login.

Covers: no server anywhere means local mode; ``--server`` beats ``SYNCWARDEN_SERVER`` beats the stored login; the
token is ``--auth-token``, else ``SYNCWARDEN_TOKEN``, else the stored one — and the stored token is never sent to
another server; ``--auth-token`` without a server is a usage error; the login file is written with mode 0600 in
a 0700 directory and replaced atomically; an unreadable login file is ignored with a warning.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import typer

from api.cli import remote


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("SYNCWARDEN_SERVER", raising=False)
    monkeypatch.delenv("SYNCWARDEN_TOKEN", raising=False)


def test_nothing_configured_means_local_mode() -> None:
    assert remote.target(None, None) is None


def test_auth_token_without_a_server_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as caught:
        remote.target(None, "tok")
    assert caught.value.exit_code == 2
    assert "needs a server" in capsys.readouterr().err


def test_stored_login_is_used_and_written_privately(tmp_path: Path) -> None:
    file = remote.save_login("http://127.0.0.1:8080", "sw-token")
    assert file == tmp_path / "cfg" / "syncwarden" / "config.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    assert [p.name for p in file.parent.iterdir()] == ["config.json"]  # no temporary file left behind
    chosen = remote.target(None, None)
    assert chosen == remote.Remote(server="http://127.0.0.1:8080", token="sw-token")
    assert "sw-token" not in repr(chosen)
    assert remote.forget_login() is True
    assert remote.target(None, None) is None
    assert remote.forget_login() is False


def test_precedence_of_servers_and_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    remote.save_login("http://stored:1", "stored-token")
    monkeypatch.setenv("SYNCWARDEN_SERVER", "http://env:2/")
    assert remote.target(None, None) == remote.Remote(server="http://env:2", token=None)  # not the stored token
    assert remote.target("http://stored:1/", None) == remote.Remote(server="http://stored:1", token="stored-token")
    monkeypatch.setenv("SYNCWARDEN_TOKEN", "env-token")
    assert remote.target("http://flag:3", None) == remote.Remote(server="http://flag:3", token="env-token")
    assert remote.target("http://flag:3", "flag-token") == remote.Remote(server="http://flag:3", token="flag-token")


def test_a_bad_server_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as caught:
        remote.target("localhost:8080", None)
    assert caught.value.exit_code == 2
    assert "--server" in capsys.readouterr().err


def test_an_unreadable_login_file_is_ignored_with_a_warning(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    file = remote.config_path()
    file.parent.mkdir(parents=True)
    file.write_text("{not json")
    assert remote.target(None, None) is None
    assert "ignored" in capsys.readouterr().err
