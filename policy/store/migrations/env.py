"""Alembic environment for the policy tables, driven by :func:`policy.store.db.migrate`.

Runs online only, on the connection that ``migrate`` passes in ``config.attributes``; the version table is
``alembic_version_policy`` so other packages' migrations can share the database.
"""

from __future__ import annotations

from alembic import context

from policy.store import tables

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable when alembic's CLI is pointed here by hand
    raise RuntimeError("run policy migrations through policy.store.db.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=tables.metadata,
    version_table=config.get_main_option("version_table") or "alembic_version_policy",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
