"""Errors of the policy store, below ``policy.errors.StoreError``::

    StoreError (policy.errors)
    ├── ConflictError (policy.errors)   optimistic-concurrency clash, or the name already exists
    └── NotFound                        no such project, policy version or token

``api`` maps NotFound to 404 and ConflictError to 409; the CLI exits 2 for both.
"""

from __future__ import annotations

from policy.errors import StoreError

__all__ = ["NotFound"]


class NotFound(StoreError):
    pass
