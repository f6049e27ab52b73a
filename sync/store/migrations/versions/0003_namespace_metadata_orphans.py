"""What the last sync applied as managedNamespaceMetadata, and each app's orphaned resources.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sync_operations", sa.Column("namespace_metadata", sa.Text, nullable=True))
    op.add_column("sync_app_status", sa.Column("orphans", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("sync_app_status", "orphans")
    op.drop_column("sync_operations", "namespace_metadata")
