"""Alembic environment for the sync tables, driven by :func:`sync.store.db.migrate`.

Online only, on the connection ``migrate`` passes in ``config.attributes``; the version table is
``alembic_version_sync`` so the policy package's migrations share the database without clashing.
"""

from __future__ import annotations

from alembic import context

from sync.store import tables

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable when alembic's CLI is pointed here by hand
    raise RuntimeError("run sync migrations through sync.store.db.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=tables.metadata,
    version_table=config.get_main_option("version_table") or "alembic_version_sync",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
