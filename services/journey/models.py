"""Tables of the journey service. Every row carries its workspace; profile ids are the
profile service's ids as text."""

from sqlalchemy import Column, DateTime, Float, Index, Integer, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from kit.audit import AuditLog
from kit.consumer import processed_table
from kit.outbox import outbox_table

metadata = MetaData()

journeys = Table(
    "journeys", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("status", Text, nullable=False),              # draft | published | paused | archived
    Column("version", Integer, nullable=False),          # latest published version, 0 for a draft
    Column("definition", JSONB, nullable=False),         # the latest definition
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

journey_versions = Table(
    "journey_versions", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("journey_id", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("definition", JSONB, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("workspace_id", Text, nullable=False),
    Column("journey_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("profile_id", Text, nullable=False),
    Column("status", Text, nullable=False),              # active | converted | exited | completed
    Column("node_id", Text, nullable=False),
    Column("variant", Text, nullable=False, server_default=""),
    Column("seq", Integer, nullable=False, server_default="0"),
    Column("wait", JSONB, nullable=True),                # engine.RunState.wait
    Column("awaited_event", Text, nullable=True),        # the event a wait_for_event node waits for
    Column("context", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("entered_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("end_reason", Text, nullable=False, server_default=""),
    # one live run per profile and journey
    Index("ux_runs_live", "workspace_id", "journey_id", "profile_id", unique=True,
          postgresql_where=text("status = 'active'")),
    Index("ix_runs_profile_live", "workspace_id", "profile_id", postgresql_where=text("status = 'active'")),
    Index("ix_runs_entries", "workspace_id", "journey_id", "profile_id", "entered_at"),
)

steps = Table(
    "steps", metadata,
    Column("run_id", UUID(as_uuid=True), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("workspace_id", Text, nullable=False),
    Column("journey_id", Text, nullable=False),
    Column("node_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_steps_journey", "workspace_id", "journey_id", "node_id"),
)

# A run's next moment. Claimed under a lease: a replica that dies holding claims loses
# them when the lease runs out, and another replica takes them.
timers = Table(
    "timers", metadata,
    Column("run_id", UUID(as_uuid=True), primary_key=True),
    Column("workspace_id", Text, nullable=False),
    Column("journey_id", Text, nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("lease_owner", Text, nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Index("ix_timers_due", "due_at"),
)

# The next entry of a date-trait journey per profile (a birthday at 09:00 in their zone).
date_entries = Table(
    "date_entries", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("journey_id", Text, primary_key=True),
    Column("profile_id", Text, primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Index("ix_date_entries_due", "due_at"),
)

# A broadcast occurrence: members of the segment entered at a paced rate, resumable by cursor.
broadcasts = Table(
    "broadcasts", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("journey_id", Text, primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("segment_id", Text, nullable=False),
    Column("rate_per_second", Float, nullable=False),
    Column("cursor", Text, nullable=False, server_default=""),
    Column("entered", Integer, nullable=False, server_default="0"),
    Index("ix_broadcasts_due", "due_at"),
)

# Each profile's traits as the events told them (time zones, dates for date-trait
# triggers and wait-until nodes), with when each was set so a late older change loses.
profiles = Table(
    "profiles", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("profile_id", Text, primary_key=True),
    Column("traits", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("trait_times", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)

# People erased (profile.deleted): their runs were anonymized, and no event or segment change
# that arrives late starts a run for them or keeps their traits again.
erased_profiles = Table(
    "erased_profiles", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("profile_id", Text, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)
processed = processed_table(metadata)
audit_log = AuditLog(metadata)  # journey definitions and lifecycle, and reads of runs by API keys
