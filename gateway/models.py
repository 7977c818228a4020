"""The gateway's own tables: what authentication needs (API keys, and the identity secrets
and allowed origins of SDK access), and the audit log of key changes."""

from sqlalchemy import Column, DateTime, ForeignKey, Index, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY

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

# What a workspace lets its SDKs do from browsers and phones; no row means the defaults:
# no identity secret (inbox and engagement answer 401) and no allowed origin.
sdk_settings = Table(
    "sdk_settings", metadata,
    Column("workspace_id", Text, ForeignKey("workspaces.id"), primary_key=True),
    # Secrets the customer's backend signs userIds with; read and written only in
    # gateway/sdk_settings.py (one place to add encryption at rest).
    Column("identity_secret", Text, nullable=True),
    Column("identity_secret_created_at", DateTime(timezone=True), nullable=True),
    Column("previous_identity_secret", Text, nullable=True),  # still accepted until revoked
    Column("previous_identity_secret_created_at", DateTime(timezone=True), nullable=True),
    Column("allowed_origins", ARRAY(Text), nullable=False, server_default="{}"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

audit_log = AuditLog(metadata)  # keys rotated and revoked, workspaces created
