"""Tables of the segment service. Every row carries its workspace; profile ids are the
profile service's ids as text."""

from sqlalchemy import (Column, DateTime, Index, Integer, MetaData, Table, Text, text)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from kit.audit import AuditLog
from kit.consumer import processed_table
from kit.outbox import outbox_table

metadata = MetaData()

segments = Table(
    "segments", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("rules", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The backfill of the current version over every known profile, resumable by cursor.
    Column("backfill_state", Text, nullable=False),           # running | done
    Column("backfill_done", Integer, nullable=False, server_default="0"),
    Column("backfill_total", Integer, nullable=False, server_default="0"),
    Column("backfill_cursor", Text, nullable=False, server_default=""),
    Column("backfill_started_at", DateTime(timezone=True), nullable=False),
    Column("backfill_finished_at", DateTime(timezone=True), nullable=True),
    Index("ix_segments_backfill", "backfill_state", postgresql_where=text("backfill_state = 'running'")),
)

# Per profile: the traits and the aggregates the active rules need. `series` maps a series
# digest to the profile's matching events {"t": [epoch s], "v": [value], "i": [event id]};
# a digest missing here has not been computed for this profile yet and is built from `events`.
profiles = Table(
    "profiles", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("profile_id", Text, primary_key=True),
    Column("traits", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("last_seen", DateTime(timezone=True), nullable=True),
    Column("series", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # when each trait was set (the profile service's time), so a late, older change loses
    Column("trait_times", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # purpose → {"granted", "at"}: the profile service's consent, for consent conditions
    Column("consent", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # set once merged away: later events for the old id count for the survivor
    Column("merged_into", Text, nullable=True),
    # set once erased: the row stays as a tombstone so late events for it are dropped
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    Index("ix_profiles_merged_into", "workspace_id", "merged_into",
          postgresql_where=text("merged_into IS NOT NULL")),
)

# The history that new and edited segments are computed from (each profile's events).
events = Table(
    "events", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("profile_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("properties", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_events_profile_name", "workspace_id", "profile_id", "name", "at"),
    Index("ix_events_name", "workspace_id", "name"),
)

memberships = Table(
    "memberships", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("segment_id", Text, primary_key=True),
    Column("profile_id", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
    Index("ix_memberships_profile", "workspace_id", "profile_id"),
)

# The next moment a membership can flip with no new event; claimed by any replica.
timers = Table(
    "timers", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("segment_id", Text, primary_key=True),
    Column("profile_id", Text, primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Index("ix_timers_due", "due_at"),
    Index("ix_timers_profile", "workspace_id", "profile_id"),
)

rfm_settings = Table(
    "rfm_settings", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("order_event", Text, nullable=False),
    Column("revenue_property", Text, nullable=False),
    # quintile edges {"r": [days…], "f": [orders…], "m": [revenue…]} and when they were computed
    Column("edges", JSONB, nullable=True),
    Column("edges_at", DateTime(timezone=True), nullable=True),
)

outbox = outbox_table(metadata)
processed = processed_table(metadata)
audit_log = AuditLog(metadata)  # segment definitions, settings and reads of members and explanations by API keys
