"""The ingest run's stream entries: runs of 50 journeys as the streams tell them (sends and
their outcomes, opens and clicks, journey steps, tracked events and orders)."""

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from kit.payloads import DELIVERIES, ENGAGEMENT, EVENTS, JOURNEYS
from kit.streams import StreamEvent
# The metrics service's own rule from a stream entry to its fact row (pure, no I/O): the
# reference every stored fact is checked against, and the bare loop's work.
from services.metrics.facts import Orders, fact_of

ORDERS = Orders()
JOURNEY_COUNT = 50
TARGET = "j-00"  # the biggest journey of both workloads, the one the stats run asks for
GROUP_BY = ["node", "variant"]
CHANNELS, CHANNEL_WEIGHTS = ["email", "sms", "kakao", "push"], [50, 20, 15, 15]
RULES = ["fatigue:rules[0]", "consent:email", "quiet_hours", "fatigue:rules[1]"]
TRACKED = ["Product Viewed", "Product Added", "Search", "Checkout Started"]
PAGES = ["Home", "Category", "Product", "Cart"]
CONTEXT = {"library": {"name": "analytics.js", "version": "4.1.0"}, "locale": "ko-KR"}
CLICK_URL = "https://shop.example.com/p?utm_source=nudge&utm_campaign=cart"


# Journey j (0…49) of the workload, the same in the stream entries and in the SQL seed:
# drawn as floor(50 · u^1.5), so a few journeys are big and most are small (j-00 is the
# biggest); 1 + j % 3 versions; every third one splits into variants a and b (and a 10%
# holdout that gets no message); 1 + (j + 2) % 3 message nodes n2…, and 2 + that + j % 2
# nodes n1… in all.
def journey_of(u: float) -> int:
    return math.floor(JOURNEY_COUNT * u ** 1.5)


def message_nodes(j: int) -> int:
    return 1 + (j + 2) % 3


def journey_name(j: int) -> str:
    return f"j-{j:02d}"


@dataclass
class Story:
    """One run of a journey for one person, as the streams tell it."""
    workspace_id: str
    profile_id: str
    rng: random.Random
    entries: list[tuple[str, StreamEvent]] = field(default_factory=list)

    def add(self, stream: str, event_type: str, at: datetime, payload: dict) -> None:
        self.entries.append((stream, StreamEvent(uuid.uuid4(), event_type, self.workspace_id, self.profile_id,
                                                 at, payload)))

    def track(self, name: str, at: datetime, props: dict, kind: str = "track") -> None:
        event_id = str(uuid.uuid4())
        received = at + timedelta(seconds=self.rng.expovariate(0.5))
        payload = {"event_id": event_id, "type": kind, "messageId": f"bench-{event_id}",
                   "userId": f"u-{self.profile_id}", "properties": props, "context": CONTEXT,
                   "timestamp": at.isoformat(), "receivedAt": received.isoformat()}
        payload["event" if kind == "track" else "name"] = name
        self.add(EVENTS, f"event.{kind}", at, payload)


def story(workspace_id: str, profile_id: str, j: int, at: datetime, rng: random.Random) -> list:
    s = Story(workspace_id, profile_id, rng)
    journey, version = journey_name(j), 1 + rng.randrange(1 + j % 3)
    run_id, variant, seq = str(uuid.uuid4()), "", 1

    def step(event_type: str, node: str, kind: str, outcome: str, when: datetime, detail: dict | None = None):
        nonlocal seq
        s.add(JOURNEYS, event_type, when, {"journey_id": journey, "version": version, "run_id": run_id,
                                           "node_id": node, "kind": kind, "outcome": outcome, "variant": variant,
                                           "seq": seq, "detail": detail or {}})
        seq += 1

    step("journey.entered", "", "entered", "entered", at)
    if j % 3 == 0:
        variant = rng.choices(["a", "b", "holdout"], [45, 45, 10])[0]
        step("journey.step", "split", "split", variant, at)
    for n in range(1, 3 + message_nodes(j) + j % 2):
        node, at = f"n{n}", at + timedelta(minutes=rng.uniform(5, 600))
        if 2 <= n <= 1 + message_nodes(j) and variant != "holdout":
            delivery_id = str(uuid.uuid4())
            step("journey.step", node, "send", "sent", at, {"delivery_id": delivery_id})
            send(s, delivery_id, journey, version, node, variant, at, rng)
        else:
            step("journey.step", node, "wait", "waited", at)
        for _ in range(rng.choice([0, 0, 1, 1, 2])):  # what the person does meanwhile
            when = at + timedelta(minutes=rng.uniform(1, 120))
            if rng.random() < 0.3:
                page = rng.choice(PAGES)
                s.track(page, when, {"path": f"/{page.lower()}", "title": page}, kind="page")
            else:
                s.track(rng.choice(TRACKED), when, {"product_id": f"p-{rng.randrange(500)}",
                                                    "price": round(rng.uniform(1, 200), 2), "currency": "KRW"})
        if rng.random() < 0.06:
            s.track(ORDERS.event, at + timedelta(minutes=rng.uniform(1, 240)),
                    {"order_id": str(uuid.uuid4()), ORDERS.revenue_property: rng.randrange(5_000, 200_000, 100),
                     "currency": "KRW"})
        if rng.random() < 0.08:  # makes no fact
            s.add(EVENTS, "profile.traits_changed", at, {"traits": {"plan": rng.choice(["free", "pro"])}})
    ending = rng.random()
    if ending < 0.8:
        kind = "converted" if ending < 0.08 else "completed" if ending < 0.56 else "exited"
        step("journey.ended", node, kind, {"converted": "goal", "completed": "end", "exited": "exit"}[kind],
             at + timedelta(minutes=1))
    return s.entries


