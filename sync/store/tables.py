"""The sync package's tables (SQLAlchemy Core); ``migrations/versions`` creates them and a test checks that
the migrated schema matches this metadata.

An app is keyed by (namespace, name), Argo CD's identity. Its project is a plain string: no foreign keys to
policy tables, so each package migrates on its own. Times are integer microseconds since the epoch (UTC).
JSON documents (spec, resources, conditions, operation state) are stored as text so they round-trip exactly
on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["app_leases", "apps", "autosync", "history", "metadata", "operations", "refresh_requests", "replicas",
           "status"]

metadata = sa.MetaData()


def _key() -> list[sa.Column[str]]:
    return [
        sa.Column("namespace", sa.String(253), primary_key=True),
        sa.Column("name", sa.String(253), primary_key=True),
    ]


apps = sa.Table(
    "sync_apps",
    metadata,
    *_key(),
    sa.Column("project", sa.String(253), nullable=False),
    #: the Application manifest (Argo CD shape) as JSON
    sa.Column("spec", sa.Text, nullable=False),
    #: optimistic concurrency: every update must name the version it read
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    #: Argo CD's deletionTimestamp: set by delete, the reconciler finalises and then removes the row
    sa.Column("deleting_at", sa.BigInteger, nullable=True),
    sa.Index("ix_sync_apps_project", "project"),
)

status = sa.Table(
    "sync_app_status",
    metadata,
    *_key(),
    sa.Column("sync_status", sa.String(32), nullable=False),
    sa.Column("health_status", sa.String(32), nullable=False),
    sa.Column("health_message", sa.Text, nullable=False),
    #: resolved commit per source, JSON list (what was compared)
    sa.Column("revisions", sa.Text, nullable=False),
    sa.Column("resources", sa.Text, nullable=False),
    sa.Column("conditions", sa.Text, nullable=False),
    #: hash of the spec parts a comparison depends on (Argo CD's comparedTo)
    sa.Column("compared_to", sa.String(64), nullable=False),
    sa.Column("reconciled_at", sa.BigInteger, nullable=True),
    #: when the next periodic comparison is due (reconciled_at + interval + jitter)
    sa.Column("next_poll_at", sa.BigInteger, nullable=True),
    #: JSON list of the orphaned resources found in the destination namespace; NULL when the app's project
    #: does not monitor orphaned resources
    sa.Column("orphans", sa.Text, nullable=True),
)

operations = sa.Table(
    "sync_operations",
    metadata,
    *_key(),
    #: id of the current (or last) operation; a new operation gets a new id
    sa.Column("op_id", sa.String(32), nullable=False),
    #: the requested operation (Argo CD's ``operation`` field) while it is pending or running, else NULL
    sa.Column("request", sa.Text, nullable=True),
    #: the operation state after the last tick (Argo CD's ``status.operationState``)
    sa.Column("state", sa.Text, nullable=True),
    sa.Column("phase", sa.String(32), nullable=False),
    #: bumped by every write, so two writers never silently overwrite each other
    sa.Column("version", sa.Integer, nullable=False),
    #: which reconciler is ticking it, until when (so two replicas never tick one operation at once)
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.BigInteger, nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    #: JSON of the managedNamespaceMetadata the last sync that applied one applied (kept across operations:
    #: starting an operation clears ``state``, not this); NULL when none ever was
    sa.Column("namespace_metadata", sa.Text, nullable=True),
)

history = sa.Table(
    "sync_history",
    metadata,
    *_key(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("revisions", sa.Text, nullable=False),
    sa.Column("sources", sa.Text, nullable=False),
    sa.Column("deploy_started_at", sa.BigInteger, nullable=False),
    sa.Column("deployed_at", sa.BigInteger, nullable=False),
    sa.Column("initiated_by", sa.Text, nullable=False),
)

autosync = sa.Table(
    "sync_autosync",
    metadata,
    *_key(),
    #: the (resolved revisions, spec hash) of the last automated attempt, for the "already attempted" rule
    sa.Column("revisions", sa.Text, nullable=False),
    sa.Column("spec_hash", sa.String(64), nullable=False),
    sa.Column("attempted_at", sa.BigInteger, nullable=False),
    sa.Column("phase", sa.String(32), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    #: self-heal attempts against this combination (reset by any other operation) and when the last ended
    sa.Column("self_heal_attempts", sa.Integer, nullable=False),
    sa.Column("last_finished_at", sa.BigInteger, nullable=True),
)

refresh_requests = sa.Table(
    "sync_refresh_requests",
    metadata,
    *_key(),
    sa.Column("level", sa.String(16), nullable=False),  # "normal" | "hard"
    sa.Column("requested_at", sa.BigInteger, nullable=False),
    sa.Column("requested_by", sa.String(512), nullable=False),
)

#: one row per running ``serve`` replica, renewed every reconcile pass (``sync.leases``): the live replicas
#: divide the apps between them
replicas = sa.Table(
    "sync_replicas",
    metadata,
    sa.Column("owner", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
)

#: which replica reconciles an app, until when; a lease not renewed by then may be taken over
app_leases = sa.Table(
    "sync_app_leases",
    metadata,
    *_key(),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("ix_sync_app_leases_owner", "owner"),
)
