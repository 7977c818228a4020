"""Tables of the metrics service: one row per fact, the attribution of each order to the
last message before it, and each workspace's settings."""

from sqlalchemy import Boolean, Column, Date, DateTime, Float, Index, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from kit.audit import AuditLog
from kit.consumer import processed_table

metadata = MetaData()

# A fact is one thing that happened, keyed by the id of the stream event that told it, so a
# replayed event adds nothing. Dimensions a fact lacks are "" (0 for the version).
facts = Table(
    "facts", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("kind", Text, nullable=False),       # sent, delivered, opened, clicked, entered, step, order, …
    Column("at", DateTime(timezone=True), nullable=False),
    Column("day", Date, nullable=False),         # in the workspace's zone
    Column("profile_id", Text, nullable=False, server_default=""),
    Column("journey_id", Text, nullable=False, server_default=""),
    Column("journey_version", Integer, nullable=False, server_default="0"),
    Column("node_id", Text, nullable=False, server_default=""),
    Column("variant", Text, nullable=False, server_default=""),
    Column("channel", Text, nullable=False, server_default=""),
    Column("template_id", Text, nullable=False, server_default=""),
    Column("delivery_id", Text, nullable=False, server_default=""),
    Column("run_id", Text, nullable=False, server_default=""),
    Column("reason", Text, nullable=False, server_default=""),
    Column("revenue", Float, nullable=False, server_default="0"),
    Column("machine", Boolean, nullable=False, server_default="false"),
    Column("lag_seconds", Float, nullable=True),  # events: event time → received
    Column("detail", JSONB(none_as_null=True), nullable=True),  # utm of clicks, dropped calls, unreachable
    Index("ix_facts_journey", "workspace_id", "journey_id", "kind"),
    Index("ix_facts_delivery", "workspace_id", "delivery_id"),
    Index("ix_facts_profile", "workspace_id", "profile_id", "kind", "at"),
    Index("ix_facts_day", "workspace_id", "kind", "day"),
)

# Each order, attributed to the last message the person was sent within the window before
# it. Recomputed when either side arrives, so the order the streams deliver them in does
# not matter.
attributions = Table(
    "attributions", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("profile_id", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("day", Date, nullable=False),
    Column("revenue", Float, nullable=False),
    Column("delivery_id", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("journey_id", Text, nullable=False),
    Column("journey_version", Integer, nullable=False),
    Column("node_id", Text, nullable=False),
    Column("variant", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("template_id", Text, nullable=False),
    Index("ix_attributions_journey", "workspace_id", "journey_id"),
)

# Where a merged or erased profile's facts went ("" for erased), so a fact that arrives
# later, on another stream, lands there too. Chains are kept resolved: a row's target is
# never itself moved.
profile_moves = Table(
    "profile_moves", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("profile_id", Text, primary_key=True),
    Column("target", Text, nullable=False),
    Index("ix_profile_moves_target", "workspace_id", "target"),
)

settings = Table(
    "settings", metadata,
    Column("workspace_id", Text, primary_key=True),
    Column("order_event", Text, nullable=False),
    Column("revenue_property", Text, nullable=False),
    Column("attribution_window_seconds", Integer, nullable=False),
)

processed = processed_table(metadata)
audit_log = AuditLog(metadata)  # settings, and reads of a person's value by API keys
