"""How a git process is started: repository credentials, a clean environment, and the hardening knobs.

Who calls this: :mod:`sync.source` for every git command; ``api`` builds :class:`RepoCredential` values from
configuration. Secrets never reach a command line (where ``ps`` would show them) or a message: HTTPS
user/token pairs reach git through ``GIT_ASKPASS`` (a tiny script that prints two environment variables),
SSH keys through ``GIT_SSH_COMMAND`` with a pinned ``known_hosts`` and strict host-key checking.

Hardening (``security-cases.md`` §B.4): the environment is built from scratch (no inherited ``GIT_*``),
``GIT_TERMINAL_PROMPT=0``, no system or global config, an empty ``HOME``, ``GIT_ALLOW_PROTOCOL`` limited to
https/ssh (and file when enabled), hooks disabled, credential helpers disabled.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from sync import giturl

__all__ = ["ASKPASS_SCRIPT", "RepoCredential", "git_environment", "match_credential", "split_userinfo"]


@dataclass(frozen=True)
class RepoCredential:
    """Credentials for every repository whose normalised URL starts with ``url_prefix`` (Argo CD repo-creds)."""

    url_prefix: str
    username: str = ""
    password: str = field(default="", repr=False)
    ssh_private_key_file: Path | None = None
    known_hosts_file: Path | None = None

    @property
    def identity(self) -> str:
        """A stable, non-reversible name for these credentials: part of the mirror and render-cache keys,
        so two tenants with different tokens never share a mirror or a cached render."""
        material = "\0".join(
            (
                self.username,
                self.password,
                str(self.ssh_private_key_file or ""),
                str(self.known_hosts_file or ""),
            )
        )
        return hashlib.sha256(material.encode()).hexdigest()[:16]


ANONYMOUS = ""

ASKPASS_SCRIPT = """#!/bin/sh
# Written by syncwarden: git calls this for a username or password; both come from the environment.
case "$1" in
  Username*) printf '%s\\n' "$SYNCWARDEN_GIT_USERNAME" ;;
  *) printf '%s\\n' "$SYNCWARDEN_GIT_PASSWORD" ;;
esac
"""


def split_userinfo(url: str) -> tuple[str, RepoCredential | None]:
    """``https://user:token@host/r`` → (``https://host/r``, a credential for it). Other URLs unchanged.

    Users do paste tokens into ``repoURL``; git then never sees them on its command line.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None
    if parts.scheme.lower() != "https" or "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return bare, RepoCredential(url_prefix=giturl.normalise_url(bare), username=unquote(user),
                                password=unquote(password))


def match_credential(url: str, credentials: Sequence[RepoCredential]) -> RepoCredential | None:
    """The credential with the longest ``url_prefix`` matching ``url`` (normalised on both sides)."""
    norm = giturl.normalise_url(url)
    best: RepoCredential | None = None
    for cred in credentials:
        prefix = giturl.normalise_url(cred.url_prefix) if "://" in cred.url_prefix or "@" in cred.url_prefix \
            else cred.url_prefix
        matches = norm == prefix or norm.startswith(prefix.rstrip("/") + "/")
        if matches and (best is None or len(prefix) > len(best.url_prefix)):
            best = cred
    return best


def ensure_askpass(directory: Path) -> Path:
    """Write the askpass helper once (mode 0700) and return its path."""
    path = directory / "askpass.sh"
    if not path.exists() or path.read_text() != ASKPASS_SCRIPT:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(ASKPASS_SCRIPT)
        tmp.chmod(stat.S_IRWXU)
        tmp.replace(path)
    return path


def git_environment(
    *,
    home: Path,
    askpass: Path,
    credential: RepoCredential | None,
    allow_file: bool,
) -> dict[str, str]:
    """The complete environment of one git process (nothing inherited but ``PATH``)."""
    home.mkdir(parents=True, exist_ok=True)
    protocols = ["https", "ssh"] + (["file"] if allow_file else [])
    config = [
        ("protocol.allow", "never"),
        *((f"protocol.{p}.allow", "always") for p in protocols),
        ("core.hooksPath", os.devnull),
        ("credential.helper", ""),
        ("core.askPass", str(askpass)),
        ("submodule.recurse", "false"),
        ("transfer.fsckObjects", "true"),
    ]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C",
        "LC_ALL": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ALLOW_PROTOCOL": ":".join(protocols),
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_ASKPASS": str(askpass),
        "SSH_ASKPASS": str(askpass),
        "SYNCWARDEN_GIT_USERNAME": "",
        "SYNCWARDEN_GIT_PASSWORD": "",
        "GIT_CONFIG_COUNT": str(len(config)),
    }
    for i, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=30"]
    if credential is not None:
        env["SYNCWARDEN_GIT_USERNAME"] = credential.username
        env["SYNCWARDEN_GIT_PASSWORD"] = credential.password
        if credential.ssh_private_key_file is not None:
            ssh += ["-i", str(credential.ssh_private_key_file), "-o", "IdentitiesOnly=yes"]
        if credential.known_hosts_file is not None:
            ssh += ["-o", f"UserKnownHostsFile={credential.known_hosts_file}"]
    env["GIT_SSH_COMMAND"] = shlex.join(ssh)
    env["GIT_SSH_VARIANT"] = "ssh"
    return env
