"""Stream payloads: each kind is declared once (kit.payloads), survives the entry format
unchanged, and its family and type are spelled nowhere else."""

import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kit import payloads
from kit.payloads import (ConsentChanged, DeliveryOutcome, Dropped, Engagement, Erased, JourneyStep,
                          MembershipChanged, Merged, TraitsChanged, Tracked)
from kit.settings import REPO_ROOT
from kit.streams import StreamEvent

AT = datetime(2026, 12, 6, 9, 30, tzinfo=timezone.utc)
CALL = {"type": "track", "messageId": "m-1", "userId": "u-1", "event": "Order Completed",
        "properties": {"revenue": 39000, "items": [{"sku": "A"}]}, "timestamp": AT.isoformat()}
EXAMPLES = [
    Tracked("e-1", "Order Completed", CALL),
    TraitsChanged({"plan": "pro", "nickname": None}),
    ConsentChanged({"channel:email": {"granted": False, "at": AT.isoformat(), "source": "api"}}),
    Merged(survivor_id="p-1", merged_id="p-2"),
    Erased(),
    Dropped(3, {"userId": 2}),
    Dropped(0, {}, erased=4),  # replays of erased people's calls
    MembershipChanged("entered", "vip", 2, AT, {"type": "event", "event_id": "e-1"}),
    JourneyStep("cart", 3, "r-1", "send-1", "send", "sent", "B", 4, {"delivery_id": "d-1"}),
    JourneyStep("cart", 3, "r-1", "exit", "converted", "Order Completed", "B", 5),
    DeliveryOutcome("deferred", "d-1", "sms", "nhn", "t-1", 2, "cart", 3, "send-1", "B", True, "quiet_hours",
                    "", AT, ["email"]),
    DeliveryOutcome("failed", "d-2"),  # decided before any channel: no channel, no provider
    Engagement("clicked", "f-1", "d-1", "sms", "t-1", "cart", 3, "send-1", "B", 0, "https://shop.kr/?utm_source=nudge",
               {"source": "nudge"}, False, "", AT),
]


def through_a_stream(payload: payloads.Payload) -> StreamEvent:
    event = StreamEvent(uuid.uuid4(), payload.event_type, "ws", "p-1", AT, payload.body())
    return StreamEvent.from_fields({k.encode(): v for k, v in event.to_fields().items()})  # as Redis answers


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: p.event_type)
def test_every_payload_reads_back_as_it_was_published(payload):
    assert through_a_stream(payload).data == payload


def test_the_type_carries_what_the_body_does_not_repeat():
    assert DeliveryOutcome("sent").event_type == "delivery.sent" and "status" not in DeliveryOutcome("sent").body()
    assert MembershipChanged("exited", "vip").event_type == "segment.exited"
    assert [s.event_type for s in EXAMPLES if isinstance(s, JourneyStep)] == ["journey.step", "journey.ended"]
    assert JourneyStep("cart", 1, "r", "start", "entered").event_type == "journey.entered"
    assert Tracked("e-1", "Order Completed", CALL).event_type == "event.track"


def test_the_body_keeps_the_flat_keys_readers_and_dashboards_know():
    body = Tracked("e-1", "Order Completed", CALL).body()
    assert body["event_id"] == "e-1" and body["label"] == "Order Completed" and body["messageId"] == "m-1"
    assert MembershipChanged("entered", "vip", 2, AT).body()["at"] == AT.isoformat()
    assert Merged("p-1", "p-2").body() == {"survivor_id": "p-1", "merged_id": "p-2"}


def test_an_entry_published_before_the_label_was_carried_is_labelled_by_the_same_rule():
    page = {"event_id": "e-2", "type": "page", "name": "Home"}
    identify = {"event_id": "e-3", "type": "identify"}
    assert payloads.decode("event.page", page).label == "Home"
    assert payloads.decode("event.identify", identify).label == "identify"


def test_a_dropped_entry_published_before_erasures_were_counted_reads_as_none_erased():
    assert payloads.decode("ingest.dropped", {"duplicates": 2, "rejected": {}}) == Dropped(2, {}, 0)


def test_unknown_keys_are_ignored_and_unknown_types_are_not_guessed():
    assert payloads.decode("profile.merged", {"survivor_id": "a", "merged_id": "b", "later": 1}) == Merged("a", "b")
    assert payloads.decode("profile.renamed", {}) is None
    assert payloads.decode("coupon.issued", {}) is None


def test_stream_families_are_spelled_only_where_they_are_declared():
    spelled = re.compile(r'"nudge\.(events|segments|journeys|deliveries|engagement)\.v1"')
    found = []
    for package in ("kit", "rules", "gateway", "services", "devserver"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            if "migrations" in path.parts or path == Path(payloads.__file__):
                continue
            found += [f"{path.relative_to(REPO_ROOT)}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                      if spelled.search(line)]
    assert found == []
