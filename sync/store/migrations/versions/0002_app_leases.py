"""App leases and replica heartbeats: several ``syncwarden serve`` replicas share the apps of one database.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_replicas",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sync_app_leases",
        sa.Column("namespace", sa.String(253), primary_key=True),
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sync_app_leases_owner", "sync_app_leases", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_sync_app_leases_owner", table_name="sync_app_leases")
    op.drop_table("sync_app_leases")
    op.drop_table("sync_replicas")
