"""Repository URL normalisation and matching for ``sourceRepos`` (reference §1.2).

Called by :mod:`policy.gates` (the source gate) and by anyone who must compare two repository URLs the way
Argo CD does (project updates, credential lookup). Argo CD's ``NormalizeGitURL``:

1. trim surrounding whitespace and lower-case the whole string;
2. an SSH-looking URL without the ``ssh://`` scheme (``user@host:path``, scp-like) gets its **first** ``:``
   replaced by ``/`` and ``ssh://`` prepended;
3. strip one trailing ``.git``;
4. parse with Go's ``net/url`` and re-serialise (which percent-encodes some characters);
5. drop a leading ``ssh://``.

Argo CD turns every URL that step 4 cannot parse into ``""``, so all unparseable URLs match each other and a
negated unparseable pattern denies all of them. Deliberate difference 2: :func:`normalize_repo_url` returns
``None`` instead, and :func:`repo_url_matches` lets an unparseable URL or pattern match nothing but the
identical string.

Step 4 is reproduced by a small port of the parts of Go's ``net/url`` (``Parse`` and ``URL.String``) that can
change a repository URL: control characters, a missing scheme, a colon in the first path segment, invalid
ports, invalid host and user-info characters and bad percent-escapes are parse errors; the path is re-escaped
when it holds characters Go will not leave alone (so ``{`` in a *path* pattern becomes ``%7B``, as in Argo CD).
"""

from __future__ import annotations

import re
from functools import lru_cache

from policy import patterns

__all__ = ["UnparseableURL", "go_url_roundtrip", "normalize_repo_url", "repo_url_matches"]


class UnparseableURL(ValueError):
    """Go's ``url.Parse`` would reject this string."""


_SSH_URL = re.compile(r"^(ssh://)?([^/:]*?)@[^@]+$")
_SCHEME_FIRST = re.compile(r"[A-Za-z]")
_HEX = "0123456789abcdefABCDEF"
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_UNRESERVED_MARK = frozenset("-_.~")
# characters Go's validEncoded() accepts verbatim in an already-escaped path besides the unescaped ones
_PATH_VERBATIM = frozenset("!$&'()*+,;=:@[]%")
# host: sub-delims plus ':' (port), '[' ']' (IPv6) and '<' '>' '"' (Go lets them through)
_HOST_OK = frozenset("!$&'()*+,;=:[]<>\"") | _UNRESERVED_MARK | _ALNUM
_USERINFO_OK = frozenset("-._:~!$&'()*+,;=%@") | _ALNUM


def _path_keeps(c: str) -> bool:
    """Go ``shouldEscape(c, encodePath)`` is false."""
    return c in _ALNUM or c in _UNRESERVED_MARK or c in "$&+,/:;=@"


def _escape(text: str, keeps: frozenset[str] | None = None) -> str:
    out: list[str] = []
    for ch in text:
        ok = (ch in keeps) if keeps is not None else _path_keeps(ch)
        if ok:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)


def _check_escapes(text: str, *, host: bool = False) -> None:
    """Go ``unescape``: every ``%`` needs two hex digits; a host may only escape non-ASCII bytes (or ``%25``)."""
    i = 0
    while i < len(text):
        if text[i] == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) < 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise UnparseableURL(f"invalid URL escape {text[i : i + 3]!r}")
            if host and int(pair, 16) < 0x80 and pair != "25":
                raise UnparseableURL(f"invalid URL escape {text[i : i + 3]!r} in host")
            i += 3
            continue
        if host and ord(text[i]) < 0x80 and text[i] not in _HOST_OK:
            raise UnparseableURL(f"invalid character {text[i]!r} in host name")
        i += 1


