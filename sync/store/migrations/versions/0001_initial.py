"""Initial sync tables: apps, status, operations, history, auto-sync bookkeeping, refresh requests.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _key() -> list[sa.Column[str]]:
    return [
        sa.Column("namespace", sa.String(253), primary_key=True),
        sa.Column("name", sa.String(253), primary_key=True),
    ]


def upgrade() -> None:
    op.create_table(
        "sync_apps",
        *_key(),
        sa.Column("project", sa.String(253), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("deleting_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_sync_apps_project", "sync_apps", ["project"])
    op.create_table(
        "sync_app_status",
        *_key(),
        sa.Column("sync_status", sa.String(32), nullable=False),
        sa.Column("health_status", sa.String(32), nullable=False),
        sa.Column("health_message", sa.Text, nullable=False),
        sa.Column("revisions", sa.Text, nullable=False),
        sa.Column("resources", sa.Text, nullable=False),
        sa.Column("conditions", sa.Text, nullable=False),
        sa.Column("compared_to", sa.String(64), nullable=False),
        sa.Column("reconciled_at", sa.BigInteger, nullable=True),
        sa.Column("next_poll_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "sync_operations",
        *_key(),
        sa.Column("op_id", sa.String(32), nullable=False),
        sa.Column("request", sa.Text, nullable=True),
        sa.Column("state", sa.Text, nullable=True),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sync_history",
        *_key(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("revisions", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
        sa.Column("deploy_started_at", sa.BigInteger, nullable=False),
        sa.Column("deployed_at", sa.BigInteger, nullable=False),
        sa.Column("initiated_by", sa.Text, nullable=False),
    )
    op.create_table(
        "sync_autosync",
        *_key(),
        sa.Column("revisions", sa.Text, nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("attempted_at", sa.BigInteger, nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("self_heal_attempts", sa.Integer, nullable=False),
        sa.Column("last_finished_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "sync_refresh_requests",
        *_key(),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.BigInteger, nullable=False),
        sa.Column("requested_by", sa.String(512), nullable=False),
    )


def downgrade() -> None:
    for name in ("sync_refresh_requests", "sync_autosync", "sync_history", "sync_operations", "sync_app_status"):
        op.drop_table(name)
    op.drop_index("ix_sync_apps_project", "sync_apps")
    op.drop_table("sync_apps")
