"""The gateway's own tables: what authentication needs, and the audit log of key changes."""

from sqlalchemy import Column, DateTime, ForeignKey, Index, MetaData, Table, Text, func

from kit.audit import AuditLog

metadata = MetaData()

workspaces = Table(
    "workspaces", metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

api_keys = Table(
    "api_keys", metadata,
    # public id, shown in the audit log; the secret itself is never stored
    Column("id", Text, primary_key=True),
    Column("workspace_id", Text, ForeignKey("workspaces.id"), nullable=False),
    Column("kind", Text, nullable=False),  # write | admin
    Column("hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ux_api_keys_hash", "hash", unique=True),
    Index("ix_api_keys_workspace", "workspace_id"),
)

audit_log = AuditLog(metadata)  # keys rotated and revoked, workspaces created
