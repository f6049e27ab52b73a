"""The policy package's tables (SQLAlchemy Core). Migrations in ``migrations/versions`` create them;
``tests/policy/test_store_schema.py`` checks that the migrated schema matches this metadata.

Times are integer microseconds since the epoch (UTC) in every table: exact, portable between SQLite and
PostgreSQL, and what the audit hash covers. References to other packages (apps) are by name only: no
foreign keys to ``sync`` tables, so each package migrates on its own.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "audit_anchor",
    "audit_head",
    "audit_records",
    "metadata",
    "projects",
    "rbac_policies",
    "tokens",
]

metadata = sa.MetaData()

# On SQLite a 64-bit integer key must be spelled INTEGER to be the rowid (no second index).
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

projects = sa.Table(
    "policy_projects",
    metadata,
    sa.Column("name", sa.String(253), primary_key=True),
    #: random per creation: a project deleted and created again is a different project (tokens die)
    sa.Column("uid", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    #: the AppProject manifest as given (JSON), so it round-trips exactly
    sa.Column("manifest", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.String(512), nullable=False),
)

rbac_policies = sa.Table(
    "policy_rbac",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("policy_csv", sa.Text, nullable=False),
    sa.Column("default_role", sa.String(512), nullable=True),
    sa.Column("match_mode", sa.String(16), nullable=False),
    sa.Column("author", sa.String(512), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
)

tokens = sa.Table(
    "policy_tokens",
    metadata,
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
    sa.Index("ix_policy_tokens_project_role", "project", "role"),
)

audit_records = sa.Table(
    "audit_records",
    metadata,
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
    # Each filter walks its own (column, seq) index in seq order, so keyset pages stay cheap at 1M rows.
    sa.Index("ix_audit_time_seq", "time_us", "seq"),
    sa.Index("ix_audit_project_seq", "project", "seq"),
    sa.Index("ix_audit_app_seq", "app", "seq"),
    sa.Index("ix_audit_subject_seq", "subject", "seq"),
    sa.Index("ix_audit_action_seq", "action", "seq"),
    sa.Index("ix_audit_result_seq", "result", "seq"),
    sa.Index("ix_audit_request_seq", "request_id", "seq"),
)

#: one row (id 1): the last seq and hash. Writers lock it (FOR UPDATE) so replicas extend one chain.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("time_us", sa.BigInteger, nullable=False),
)

#: one row (id 1) after retention: the signed anchor (first kept seq, its prev_hash)
audit_anchor = sa.Table(
    "audit_anchor",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
)
