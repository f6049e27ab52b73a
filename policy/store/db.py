"""Engine factory and schema migration for the policy store.

Called by :func:`policy.store.open_store` (and so by ``api`` at startup and by the CLI). The embedded
default is a SQLite file in WAL mode: readers never block the writer, ``busy_timeout`` makes concurrent
writers (the audit writer thread, the CLI in another process) wait instead of failing, ``foreign_keys`` is
switched on, and ``synchronous=FULL`` keeps a committed audit record on disk even after a power loss; the page cache
and the WAL checkpoint interval are raised for the audit writer's scattered index writes.
Write transactions on SQLite start with ``BEGIN IMMEDIATE`` (execution option ``sqlite_begin``) so that
two writers never deadlock upgrading a read lock. PostgreSQL is reached through psycopg 3.

Migrations are Alembic's, run programmatically, recorded in their own version table
(:data:`VERSION_TABLE`) so that ``sync.store`` can keep its own migration history in the same database.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = ["BUSY_TIMEOUT_MS", "VERSION_TABLE", "create_engine", "is_sqlite", "migrate", "write_connection"]

VERSION_TABLE = "alembic_version_policy"
#: how long a SQLite writer waits for the lock before giving up (the audit writer retries its batch)
BUSY_TIMEOUT_MS = 30_000
#: SQLite page cache per connection, in KiB (the default is 2 MiB)
CACHE_KIB = 32 * 1024
#: bytes of the database file read through mmap (0 would mean pread per page)
MMAP_BYTES = 1024 * 1024 * 1024
#: SQLite connections kept open (in-process file handles, not server slots)
SQLITE_MIN_POOL = 16
#: WAL pages before an automatic checkpoint (the default is 1,000)
WAL_CHECKPOINT_PAGES = 10_000


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 (the only PostgreSQL driver we ship)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for ``url`` with the pragmas and pool settings above. Creates a SQLite file's directory."""
    url = normalise_url(url)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # The API's worker threads each hold a connection for a moment: a pool smaller than their number
        # would open (and run the pragmas on) a new connection for every request beyond it.
        pool: dict[str, Any] = {}
        if database and database != ":memory:":
            pool = {"pool_size": max(pool_size, SQLITE_MIN_POOL), "max_overflow": SQLITE_MIN_POOL}
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
                                  **pool)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun by _sqlite_on_begin, not by the driver's implicit BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        # The audit indexes take scattered page writes: a larger page cache and fewer WAL checkpoints
        # (every ~40 MB instead of ~4 MB) halve the writer's I/O per batch at a million records.
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        # Reads through a memory map instead of one pread per page: audit queries touch scattered rows.
        cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    if mode not in ("DEFERRED", "IMMEDIATE"):
        raise ValueError(f"bad sqlite_begin option {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def write_connection(engine: Engine) -> sa.Connection:
    """A connection whose transactions take the write lock at once on SQLite (no upgrade deadlocks)."""
    conn = engine.connect()
    if is_sqlite(engine):
        conn.execution_options(sqlite_begin="IMMEDIATE")
    return conn


def migrate(engine: Engine) -> None:
    """Bring the policy tables to the newest revision (idempotent; safe to call at every start)."""
    script_location = str(resources.files("policy.store") / "migrations")
    config = Config()
    config.set_main_option("script_location", script_location)
    config.set_main_option("version_table", VERSION_TABLE)
    with write_connection(engine) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()
