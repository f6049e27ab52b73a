"""Masking secrets in data that is about to be recorded or shown: audit details, error context, diffs.

Pure. :mod:`policy.audit` applies it to every event it builds; ``api`` may use it for error bodies.
What is masked (the key is kept, the value becomes :data:`MASK`):

* a mapping key naming a secret (``password``, ``token``, ``secret``, ``authorization``, ``credential``,
  ``cookie``, ``apikey``, or ending in ``key``/``keys``), compared without case, ``-``, ``_`` or ``.``;
* the values under ``data`` and ``stringData`` of a mapping with ``kind: Secret`` (key names kept);
* in any string: ``user:password@`` in URLs, ``Bearer``/``Basic`` credentials and JWT-shaped strings.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MASK", "redact", "redact_text"]

MASK = "***"

# Key names whose values are secrets, compared after lower-casing and removing '-', '_' and '.'.
_SECRET_WORDS = ("password", "passwd", "secret", "token", "authorization", "credential", "cookie", "apikey")
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@\s:]*):[^/@\s]*@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


#: cheap pre-check: text without any of these cannot match the three patterns above, so it is returned as
#: it is (one scan instead of three substitutions on the common, clean, string)
_MAYBE_SECRET = re.compile(r"@|eyJ|(?i:bearer|basic)")


@functools.lru_cache(maxsize=4096)
def _secret_key(name: str) -> bool:
    norm = re.sub(r"[-_.]", "", name.lower())
    return norm.endswith("key") or norm.endswith("keys") or any(word in norm for word in _SECRET_WORDS)


def redact_text(text: str) -> str:
    """Mask ``user:password@`` in URLs, bearer/basic credentials and JWT-shaped strings in free text."""
    if not text or _MAYBE_SECRET.search(text) is None:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _JWT.sub(MASK, text)


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like data) with secrets masked. Never mutates its input.

    * a mapping key that names a secret (password, token, secret, authorization, credential, ...key)
      keeps its key and gets :data:`MASK` as its value;
    * a mapping with ``kind: Secret`` keeps the key names of ``data``/``stringData`` and masks the values;
    * strings are passed through :func:`redact_text`.
    """
    if isinstance(value, Mapping):
        is_secret_object = value.get("kind") == "Secret"
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            if is_secret_object and name in ("data", "stringData") and isinstance(item, Mapping):
                out[name] = {str(k): MASK for k in item}
            elif _secret_key(name) and item is not None and not isinstance(item, bool):
                out[name] = MASK
            else:
                out[name] = redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value))
