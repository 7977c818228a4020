"""What the run asks of the segment service: segments of mixed kinds and the stream entries
of the profiles' history, of the throughput run and of the latency probes."""

import random
import uuid
from datetime import datetime, timedelta, timezone

from kit.streams import StreamEvent

PRODUCTS = [f"p-{n}" for n in range(50)]
CATEGORIES = ["shoes", "bags", "hats", "shirts"]
COUNTRIES = ["KR", "JP", "US", "DE", "FR"]
PROBE_EVENT = "Coupon Redeemed"
CONTEXT = {"library": {"name": "analytics.js", "version": "4.1.0"}, "locale": "ko-KR",
           "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"}

# The plain segments, by kind: segment i is KINDS[i % len(KINDS)](i).
KINDS = [
    lambda i: {"event": "Product Viewed", "where": [{"property": "product_id", "op": "eq",
                                                     "value": PRODUCTS[i % 50]}],
               "count": {"op": "gte", "value": 1 + i % 3}, "within": f"P{1 + i % 7}D"},
    lambda i: {"event": "Product Added", "where": [{"property": "category", "op": "eq",
                                                    "value": CATEGORIES[i % 4]}],
               "count": {"op": "gte", "value": 1 + i % 2}, "within": f"P{3 + i % 10}D"},
    lambda i: {"event": "Order Completed", "absent": True, "within": f"P{14 + i % 60}D"},
    lambda i: {"event": "Order Completed", "sum": "revenue", "op": "gte",
               "value": 50_000 * (1 + i % 6), "within": f"P{30 + i % 60}D"},
    lambda i: {"event": "Order Completed", "avg": "revenue", "op": "gte", "value": 40_000 + 1000 * (i % 30),
               "within": "P90D"},
    lambda i: {"event": ["Order Completed", "Product Added", "Product Viewed"][i % 3],
               ["first", "last"][i % 2]: {"op": ["within", "before", "after"][i % 3], "ago": f"P{1 + i % 14}D"}},
    lambda i: {"last_seen": {"op": ["more_than", "less_than"][i % 2], "ago": f"P{1 + i % 10}D"}},
    lambda i: [{"trait": "plan", "op": "eq", "value": ["pro", "free"][i % 2]},
               {"trait": "country", "op": "in", "value": COUNTRIES[i % 5:i % 5 + 2]},
               {"trait": "birthday", "op": "anniversary_within", "days": 7 + i % 20},
               {"trait": "signup_at", "op": "before", "ago": f"P{30 * (1 + i % 12)}D"}][i % 4],
    lambda i: {"any": [{"event": "Product Viewed", "where": [{"property": "category", "op": "eq",
                                                              "value": CATEGORIES[i % 4]}],
                        "count": {"op": "gte", "value": 3}, "within": "P7D"},
                       {"event": "Product Added", "where": [{"property": "price", "op": "gte",
                                                             "value": 100 + i % 50}],
                        "count": {"op": "gte", "value": 1}, "within": "P14D"}]},
    lambda i: {"all": [{"trait": "plan", "op": "eq", "value": "pro"},
                       {"event": "Order Completed", "count": {"op": "gte", "value": 1 + i % 3},
                        "within": f"P{30 + i % 30}D"},
                       {"last_seen": {"op": "less_than", "ago": "P3D"}}]},
    # (no `in` / `not_in` property filter: its list value makes the series key unhashable,
    # and the workspace's catalog, so every evaluation in it, fails)
    lambda i: {"not": {"event": "Product Viewed", "where": [{"property": "category", "op": "eq",
                                                             "value": CATEGORIES[i % 4]},
                                                            {"property": "price", "op": "gte", "value": 150}],
                       "count": {"op": "gte", "value": 1}, "within": "P30D"}},
    lambda i: {"all": [{"event": "Product Added", "count": {"op": "gte", "value": 1}, "within": "P2D"},
                       {"not": {"event": "Order Completed", "count": {"op": "gte", "value": 1},
                                "within": "P2D"}}]},
]


