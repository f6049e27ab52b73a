"""Engine factory and schema migration for the sync store (apps, status, operations, history).

Called by :func:`sync.store.open_app_store` (so by ``api`` at startup and by the CLI in local mode). The
sync tables live in the same database as the policy store but ``sync`` must not import ``policy``
(import-linter), so the few lines of engine setup are duplicated from ``policy.store.db`` on purpose: SQLite
in WAL mode with a busy timeout (the reconciler and the CLI in another process write concurrently), write
transactions that start with ``BEGIN IMMEDIATE`` (no read-to-write lock upgrade deadlocks), psycopg 3 for
PostgreSQL. Migrations are Alembic's, run programmatically, with their own version table
(:data:`VERSION_TABLE`) so each package migrates on its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = ["VERSION_TABLE", "create_engine", "from_micros", "micros", "migrate", "write_connection"]

VERSION_TABLE = "alembic_version_sync"
#: how long a SQLite writer waits for the lock before failing (the reconciler retries on its next pass)
BUSY_TIMEOUT_MS = 30_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime) -> int:
    """Integer microseconds since the epoch (UTC): exact and portable between SQLite and PostgreSQL."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _normalise_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for ``url`` (``sqlite:///file`` or ``postgresql://``); creates a SQLite file's directory."""
    url = _normalise_url(url)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun by _sqlite_on_begin
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    if mode not in ("DEFERRED", "IMMEDIATE"):
        raise ValueError(f"bad sqlite_begin option {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def write_connection(engine: Engine) -> sa.Connection:
    """A connection whose transactions take the write lock at once on SQLite."""
    conn = engine.connect()
    if engine.dialect.name == "sqlite":
        conn.execution_options(sqlite_begin="IMMEDIATE")
    return conn


def migrate(engine: Engine) -> None:
    """Bring the sync tables to the newest revision (idempotent; safe at every start)."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("sync.store") / "migrations"))
    config.set_main_option("version_table", VERSION_TABLE)
    with write_connection(engine) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()
