"""Membership at a moment, and the moment it flips by time alone."""

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from services.segment import rules
from services.segment.evaluation import EventSeries, ProfileFacts, evaluate, matches, series_key

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
VIEWED_3_IN_3_DAYS = rules.parse({"event": "Product Viewed", "count": {"op": "gte", "value": 3}, "within": "P3D"})


def facts_with(condition, times, values=None, **kwargs) -> ProfileFacts:
    return ProfileFacts(series={series_key(condition): EventSeries(sorted(times), values or [1] * len(times))},
                        **kwargs)


def test_three_views_in_three_days_enters_and_leaves_when_the_oldest_view_ages_out():
    views = [NOW - timedelta(days=2), NOW - timedelta(hours=5), NOW - timedelta(hours=1)]
    outcome = evaluate(VIEWED_3_IN_3_DAYS, facts_with(VIEWED_3_IN_3_DAYS, views), NOW)
    assert outcome.member and outcome.next_change == views[0] + timedelta(days=3)
    later = evaluate(VIEWED_3_IN_3_DAYS, facts_with(VIEWED_3_IN_3_DAYS, views), outcome.next_change)
    assert not later.member


def test_no_visit_for_three_days_becomes_true_with_no_event():
    churn = rules.parse({"last_seen": {"op": "more_than", "ago": "P3D"}})
    seen = NOW - timedelta(days=1)
    before = evaluate(churn, ProfileFacts(last_seen=seen), NOW)
    assert not before.member and before.next_change == seen + timedelta(days=3)
    assert evaluate(churn, ProfileFacts(last_seen=seen), before.next_change).member


def test_cart_added_and_not_bought_within_an_hour():
    rule = rules.parse({"all": [{"event": "Product Added", "count": {"op": "gte", "value": 1}, "within": "PT1H"},
                                {"event": "Order Completed", "absent": True, "within": "PT1H"}]})
    added, bought = rule.children[0], rule.children[1]
    facts = ProfileFacts(series={series_key(added): EventSeries([NOW - timedelta(minutes=10)], [1])})
    assert evaluate(rule, facts, NOW).member
    facts.series[series_key(bought)] = EventSeries([NOW - timedelta(minutes=1)], [1])
    assert not evaluate(rule, facts, NOW).member


def test_vip_by_revenue_sum_in_thirty_days():
    rule = rules.parse({"event": "Order Completed", "sum": "revenue", "op": "gte", "value": 100_000, "within": "P30D"})
    times = [NOW - timedelta(days=40), NOW - timedelta(days=10), NOW - timedelta(days=2)]
    assert not evaluate(rule, facts_with(rule, times, [90_000, 60_000, 30_000]), NOW).member
    assert evaluate(rule, facts_with(rule, times, [10_000, 60_000, 40_000]), NOW).member


def test_birthday_within_seven_days_in_the_profiles_zone():
    rule = rules.parse({"trait": "birthday", "op": "anniversary_within", "days": 7})
    facts = ProfileFacts(traits={"birthday": "1990-11-30"})
    outcome = evaluate(rule, facts, NOW)
    assert outcome.member
    # it leaves at midnight Seoul time after the birthday: 30 Nov 15:00 UTC
    assert outcome.next_change == datetime(2026, 11, 30, 15, 0, tzinfo=timezone.utc)
    assert not evaluate(rule, ProfileFacts(traits={"birthday": "1990-12-25"}), NOW).member


def test_trait_operators_and_missing_traits():
    facts = ProfileFacts(traits={"plan": "pro", "age": 31, "tags": ["vip"], "name": "Kim Min"})
    def check(tree):
        return evaluate(rules.parse(tree), facts, NOW).member
    assert check({"trait": "plan", "op": "in", "value": ["pro", "team"]})
    assert check({"trait": "age", "op": "gte", "value": 30}) and not check({"trait": "age", "op": "lt", "value": 30})
    assert check({"trait": "tags", "op": "contains", "value": "vip"}) and check({"trait": "name", "op": "contains", "value": "Min"})
    assert not check({"trait": "coupon", "op": "exists"}) and check({"trait": "coupon", "op": "neq", "value": "X"})
    assert not check({"trait": "plan", "op": "gt", "value": 3})  # a string against a number is no match


def test_property_filters_pick_the_events_a_condition_counts():
    condition = rules.parse({"event": "Product Viewed", "where": [{"property": "product_id", "op": "eq", "value": "X"},
                                                                  {"property": "price", "op": "gte", "value": 1000}],
                             "absent": True})
    assert matches(condition.where, {"product_id": "X", "price": 1200})
    assert not matches(condition.where, {"product_id": "X"})


windows = st.sampled_from(["PT1H", "P1D", "P3D"])
counts = st.integers(min_value=0, max_value=4)
offsets = st.lists(st.integers(min_value=-5 * 24 * 60, max_value=60), max_size=8)  # minutes around NOW


@settings(max_examples=300, deadline=None)
@given(offsets=offsets, op=st.sampled_from(rules.COMPARISONS), count=counts, within=windows,
       probes=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=5))
def test_membership_holds_until_the_announced_moment_and_matches_a_brute_force_count(offsets, op, count, within,
                                                                                     probes):
    rule = rules.parse({"event": "E", "count": {"op": op, "value": count}, "within": within})
    times = [NOW + timedelta(minutes=m) for m in offsets]
    facts = facts_with(rule, times)
    outcome = evaluate(rule, facts, NOW)
    brute = sum(1 for t in times if NOW - rule.within < t <= NOW)
    assert outcome.member == {"eq": brute == count, "neq": brute != count, "gt": brute > count,
                              "gte": brute >= count, "lt": brute < count, "lte": brute <= count}[op]
    # Nothing changes before next_change: a timer set there misses no flip.
    horizon = outcome.next_change or NOW + timedelta(days=10)
    for p in probes:
        moment = NOW + (horizon - NOW) * p
        if moment < horizon:
            assert evaluate(rule, facts, moment).member == outcome.member