def send(s: Story, delivery_id: str, journey: str, version: int, node: str, variant: str, at: datetime,
         rng: random.Random) -> None:
    """A send's outcome as dispatch announces it, and what the person did with the message."""
    channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
    outcome = rng.choices(["sent", "suppressed", "failed", "deferred"], [85, 9, 3, 3])[0]
    dims = {"delivery_id": delivery_id, "channel": channel, "template_id": f"tpl-{journey}-{node}-{channel}",
            "journey_id": journey, "journey_version": version, "node_id": node, "variant": variant}
    s.add(DELIVERIES, f"delivery.{outcome}", at, dims | {
        "provider": f"{channel}-provider", "template_version": 1, "advertising": True,
        "rule": rng.choice(RULES) if outcome == "suppressed" else None, "reason": "",
        "deferred_until": (at + timedelta(hours=8)).isoformat() if outcome == "deferred" else None})
    if outcome != "sent":
        return
    if rng.random() < 0.8:
        s.add(DELIVERIES, "delivery.delivered", at + timedelta(seconds=5), dims | {"provider": f"{channel}-provider"})
    opens = rng.choices([0, 1, 2, 3], [55, 30, 10, 5])[0]
    clicks = rng.choices([0, 1, 2], [70, 20, 10])[0] if opens else 0
    for kind, n in (("opened", opens), ("clicked", clicks)):
        for _ in range(n):
            when = at + timedelta(minutes=rng.uniform(1, 180))
            url = CLICK_URL if kind == "clicked" else None
            s.add(ENGAGEMENT, f"engagement.{kind}", when, dims | {
                "fact_id": str(uuid.uuid4()), "link_id": 0 if url else None, "url": url,
                "utm": {"source": "nudge", "campaign": "cart"} if url else {},
                "machine": kind == "opened" and rng.random() < 0.1, "category": None, "at": when.isoformat()})
    if rng.random() < 0.005:
        s.add(ENGAGEMENT, "engagement.unsubscribed", at + timedelta(hours=1), dims | {
            "fact_id": str(uuid.uuid4()), "link_id": None, "url": None, "utm": {}, "machine": False,
            "category": "marketing", "at": (at + timedelta(hours=1)).isoformat()})


def ingest_workload(workspace_id: str, facts: int, rng: random.Random) -> tuple[list[tuple[str, StreamEvent]], int]:
    """Runs of the 50 journeys over the last week, by 1 person in 20, in time order, cut
    where they make `facts` facts; returns the entries and how many make no fact."""
    now = datetime.now(timezone.utc)
    profiles = max(1_000, facts // 20)
    found: list[tuple[str, StreamEvent]] = []
    made = 0
    while made < facts * 1.02 + 100:  # a little over, so that the cut below is in time order
        entries = story(workspace_id, f"p-{rng.randrange(profiles)}", journey_of(rng.random()),
                        now - timedelta(days=rng.uniform(1, 8)), rng)
        found += entries
        made += sum(fact_of(e, ORDERS) is not None for _, e in entries)
    found.sort(key=lambda entry: entry[1].occurred_at)
    kept, made = [], 0
    for stream, event in found:
        made += fact_of(event, ORDERS) is not None
        if made > facts:
            break
        kept.append((stream, event))
    return kept, len(kept) - facts
