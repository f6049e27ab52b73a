"""Settings: environment variables with the prefix ``SYNCWARDEN_`` and an optional YAML config file.

Groups are nested models; a nested field is set with a double underscore, e.g.
``SYNCWARDEN_SYNC__POLL_INTERVAL_SECONDS=60``. A few common ones have flat aliases
(``SYNCWARDEN_DATABASE_URL``, ``SYNCWARDEN_DATA_DIR``, ``SYNCWARDEN_SIGNING_KEY``).
The config file is read from ``SYNCWARDEN_CONFIG`` when set; environment variables win over it.

There is no module-level instance: entry points call :func:`load_settings` once and pass the groups down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from config import yamlsafe

__all__ = [
    "ApiSettings",
    "DatabaseSettings",
    "LoggingSettings",
    "PolicySettings",
    "RepoCredentialSettings",
    "Settings",
    "SyncSettings",
    "default_data_dir",
    "load_settings",
]


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/syncwarden``, or ``~/.local/share/syncwarden`` when XDG_DATA_HOME is unset."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".local" / "share")
    return Path(base) / "syncwarden"


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class DatabaseSettings(_Group):
    url: str | None = None
    """SQLAlchemy URL. Unset means a SQLite file ``syncwarden.db`` in the data directory (WAL mode);
    set it to ``postgresql+psycopg://...`` to share state between replicas."""

    pool_size: int = Field(default=5, ge=1)
    """Connections per process for PostgreSQL; SQLite uses one writer connection."""


class PolicySettings(_Group):
    default_role: str | None = None
    """RBAC role every authenticated caller gets (Argo CD ``policy.default``). Unset: none."""

    match_mode: Literal["glob", "regex"] = "glob"
    """RBAC pattern dialect (Argo CD ``policy.matchMode``). Regex is anchored (deliberate difference 6)."""

    signing_key: SecretStr | None = None
    """HMAC key for project tokens, at least 32 bytes. Unset: generated once into the data directory."""

    token_issuer: str = "syncwarden"  # noqa: S105 - an issuer name, not a secret
    """``iss`` of the project tokens this service mints; verification demands exactly this value."""

    token_audience: str = "syncwarden"  # noqa: S105 - an audience name, not a secret
    """``aud`` of the project tokens; verification demands exactly this value."""


class RepoCredentialSettings(_Group):
    url_prefix: str
    """Repositories whose normalised URL starts with this (``https://github.com/org``, ``git@host:org``)."""

    username: str = ""
    """HTTPS user name (any non-empty value for token-only hosts)."""

    password: SecretStr | None = None
    """HTTPS password or access token; handed to git through GIT_ASKPASS, never on a command line."""

    ssh_private_key_file: Path | None = None
    """SSH private key for ssh:// and scp-like URLs."""

    known_hosts_file: Path | None = None
    """known_hosts pinning the SSH host keys; host keys are checked strictly."""


class SyncSettings(_Group):
    poll_interval_seconds: float = Field(default=180.0, gt=0)
    """How often each app is compared with Git (Argo CD ``timeout.reconciliation``, 180 s)."""

    poll_jitter_seconds: float = Field(default=60.0, ge=0)
    """Random delay added per app so that apps do not all poll at once (Argo CD's jitter)."""

    ls_remote_interval_seconds: float = Field(default=60.0, ge=0)
    """At most one ``git ls-remote`` per (repo, ref) in this interval, shared by every app."""

    git_timeout_seconds: float = Field(default=90.0, gt=0)
    """Bound on one git network operation; a hung clone is killed after it."""

    allow_file_urls: bool = False
    """Permit ``file://`` and local-path repository URLs (for the sandbox demo and tests)."""

    sync_timeout_seconds: float = Field(default=0.0, ge=0)
    """End a sync operation as Failed after this many seconds; 0 means no timeout (Argo CD default)."""

    repo_error_grace_seconds: float = Field(default=180.0, ge=0)
    """How long a poll may keep failing to render an app before its status shows it (Argo CD
    ``--repo-error-grace-period-seconds``, 180 s): from an app's first failure until this has passed, a poll
    that cannot load the desired state leaves the last status as it was, so a Git host's brief outage does not
    flip every app to Unknown. A refresh or a spec change reports the error at once; 0 reports every failure."""

    tracking_key: str = "syncwarden.io/tracking-id"
    """Annotation (and/or label) that marks the objects an app owns."""

    tracking_method: Literal["annotation", "label", "annotation+label"] = "annotation"
    """Where the tracking id is written (Argo CD ``application.resourceTrackingMethod``)."""

    instance_label_key: str = "app.kubernetes.io/instance"
    """Label holding the app instance name under ``label`` and ``annotation+label`` tracking (Argo CD
    ``application.instanceLabelKey``); also recognised when migrating from label to annotation tracking."""

    control_plane_namespace: str = "syncwarden"
    """Namespace of syncwarden's own Applications: apps elsewhere are tracked as ``<namespace>_<app>``."""

    max_manifest_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    """Cap on rendered manifests per app, in bytes (Argo CD's 10 MB default)."""

    repo_credentials: list[RepoCredentialSettings] = Field(default_factory=list)
    """Credentials for Git repositories (Argo CD repo-creds): the longest matching ``url_prefix`` wins."""


