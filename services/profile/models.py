"""Tables of the profile service. Every row carries its workspace."""

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, Identity, Index, LargeBinary, MetaData, Table, Text,
                        func, text)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from kit.audit import AuditLog
from kit.crypto import data_keys_table
from kit.outbox import outbox_table

metadata = MetaData()

profiles = Table(
    "profiles", metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("workspace_id", Text, nullable=False),
    Column("traits", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # trait name → when its value was set (event time), for merge-by-recency
    Column("trait_times", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # purpose → {granted, at, source}
    Column("consent", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=True),
    # set on a profile that was merged away: lookups by its old id find the survivor
    Column("merged_into", UUID(as_uuid=True), nullable=True),
    Index("ix_profiles_merged_into", "workspace_id", "merged_into"),
)

identities = Table(
    "identities", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("type", Text, primary_key=True),
    # email, phone, device_token: the blind index of the value (services/profile/pii.py)
    Column("value", Text, primary_key=True),
    Column("profile_id", UUID(as_uuid=True), primary_key=True),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("sealed", Text, nullable=True),  # the value itself, sealed (kit.crypto), where `value` is its index
    Index("ix_identities_profile", "profile_id"),
    # a userId or anonymousId belongs to exactly one profile
    Index("ux_identities_one_owner", "workspace_id", "type", "value", unique=True,
          postgresql_where=text("type IN ('user_id', 'anonymous_id')")),
)

events = Table(
    "events", metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("workspace_id", Text, nullable=False),
    Column("profile_id", UUID(as_uuid=True), nullable=False),
    Column("message_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("call", JSONB, nullable=False),
    Index("ux_events_message_id", "workspace_id", "message_id", unique=True),
    Index("ix_events_profile_time", "workspace_id", "profile_id", "timestamp", "id"),
)

identity_policies = Table(
    "identity_policies", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("unique_identifiers", ARRAY(Text), nullable=False),
)

audit_log = AuditLog(metadata)  # reads and changes of profiles by API keys

# Every consent change recorded, in the order it was recorded (the profile holds the newest
# per purpose): the history a GDPR export shows. Moves with a merge, goes with an erasure.
consent_history = Table(
    "consent_history", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("workspace_id", Text, nullable=False),
    Column("profile_id", UUID(as_uuid=True), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),       # when the person gave or withdrew it
    Column("source", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False, server_default=""),    # the key or service that recorded it
    Index("ix_consent_history_profile", "workspace_id", "profile_id", "id"),
)

# Tombstones of erased people: a blind index (kit.blind) of each identifier they had, and
# when they were erased. A tracking call naming one, made before that moment, is a replay:
# dropped and counted, never a new profile. No identifier is kept in the clear.
erased_identifiers = Table(
    "erased_identifiers", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("digest", LargeBinary, primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

# Profiles whose consent, recorded before segments read consent, is still to be announced
# (profile.consent_changed) once; filled by migration 0002, emptied at start-up.
consent_announcements = Table(
    "consent_announcements", metadata,
    Column("profile_id", UUID(as_uuid=True), primary_key=True),
    Column("workspace_id", Text, nullable=False),
)

outbox = outbox_table(metadata)
data_keys = data_keys_table(metadata)
