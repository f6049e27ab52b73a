"""Repository URL hygiene: which URLs may reach ``git`` at all, how they are normalised into cache keys, and
how credentials in them are redacted from every message.

Who calls this: the Application parser (syntax is checked when an app is loaded, so a hostile ``repoURL``
is an invalid app, not a failed fetch), :mod:`sync.source` before any git command, and anything that logs
or returns a URL (``redact_url``). It imports no git library, so the model can use it.

Rules (``security-cases.md`` REPO-08, §B.4): only ``https://``, ``ssh://`` and scp-like ``user@host:path``
URLs, plus ``file://`` and absolute local paths when the service enables them; never a transport helper
(``ext::``, ``fd::``), never anything that starts with ``-`` (git would read it as an option), never
whitespace or control characters (option smuggling such as ``https://h/r --upload-pack=x``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["UnsafeRepoURL", "check_allowed", "classify", "normalise_url", "redact_url"]


class UnsafeRepoURL(ValueError):
    """A repository URL that git must never see. The message never contains credentials."""


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/@\s]*@")
_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._~-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^:].*)$")
_TRANSPORT_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


def redact_url(text: str) -> str:
    """Replace the user-info of every URL in ``text`` by ``***`` (``https://***@host/repo``).

    Works on whole messages too (GitPython errors embed the command line), so apply it to anything
    that may contain a URL before it reaches a log, an error, a status or an audit record.
    """
    return _USERINFO.sub(r"\1***@", text)


def classify(url: str) -> str:
    """``https``, ``ssh`` or ``file`` for an acceptable URL; :class:`UnsafeRepoURL` for anything else."""
    if not url:
        raise UnsafeRepoURL("repository URL is empty")
    if _BAD_CHARS.search(url):
        raise UnsafeRepoURL("repository URL must not contain whitespace or control characters")
    if url.startswith("-"):
        raise UnsafeRepoURL("repository URL must not start with '-'")
    if _TRANSPORT_HELPER.match(url):
        raise UnsafeRepoURL("git transport helpers ('<name>::') are not allowed")
    scp = _SCP_LIKE.match(url)
    if scp and "://" not in url:
        if scp.group("path").startswith("-") or scp.group("host").startswith("-"):
            raise UnsafeRepoURL("repository URL must not contain an option-like host or path")
        return "ssh"
    if url.startswith("/"):
        return "file"
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UnsafeRepoURL("repository URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UnsafeRepoURL("file:// URLs must not name a host")
        return "file"
    if scheme not in ("https", "ssh"):
        shown = scheme or "none"
        raise UnsafeRepoURL(f"URL scheme {shown!r} is not allowed (use https://, ssh:// or user@host:path)")
    if not parts.hostname or parts.hostname.startswith("-"):
        raise UnsafeRepoURL("repository URL has no valid host")
    if parts.password is not None:
        # a secret in the URL would be stored in the app spec and returned by every view of it (LEAK-02)
        raise UnsafeRepoURL(
            "repository URL must not carry a password; configure it in sync.repo_credentials instead"
        )
    if parts.path.startswith("/-") or parts.path.startswith("-"):
        raise UnsafeRepoURL("repository URL must not contain an option-like path")
    return scheme


def check_allowed(url: str, *, allow_file_urls: bool) -> str:
    """:func:`classify`, then refuse local repositories unless the service enables them."""
    kind = classify(url)
    if kind == "file" and not allow_file_urls:
        raise UnsafeRepoURL("file:// and local-path repositories are disabled (sync.allow_file_urls)")
    return kind


def normalise_url(url: str) -> str:
    """A canonical form for cache keys and comparisons: no user-info, lower-case scheme and host, scp-like
    URLs written as ``ssh://``, no trailing ``/`` or ``.git``. Two spellings of one repo share a mirror."""
    scp = _SCP_LIKE.match(url)
    if scp and "://" not in url:
        url = f"ssh://{scp.group('host')}/{scp.group('path').lstrip('/')}"
    if url.startswith("/"):
        url = "file://" + url
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.port:
        host = f"{host}:{parts.port}"
    path = parts.path.rstrip("/")
    path = path.removesuffix(".git")
    return f"{parts.scheme.lower()}://{host}{path}"
