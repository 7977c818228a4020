"""Tables of the dispatch service. Every row carries its workspace."""

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import JSONB

from kit.audit import AuditLog
from kit.consumer import processed_table
from kit.crypto import data_keys_table
from kit.outbox import outbox_table

metadata = MetaData()

templates = Table(
    "templates", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("channels", JSONB, nullable=False),   # {channel: fields}
    Column("created_at", DateTime(timezone=True), nullable=False),
)

channel_configs = Table(
    "channel_configs", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("provider", Text, nullable=False),
    Column("config", JSONB, nullable=False),  # masked (channels.masked_config); in full before 0008
    Column("sealed", Text, nullable=True),     # the whole config, JSON sealed by kit.crypto
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

policies = Table(
    "policies", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("policy", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per send: the idempotency record, its outcome and the evidence behind it.
deliveries = Table(
    "deliveries", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("idempotency_key", Text, nullable=False),
    Column("profile_id", Text, nullable=False),
    Column("request", JSONB, nullable=False),      # the send as asked, to resume a deferral
    # SHA-256 of the send as asked (without its key): the same key with another send is refused.
    Column("request_hash", Text, nullable=True),
    Column("status", Text, nullable=False),        # pending deferred sending sent delivered suppressed failed
    # The runner working on it now: every write of a runner is conditional on it, so a
    # runner that was taken over (it looked dead) can no longer send or record anything.
    Column("owner", Text, nullable=False, server_default=""),
    Column("channel", Text, nullable=True),
    Column("provider", Text, nullable=True),
    Column("provider_message_id", Text, nullable=True),
    Column("reason", Text, nullable=False, server_default=""),
    Column("rule", Text, nullable=False, server_default=""),
    Column("deferred_until", DateTime(timezone=True), nullable=True),
    Column("next_allowed_at", DateTime(timezone=True), nullable=True),
    Column("consent", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("attempts", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("template_version", Integer, nullable=True),
    # The original URLs of its tracked links (UTM applied); the index is the link id.
    Column("links", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ux_deliveries_key", "workspace_id", "idempotency_key", unique=True),
    Index("ix_deliveries_profile", "workspace_id", "profile_id", "created_at"),
    Index("ix_deliveries_provider_id", "provider", "provider_message_id"),
    Index("ix_deliveries_deferred", "deferred_until", postgresql_where=text("status = 'deferred'")),
)

inapp_messages = Table(
    "inapp_messages", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("profile_id", Text, nullable=False),
    Column("delivery_id", Text, nullable=False),
    Column("title", Text, nullable=False, server_default=""),
    Column("body", Text, nullable=False),
    Column("url", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("seen", Boolean, nullable=False, server_default=text("false")),
    Index("ix_inapp_unseen", "workspace_id", "profile_id", postgresql_where=text("NOT seen")),
    Index("ix_inapp_profile", "workspace_id", "profile_id"),
)

# One row per recorded click, open, unsubscribe or in-app impression / click: the fact id
# makes recording idempotent. User agent and IP are the evidence behind `machine` and an
# unsubscribe.
engagements = Table(
    "engagements", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),          # the fact id
    Column("delivery_id", Text, nullable=False),
    Column("profile_id", Text, nullable=False),
    Column("kind", Text, nullable=False),          # clicked opened unsubscribed impression inapp_clicked
    Column("link_id", Integer, nullable=True),
    Column("url", Text, nullable=True),
    Column("category", Text, nullable=False, server_default=""),
    Column("machine", Boolean, nullable=False),
    Column("user_agent", Text, nullable=False, server_default=""),
    Column("ip", Text, nullable=False, server_default=""),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_engagements_delivery", "workspace_id", "delivery_id", "at"),
    Index("ix_engagements_profile", "workspace_id", "profile_id"),
)

# Erased people: nothing about them is recorded again (a send under way when they were
# erased, a click on a message they had).
forgotten_profiles = Table(
    "forgotten_profiles", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("profile_id", Text, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

# People merged into another (profile.merged): their inbox and in-app engagement answer for
# the survivor, also for rows written under the merged id after the merge was seen.
merged_profiles = Table(
    "merged_profiles", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("merged_id", Text, primary_key=True),
    Column("survivor_id", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_merged_profiles_survivor", "workspace_id", "survivor_id"),
)

outbox = outbox_table(metadata)
processed = processed_table(metadata)
audit_log = AuditLog(metadata)  # templates, channels, the policy, direct sends, and reads of deliveries by API keys
data_keys = data_keys_table(metadata)
