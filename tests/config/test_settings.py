"""config.settings: environment prefix, nested groups, flat aliases, the config file, the data directory default."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from config.settings import default_data_dir, load_settings


def test_data_dir_follows_xdg_data_home_then_home() -> None:
    assert default_data_dir({"XDG_DATA_HOME": "/x/data", "HOME": "/home/u"}) == Path("/x/data/syncwarden")
    assert default_data_dir({"HOME": "/home/u"}) == Path("/home/u/.local/share/syncwarden")
    assert load_settings({"HOME": "/home/u"}).data_dir == Path("/home/u/.local/share/syncwarden")


def test_embedded_database_is_sqlite_in_the_data_dir() -> None:
    settings = load_settings({"SYNCWARDEN_DATA_DIR": "/srv/sw"})
    assert settings.database_url() == "sqlite:////srv/sw/syncwarden.db"


def test_environment_nested_groups_and_flat_aliases() -> None:
    settings = load_settings(
        {
            "HOME": "/h",
            "SYNCWARDEN_DATABASE_URL": "postgresql+psycopg://db/sw",
            "SYNCWARDEN_SIGNING_KEY": "k" * 40,
            "SYNCWARDEN_SYNC__POLL_INTERVAL_SECONDS": "30",
            "SYNCWARDEN_POLICY__MATCH_MODE": "regex",
        }
    )
    assert settings.database_url() == "postgresql+psycopg://db/sw"
    assert settings.policy.signing_key is not None
    assert settings.policy.signing_key.get_secret_value() == "k" * 40
    assert "k" * 40 not in repr(settings)  # secrets never print
    assert settings.sync.poll_interval_seconds == 30.0
    assert settings.policy.match_mode == "regex"


def test_config_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    cfg = tmp_path / "syncwarden.yaml"
    cfg.write_text("api:\n  port: 9000\n  host: 0.0.0.0\nsync:\n  allow_file_urls: true\n")
    settings = load_settings({"HOME": "/h", "SYNCWARDEN_CONFIG": str(cfg), "SYNCWARDEN_API__PORT": "9100"})
    assert settings.api.port == 9100
    assert settings.api.host == "0.0.0.0"
    assert settings.sync.allow_file_urls is True


def test_bad_values_are_rejected_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="match_mode"):
        load_settings({"HOME": "/h", "SYNCWARDEN_POLICY__MATCH_MODE": "fuzzy"})
    with pytest.raises(ValidationError, match="nonsense"):
        load_settings({"HOME": "/h", "SYNCWARDEN_NONSENSE": "1"})
    with pytest.raises(ValueError, match="cannot read"):
        load_settings({"HOME": "/h", "SYNCWARDEN_CONFIG": str(tmp_path / "missing.yaml")})


def test_repo_error_grace_period_defaults_to_argo_cds_and_is_a_sync_setting() -> None:
    assert load_settings({"HOME": "/h"}).sync.repo_error_grace_seconds == 180.0
    env = {"HOME": "/h", "SYNCWARDEN_SYNC__REPO_ERROR_GRACE_SECONDS": "30"}
    assert load_settings(env).sync.repo_error_grace_seconds == 30.0
    with pytest.raises(ValidationError, match="repo_error_grace_seconds"):
        load_settings({"HOME": "/h", "SYNCWARDEN_SYNC__REPO_ERROR_GRACE_SECONDS": "-1"})
