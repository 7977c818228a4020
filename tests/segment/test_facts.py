"""Facts kept from events: the same memberships whatever the order and however often events
arrive, and only the segments an event can change are re-evaluated. (Merges are tested on
PostgreSQL: the service rebuilds the survivor's series from the moved events.)"""

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

import rules
from rules.evaluation import ProfileFacts, evaluate
from rules.facts import Seen, SeriesIndex, apply_event

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
SEGMENTS = {
    "viewed-x-3-in-1d": rules.parse({"event": "Viewed", "where": [{"property": "sku", "op": "eq", "value": "x"}],
                                     "count": {"op": "gte", "value": 3}, "within": "P1D"}),
    "no-order-2d": rules.parse({"event": "Ordered", "absent": True, "within": "P2D"}),
    "spent-100-3d": rules.parse({"event": "Ordered", "sum": "amount", "op": "gte", "value": 100, "within": "P3D"}),
    "viewed-not-ordered": rules.parse({"all": [{"event": "Viewed", "count": {"op": "gte", "value": 1}, "within": "PT6H"},
                                               {"not": {"event": "Ordered", "last": {"op": "within", "ago": "PT6H"}}}]}),
    "lapsed": rules.parse({"last_seen": {"op": "more_than", "ago": "P1D"}}),
}
INDEX = SeriesIndex.of(SEGMENTS)

events = st.lists(st.builds(
    lambda n, name, minutes, sku, amount: Seen(f"e{n}", name, NOW - timedelta(minutes=minutes),
                                               {"sku": sku, "amount": amount}),
    st.integers(0, 10_000), st.sampled_from(["Viewed", "Ordered", "Other"]), st.integers(0, 4 * 24 * 60),
    st.sampled_from(["x", "y"]), st.integers(0, 80)), max_size=25, unique_by=lambda e: e.id)


def facts_of(history) -> ProfileFacts:
    facts = ProfileFacts()
    for event in sorted(history, key=lambda e: (e.at, e.id)):
        apply_event(facts, INDEX, event)
    return facts


def memberships(facts: ProfileFacts, at: datetime) -> dict[str, bool]:
    return {segment_id: evaluate(rule, facts, at).member for segment_id, rule in SEGMENTS.items()}


@settings(max_examples=200, deadline=None)
@given(history=events, data=st.data())
def test_out_of_order_and_repeated_delivery_gives_the_in_order_memberships(history, data):
    delivered = data.draw(st.permutations(history + data.draw(st.lists(st.sampled_from(history), max_size=10)
                                                               if history else st.just([]))))
    incremental = ProfileFacts()
    for event in delivered:
        apply_event(incremental, INDEX, event)
    in_order = facts_of(history)
    for hours in (0, 6, 30, 80):
        at = NOW + timedelta(hours=hours)
        assert memberships(incremental, at) == memberships(in_order, at)


def test_an_event_re_evaluates_only_the_segments_it_can_affect():
    facts = ProfileFacts()
    assert apply_event(facts, INDEX, Seen("o1", "Ordered", NOW, {"amount": 5})) == {"no-order-2d", "spent-100-3d",
                                                                                      "viewed-not-ordered"}
    assert apply_event(facts, INDEX, Seen("v1", "Viewed", NOW, {"sku": "y"})) == {"viewed-not-ordered"}
    assert apply_event(facts, INDEX, Seen("v1", "Viewed", NOW, {"sku": "y"})) == set()  # a redelivery
    assert apply_event(facts, INDEX, Seen("z1", "Other", NOW, {})) == set()