def _unescape(text: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%":
            raw.append(int(text[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(text[i].encode("utf-8"))
            i += 1
    return raw.decode("utf-8", "surrogateescape")


def _valid_port(colon_port: str) -> bool:
    digits = colon_port[1:]
    return colon_port == "" or (colon_port.startswith(":") and all(c in "0123456789" for c in digits))


def _parse_host(host: str) -> None:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            raise UnparseableURL("missing ']' in host")
        if not _valid_port(host[end + 1 :]):
            raise UnparseableURL(f"invalid port {host[end + 1 :]!r} after host")
    else:
        colon = host.rfind(":")
        if colon >= 0 and not _valid_port(host[colon:]):
            raise UnparseableURL(f"invalid port {host[colon:]!r} after host")
    _check_escapes(host, host=True)


def _serialise_authority(authority: str) -> str:
    at = authority.rfind("@")
    userinfo, host = (authority[:at], authority[at + 1 :]) if at >= 0 else (None, authority)
    _parse_host(host)
    out = ""
    if userinfo is not None:
        if any(c not in _USERINFO_OK and ord(c) < 0x80 for c in userinfo):
            raise UnparseableURL("invalid userinfo")
        user, colon, password = userinfo.partition(":")
        _check_escapes(user)
        _check_escapes(password)
        keep = frozenset("$&+,;=") | _ALNUM | _UNRESERVED_MARK  # Go encodeUserPassword
        out = _escape(_unescape(user), keep)
        if colon:
            out += ":" + _escape(_unescape(password), keep)
        out += "@"
    return out + _escape(_unescape(host), _HOST_OK - {"%"})


def _serialise_path(path: str) -> str:
    """Go ``URL.EscapedPath``: keep the original when it is validly encoded, else re-escape the decoded path."""
    _check_escapes(path)
    if all(c in _PATH_VERBATIM or _path_keeps(c) for c in path):
        return path
    return _escape(_unescape(path))


def go_url_roundtrip(url: str) -> str:
    """``url.Parse(url).String()`` of Go, or :class:`UnparseableURL`."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise UnparseableURL("invalid control character in URL")
    if url == "*":
        return url
    rest, hash_sign, fragment = url.partition("#")
    scheme = ""
    for i, c in enumerate(rest):
        if _SCHEME_FIRST.match(c):
            continue
        if c.isascii() and (c.isdigit() or c in "+-."):
            if i == 0:
                break
            continue
        if c == ":":
            if i == 0:
                raise UnparseableURL("missing protocol scheme")
            scheme, rest = rest[:i].lower(), rest[i + 1 :]
        break
    query: str | None = None
    if rest.endswith("?") and rest.count("?") == 1:
        rest, query = rest[:-1], ""
    elif "?" in rest:
        rest, _, query = rest.partition("?")
    out = f"{scheme}:" if scheme else ""
    if scheme and not rest.startswith("/"):
        out += rest  # opaque
    else:
        if not scheme and ":" in rest.split("/", 1)[0]:
            raise UnparseableURL("first path segment in URL cannot contain colon")
        authority: str | None = None
        if rest.startswith("//") and (scheme or not rest.startswith("///")):
            authority, slash, tail = rest[2:].partition("/")
            rest = slash + tail
        path = _serialise_path(rest)
        if authority is not None:
            serial = _serialise_authority(authority)
            if serial or path:
                out += "//" + serial
        elif scheme and rest.startswith("/"):
            pass  # Go's OmitHost: "scheme:/path" stays without "//"
        if not out and ":" in path.split("/", 1)[0]:
            out = "./"
        out += path
    if query is not None:
        out += "?" + query
    if hash_sign and fragment:
        _check_escapes(fragment)
        keep = frozenset("$&+,/:;=?@!()*") | _ALNUM | _UNRESERVED_MARK  # Go encodeFragment
        if not all(c in keep or c in _PATH_VERBATIM for c in fragment):
            fragment = _escape(_unescape(fragment), keep)
        out += "#" + fragment
    return out


@lru_cache(maxsize=8192)
def normalize_repo_url(url: str) -> str | None:
    """Argo CD's ``NormalizeGitURL``, except that an unparseable URL gives ``None`` (not ``""``)."""
    repo = url.strip().lower()
    if _SSH_URL.match(repo) and not repo.startswith("ssh://"):
        repo = "ssh://" + repo.replace(":", "/", 1)
    repo = repo.removesuffix(".git")
    try:
        serial = go_url_roundtrip(repo)
    except UnparseableURL:
        return None
    return serial.removeprefix("ssh://")


def repo_url_matches(pattern: str, url: str) -> bool:
    """Does the (non-negated) ``sourceRepos`` pattern match ``url``? Dialect G/ on the normalised forms.

    ``*`` matches every parseable URL. When either side cannot be parsed, only the identical string matches
    (difference 2: not even ``*`` matches an unparseable URL, so a URL nothing can interpret never passes a
    project by accident).
    """
    norm_url = normalize_repo_url(url)
    norm_pattern = normalize_repo_url(pattern)
    if norm_pattern is None or norm_url is None:
        return pattern == url
    return patterns.repo_glob_match(norm_pattern, norm_url)
