"""What each stream entry carries: one dataclass per kind of entry, declared once here and
used by the service that publishes it (`Outbox.event(payload, …)`) and by every service
that reads it (`event.data`). The family (stream) and the entry type come from the class,
so no service spells a stream or a type by hand.

On the wire an entry's `payload` field stays a flat JSON object (`body()`): readers written
against it, dashboards and `XRANGE` in a terminal see the same keys as before. A part of
the type (the delivery status, the segment transition) is not repeated in the body.
Decoding ignores keys it does not know and defaults those it misses, so a publisher may
add a field before its readers know it.
"""

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import ClassVar, Self

# Stream families: each is partitioned by profile (kit.streams.stream_name).
EVENTS = "nudge.events.v1"            # tracking calls, trait and consent changes, merges, erasures
SEGMENTS = "nudge.segments.v1"        # segment.entered / segment.exited
JOURNEYS = "nudge.journeys.v1"        # journey.entered / journey.step / journey.ended
DELIVERIES = "nudge.deliveries.v1"    # delivery.<status>
ENGAGEMENT = "nudge.engagement.v1"    # engagement.<kind>


def label_of(call_type: str, event: str | None, name: str | None) -> str:
    """What rules, journeys and reports call an event: the track event, the page or screen
    name, else the call type. The profile service computes it once and carries it."""
    return event or name or call_type


def _in_type() -> dict:
    """A field spelled in the entry's type (`delivery.sent`), not repeated in its body."""
    return field(metadata={"in_type": True})


class Payload:
    FAMILY: ClassVar[str]
    PREFIX: ClassVar[str]             # the entry type is PREFIX + the in-type field, or PREFIX alone
    TIMES: ClassVar[tuple[str, ...]] = ()  # fields carried as ISO-8601 text

    @property
    def event_type(self) -> str:
        suffix = next((getattr(self, f.name) for f in fields(self) if f.metadata.get("in_type")), "")
        return self.PREFIX + suffix

    def body(self) -> dict:
        out = {}
        for f in fields(self):
            if f.metadata.get("in_type"):
                continue
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if f.name in self.TIMES and value is not None else value
        return out

    @classmethod
    def from_body(cls, event_type: str, body: dict) -> Self:
        values = {}
        for f in fields(cls):
            if f.metadata.get("in_type"):
                values[f.name] = event_type.removeprefix(cls.PREFIX)
            elif f.name in body:
                value = body[f.name]
                values[f.name] = datetime.fromisoformat(value) if f.name in cls.TIMES and value else value
        return cls(**values)


# -- nudge.events.v1, published by the profile service ------------------------------------
@dataclass(frozen=True)
class Tracked(Payload):
    """A stored tracking call (`event.<call type>`): its event id, its label and the call as
    the event log keeps it (Segment's camelCase keys)."""
    FAMILY, PREFIX = EVENTS, "event."
    event_id: str
    label: str
    call: dict

    @property
    def event_type(self) -> str:
        return self.PREFIX + self.call["type"]

    @property
    def properties(self) -> dict:
        return self.call.get("properties") or {}

    def body(self) -> dict:
        return {**self.call, "event_id": self.event_id, "label": self.label}

    @classmethod
    def from_body(cls, event_type: str, body: dict) -> Self:
        # entries published before the label was carried have none: the same rule names them
        call = dict(body)
        event_id, label = call.pop("event_id"), call.pop("label", "")
        return cls(event_id, label or label_of(event_type.removeprefix(cls.PREFIX), call.get("event"), call.get("name")),
                   call)


@dataclass(frozen=True)
class TraitsChanged(Payload):
    FAMILY, PREFIX = EVENTS, "profile.traits_changed"
    traits: dict  # name → new value; None means removed


@dataclass(frozen=True)
class ConsentChanged(Payload):
    FAMILY, PREFIX = EVENTS, "profile.consent_changed"
    consent: dict  # purpose → {"granted", "at", "source"}: only the purposes that changed