def segment_rules(count: int, probes: int) -> list[tuple[str, dict]]:
    """`count` segments of mixed kinds, in creation order. `{"segment": "@k"}` names the
    k-th segment of the list (created before); the last `probes` are the latency probes:
    `PROBE_EVENT` at least 1, 2, … times in a day."""
    plain = count - probes - 6
    if plain < 12:
        raise ValueError(f"--segments must be at least {probes + 18} with {probes} probe segments")
    found = [(f"kind{i % len(KINDS)}-{i}", KINDS[i % len(KINDS)](i)) for i in range(plain)]
    found += [("rfm champions", {"rfm": "champions"}),
              ("rfm recent", {"rfm": {"score": "r", "op": "gte", "value": 4}}),
              ("ref pro viewers", {"all": [{"segment": "@0"}, {"trait": "plan", "op": "eq", "value": "pro"}]}),
              ("ref either", {"any": [{"segment": "@1"}, {"segment": "@3"}]}),
              ("ref champions lapsing", {"all": [{"segment": f"@{plain}"},
                                                 {"last_seen": {"op": "more_than", "ago": "P2D"}}]}),
              ("ref of ref", {"not": {"segment": f"@{plain + 2}"}})]
    found += [(f"probe {k}", {"event": PROBE_EVENT, "count": {"op": "gte", "value": k}, "within": "P1D"})
              for k in range(1, probes + 1)]
    return found


def resolve_refs(tree, ids: list[str]):
    if isinstance(tree, dict):
        if isinstance(tree.get("segment"), str) and tree["segment"].startswith("@"):
            return {"segment": ids[int(tree["segment"][1:])]}
        return {k: resolve_refs(v, ids) for k, v in tree.items()}
    if isinstance(tree, list):
        return [resolve_refs(v, ids) for v in tree]
    return tree


def properties(name: str, rng: random.Random) -> dict:
    props = {"product_id": rng.choice(PRODUCTS), "category": rng.choice(CATEGORIES),
             "price": round(rng.uniform(1, 200), 2), "currency": "KRW"}
    if name == "Order Completed":
        props["revenue"] = rng.randrange(5_000, 200_000, 100)
    return props


def some_traits(rng: random.Random) -> dict:
    return {"plan": rng.choice(["free", "pro"]), "country": rng.choice(COUNTRIES),
            "birthday": f"{rng.randrange(1960, 2005)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"}


def history_workload(workspace_id: str, profile_ids: list[str], per_profile: int,
                     rng: random.Random) -> list[StreamEvent]:
    """What the profiles did before the runs, as the stream delivered it (in time order):
    their traits 60 days ago, then `per_profile` events each over the last 60 days."""
    now = datetime.now(timezone.utc)
    found = []
    for profile_id in profile_ids:
        traits = {**some_traits(rng), "signup_at": (now - timedelta(days=rng.uniform(60, 720))).isoformat()}
        found.append(StreamEvent(uuid.uuid4(), "profile.traits_changed", workspace_id, profile_id,
                                 now - timedelta(days=60), {"traits": traits}))
        for _ in range(per_profile):
            name = rng.choices(["Product Viewed", "Product Added", "Order Completed"], [6, 3, 1])[0]
            found.append(stream_event(workspace_id, profile_id, name, properties(name, rng),
                                      now - timedelta(seconds=rng.uniform(60, 60 * 86400))))
    return sorted(found, key=lambda e: e.occurred_at)


def stream_event(workspace_id: str, profile_id: str, name: str, props: dict, at: datetime) -> StreamEvent:
    """A track event as the profile service publishes it on nudge.events.v1."""
    event_id = str(uuid.uuid4())
    return StreamEvent(uuid.uuid4(), "event.track", workspace_id, profile_id, at, {
        "event_id": event_id, "type": "track", "messageId": f"bench-{event_id}", "userId": f"u-{profile_id[:8]}",
        "event": name, "properties": props, "context": CONTEXT, "receivedAt": at.isoformat(),
        "timestamp": at.isoformat()})


def stream_workload(workspace_id: str, profile_ids: list[str], count: int, rng: random.Random) -> list[StreamEvent]:
    """Mostly product views, adds and orders; 5% trait changes."""
    now = datetime.now(timezone.utc)
    found = []
    for i in range(count):
        profile_id, at = rng.choice(profile_ids), now + timedelta(milliseconds=i)
        if rng.random() < 0.05:
            found.append(StreamEvent(uuid.uuid4(), "profile.traits_changed", workspace_id, profile_id, at,
                                     {"traits": dict([rng.choice(list(some_traits(rng).items()))])}))
            continue
        name = rng.choices(["Product Viewed", "Product Added", "Order Completed"], [6, 3, 1])[0]
        found.append(stream_event(workspace_id, profile_id, name, properties(name, rng), at))
    return found


def probe_workload(workspace_id: str, profile_ids: list[str], count: int, rng: random.Random) -> list[StreamEvent]:
    """Probe i goes to profile i mod P: its n-th probe enters it in segment `probe n`."""
    now = datetime.now(timezone.utc)
    return [stream_event(workspace_id, profile_ids[i % len(profile_ids)], PROBE_EVENT,
                         {"code": f"C-{i}", "revenue": rng.randrange(1000, 9000)}, now) for i in range(count)]
