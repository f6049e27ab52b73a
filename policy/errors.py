"""Errors of the policy package. A *deny* is never an exception (it is a ``Decision``); these are for input
that cannot be accepted at all.

    PolicyError
    ├── InvalidProject        an AppProject that fails validation; ``field`` is the path
    │                         (e.g. spec.destinations[1].server)
    │   └── InvalidWindow     a sync window that fails validation (difference 5)
    ├── InvalidPolicy         RBAC policy text that fails validation; ``line`` is the 1-based line number
    └── StoreError            persistence failures (policy.store); ConflictError for optimistic-concurrency clashes
        └── ConflictError
"""

from __future__ import annotations

__all__ = ["ConflictError", "InvalidPolicy", "InvalidProject", "InvalidWindow", "PolicyError", "StoreError"]


class PolicyError(Exception):
    """Base of every error raised by the policy package."""


class InvalidProject(PolicyError):
    def __init__(self, field: str, message: str, *, source: str = "") -> None:
        self.field = field
        self.detail = message
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{field}: {message}" if field else f"{prefix}{message}")


class InvalidWindow(InvalidProject):
    pass


class InvalidPolicy(PolicyError):
    def __init__(self, message: str, *, line: int | None = None, source: str = "") -> None:
        self.line = line
        self.detail = message
        self.source = source
        where = source or "policy"
        if line is not None:
            where += f" line {line}"
        super().__init__(f"{where}: {message}")


class StoreError(PolicyError):
    pass


class ConflictError(StoreError):
    pass
