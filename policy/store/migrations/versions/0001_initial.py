"""Initial policy tables: projects, RBAC policy versions, token registry, audit chain.

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

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "policy_projects",
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(512), nullable=False),
    )
    op.create_table(
        "policy_rbac",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("policy_csv", sa.Text, nullable=False),
        sa.Column("default_role", sa.String(512), nullable=True),
        sa.Column("match_mode", sa.String(16), nullable=False),
        sa.Column("author", sa.String(512), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
    )
    op.create_table(
        "policy_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(253), nullable=False),
        sa.Column("project_uid", sa.String(32), nullable=False),
        sa.Column("role", sa.String(253), nullable=False),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("issued_by", sa.String(512), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.Column("last_used_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_policy_tokens_project_role", "policy_tokens", ["project", "role"])
    op.create_table(
        "audit_records",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("token_id", sa.String(64), nullable=False),
        sa.Column("client", sa.String(128), nullable=False),
        sa.Column("project", sa.String(253), nullable=False),
        sa.Column("app", sa.String(253), nullable=False),
        sa.Column("object", sa.String(1024), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("violations", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    for name, columns in (
        ("ix_audit_time_seq", ["time_us", "seq"]),
        ("ix_audit_project_seq", ["project", "seq"]),
        ("ix_audit_app_seq", ["app", "seq"]),
        ("ix_audit_subject_seq", ["subject", "seq"]),
        ("ix_audit_action_seq", ["action", "seq"]),
        ("ix_audit_result_seq", ["result", "seq"]),
        ("ix_audit_request_seq", ["request_id", "seq"]),
    ):
        op.create_index(name, "audit_records", columns)
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "audit_anchor",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    op.execute(sa.text("INSERT INTO audit_head (id, seq, hash, time_us) VALUES (1, 0, :h, 0)").bindparams(h="0" * 64))


def downgrade() -> None:
    for table in ("audit_anchor", "audit_head", "audit_records", "policy_tokens", "policy_rbac", "policy_projects"):
        op.drop_table(table)
