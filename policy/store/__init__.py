"""Durable policy state: projects, the RBAC policy, project tokens and the audit chain.

SQLAlchemy and Alembic live only in this package (import-linter). ``api`` opens one :class:`Store` per
process with :func:`open_store` and hands its parts to the routes; the CLI does the same for the local
database. Modules:

* ``db``: engine factory (SQLite WAL / PostgreSQL via psycopg 3) and migrations;
* ``tables``: the schema; ``migrations/``: Alembic revisions (version table ``alembic_version_policy``);
* ``projects``, ``rbac_policies``, ``tokens``: the stores, each write committed with its audit record;
* ``audit`` (writer, checkpoints, retention) and ``audit_read`` (query, export, verify).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from policy import tokens as token_crypto
from policy.store import db
from policy.store.audit import AuditLog
from policy.store.errors import NotFound
from policy.store.projects import ProjectStore, StoredProject
from policy.store.rbac_policies import LivePolicy, RbacPolicyStore, StoredPolicy
from policy.store.tokens import IssuedToken, Principal, TokenInfo, TokenRegistry

__all__ = [
    "AuditLog",
    "IssuedToken",
    "LivePolicy",
    "NotFound",
    "Principal",
    "ProjectStore",
    "RbacPolicyStore",
    "Store",
    "StoredPolicy",
    "StoredProject",
    "TokenInfo",
    "TokenRegistry",
    "open_store",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Store:
    engine: Engine
    keyring: token_crypto.KeyRing
    projects: ProjectStore
    rbac: RbacPolicyStore
    tokens: TokenRegistry
    audit: AuditLog

    def close(self) -> None:
        """Flush coalesced token use, drain the audit writer, release connections."""
        try:
            self.tokens.flush_last_used()
        except SQLAlchemyError as exc:  # losing a last-used time is acceptable; the rest must still close
            log.warning("token last-used times not saved: %s", type(exc).__name__)
        finally:
            self.audit.close()
            self.engine.dispose()


def open_store(
    url: str,
    *,
    keyring: token_crypto.KeyRing,
    issuer: str = "syncwarden",
    audience: str = "syncwarden",
    pool_size: int = 5,
    migrate: bool = True,
    last_used_interval: float = 60.0,
    verify_cache_seconds: float = 0.0,
) -> Store:
    """Connect, migrate (unless ``migrate=False``) and build the stores. ``verify_cache_seconds``: how long a
    verified project token may be answered from memory (:mod:`policy.store.token_cache`; 0 = every time)."""
    engine = db.create_engine(url, pool_size=pool_size)
    if migrate:
        db.migrate(engine)
    projects = ProjectStore(engine)
    return Store(
        engine=engine,
        keyring=keyring,
        projects=projects,
        rbac=RbacPolicyStore(engine),
        tokens=TokenRegistry(
            engine,
            keyring=keyring,
            issuer=issuer,
            audience=audience,
            projects=projects,
            last_used_interval=last_used_interval,
            verify_cache_seconds=verify_cache_seconds,
        ),
        audit=AuditLog(engine),
    )