@dataclass(frozen=True)
class Merged(Payload):
    """Announced under the survivor's profile id."""
    FAMILY, PREFIX = EVENTS, "profile.merged"
    survivor_id: str
    merged_id: str


@dataclass(frozen=True)
class Erased(Payload):
    """Announced under the erased profile's id."""
    FAMILY, PREFIX = EVENTS, "profile.deleted"


@dataclass(frozen=True)
class Dropped(Payload):
    """Calls not stored (duplicates, rejections by field, replays of erased people's calls)
    for data quality; no profile."""
    FAMILY, PREFIX = EVENTS, "ingest.dropped"
    duplicates: int = 0
    rejected: dict = field(default_factory=dict)
    erased: int = 0


# -- nudge.segments.v1, published by the segment service ----------------------------------
@dataclass(frozen=True)
class MembershipChanged(Payload):
    FAMILY, PREFIX, TIMES = SEGMENTS, "segment.", ("at",)
    transition: str = _in_type()  # entered | exited
    segment_id: str = ""
    segment_version: int = 0
    at: datetime | None = None
    trigger: dict = field(default_factory=dict)  # what changed it: event, traits, timer, merge, …


# -- nudge.journeys.v1, published by the journey service ----------------------------------
ENDINGS = ("converted", "exited", "completed")


@dataclass(frozen=True)
class JourneyStep(Payload):
    """One step of a run: `journey.entered` for its first, `journey.ended` for the kinds in
    ENDINGS, `journey.step` for the others."""
    FAMILY, PREFIX = JOURNEYS, "journey."
    journey_id: str
    version: int
    run_id: str
    node_id: str
    kind: str
    outcome: str = ""
    variant: str = ""
    seq: int = 0
    detail: dict = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        if self.kind == "entered":
            return "journey.entered"
        return "journey.ended" if self.kind in ENDINGS else "journey.step"


# -- nudge.deliveries.v1 and nudge.engagement.v1, published by the dispatch service --------
@dataclass(frozen=True)
class DeliveryOutcome(Payload):
    FAMILY, PREFIX, TIMES = DELIVERIES, "delivery.", ("deferred_until",)
    status: str = _in_type()  # sent | delivered | failed | suppressed | deferred
    delivery_id: str = ""
    channel: str | None = None  # None: decided before any channel was chosen
    provider: str | None = None
    template_id: str = ""
    template_version: int | None = None
    journey_id: str = ""
    journey_version: int = 0
    node_id: str = ""
    variant: str = ""
    advertising: bool = False
    rule: str = ""
    reason: str = ""
    deferred_until: datetime | None = None
    unreachable: list[str] = field(default_factory=list)  # channels with no address for the person


@dataclass(frozen=True)
class Engagement(Payload):
    FAMILY, PREFIX, TIMES = ENGAGEMENT, "engagement.", ("at",)
    kind: str = _in_type()  # clicked | opened | unsubscribed | impression | inapp_clicked
    fact_id: str = ""
    delivery_id: str = ""
    channel: str = ""
    template_id: str = ""
    journey_id: str = ""
    journey_version: int = 0
    node_id: str = ""
    variant: str = ""
    link_id: int | None = None
    url: str | None = None
    utm: dict = field(default_factory=dict)
    machine: bool = False  # a proxy or scanner, not the person
    category: str = ""     # unsubscribe: the channel, or "advertising"
    at: datetime | None = None


_KINDS: tuple[type[Payload], ...] = (Tracked, TraitsChanged, ConsentChanged, Merged, Erased, Dropped,
                                     MembershipChanged, JourneyStep, DeliveryOutcome, Engagement)
_EXACT = {kind.PREFIX: kind for kind in _KINDS if not kind.PREFIX.endswith(".")}
_PREFIXED = {kind.PREFIX: kind for kind in _KINDS if kind.PREFIX.endswith(".")}


def decode(event_type: str, body: dict) -> Payload | None:
    """The payload of an entry, or None for a type no class declares (a newer publisher's)."""
    kind = _EXACT.get(event_type) or _PREFIXED.get(event_type.partition(".")[0] + ".")
    return kind.from_body(event_type, body) if kind else None
