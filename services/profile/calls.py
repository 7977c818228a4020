"""Tracking calls as the Segment spec defines them, and the client clock-skew correction."""

from dataclasses import dataclass, field
from datetime import datetime

from kit.payloads import label_of

CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")


@dataclass
class Call:
    type: str
    message_id: str
    received_at: datetime
    user_id: str = ""
    anonymous_id: str = ""
    event: str = ""
    name: str = ""
    group_id: str = ""
    previous_id: str = ""
    properties: dict = field(default_factory=dict)
    traits: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    integrations: dict = field(default_factory=dict)
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None

    @property
    def timestamp(self) -> datetime:
        return corrected_timestamp(self.original_timestamp, self.sent_at, self.received_at)

    @property
    def label(self) -> str:
        """What a person reads in an event list: the event or page name, else the call type."""
        return label_of(self.type, self.event, self.name)

    def as_record(self, timestamp: datetime | None = None) -> dict:
        """Everything the client sent, as stored in the event log and exported."""
        record = {
            "type": self.type, "messageId": self.message_id, "userId": self.user_id or None,
            "anonymousId": self.anonymous_id or None, "event": self.event or None,
            "name": self.name or None, "groupId": self.group_id or None,
            "previousId": self.previous_id or None, "properties": self.properties,
            "traits": self.traits, "context": self.context, "integrations": self.integrations,
            "originalTimestamp": iso(self.original_timestamp), "sentAt": iso(self.sent_at),
            "receivedAt": iso(self.received_at), "timestamp": iso(timestamp or self.timestamp),
        }
        return {k: v for k, v in record.items() if v not in (None, {}, "")}


def corrected_timestamp(original: datetime | None, sent_at: datetime | None,
                        received_at: datetime) -> datetime:
    """Segment's rule: the device clock may be wrong, but its offset between the event and
    the send is right, so timestamp = receivedAt - (sentAt - originalTimestamp). A time after
    receipt (a fast clock with no sentAt) would freeze traits at a future moment, so it is
    taken as the receipt time."""
    if original is None:
        return received_at
    corrected = original if sent_at is None else received_at - (sent_at - original)
    return min(corrected, received_at)  # nothing happened after it was received


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