class ApiSettings(_Group):
    host: str = "127.0.0.1"
    """Address the HTTP API listens on. Loopback by default; set 0.0.0.0 deliberately."""

    port: int = Field(default=8080, ge=0, le=65535)
    """TCP port of the HTTP API."""

    max_body_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    """Requests with a larger body get 413 before the body is read further."""

    anonymous: bool = False
    """Let unauthenticated callers through to RBAC with the empty subject (Argo CD ``users.anonymous.enabled``)."""

    webhook_secrets: dict[Literal["github", "gitlab", "bitbucket", "gitea"], SecretStr] = Field(default_factory=dict)
    """Shared secret per Git provider for ``/api/webhook`` signatures; a provider without one is refused."""

    request_timeout_seconds: float = Field(default=30.0, gt=0)
    """A response that has not started after this many seconds is answered 504."""


class LoggingSettings(_Group):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Level of syncwarden's own loggers."""

    json_format: bool = False
    """One JSON object per line instead of human text."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SYNCWARDEN_",
        env_nested_delimiter="__",
        extra="forbid",
        use_attribute_docstrings=True,
        frozen=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    """Where the embedded state lives: the SQLite database, the signing key, the repository cache."""

    database: DatabaseSettings = DatabaseSettings()
    policy: PolicySettings = PolicySettings()
    sync: SyncSettings = SyncSettings()
    api: ApiSettings = ApiSettings()
    logging: LoggingSettings = LoggingSettings()

    def database_url(self) -> str:
        """The configured URL, or the embedded SQLite file in the data directory."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.data_dir / 'syncwarden.db'}"


_FLAT_ALIASES = {
    "SYNCWARDEN_DATABASE_URL": ("database", "url"),
    "SYNCWARDEN_SIGNING_KEY": ("policy", "signing_key"),
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from a config file (``SYNCWARDEN_CONFIG``), the environment and keyword overrides.

    ``environ`` defaults to ``os.environ``; tests pass a dict. Precedence: overrides > environment > file.
    Raises ``ValueError`` naming the offending file or variable.
    """
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    config_file = env.get("SYNCWARDEN_CONFIG")
    if config_file:
        path = Path(config_file)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"SYNCWARDEN_CONFIG: cannot read {path}: {exc.strerror}") from None
        loaded = yamlsafe.load_one(raw, source=str(path))
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: the config file must be a mapping")
        values.update(loaded)
    if "data_dir" not in values and "SYNCWARDEN_DATA_DIR" not in env:
        values["data_dir"] = default_data_dir(env)
    for var, (group, key) in _FLAT_ALIASES.items():
        if env.get(var):
            values.setdefault(group, {})
            values[group] = {**values[group], key: env[var]}
    # Only our own variables reach pydantic-settings, so a test's dict environment is complete.
    ours = {k: v for k, v in env.items() if k.startswith("SYNCWARDEN_") and k not in _FLAT_ALIASES}
    ours.pop("SYNCWARDEN_CONFIG", None)
    ours.pop("SYNCWARDEN_TEST_DATABASE_URL", None)
    merged = _merge(values, _env_to_nested(ours))
    merged = _merge(merged, overrides)
    return Settings.model_validate(merged)


def _env_to_nested(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in env.items():
        parts = key.removeprefix("SYNCWARDEN_").lower().split("__")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out
