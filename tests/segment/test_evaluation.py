"""Membership at a moment, and the moment it flips by time alone."""

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

import rules
from rules.evaluation import EventSeries, ProfileFacts, evaluate, matches, series_key

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


def test_average_order_value_over_a_window():
    rule = rules.parse({"event": "Order Completed", "avg": "revenue", "op": "gte", "value": 50_000, "within": "P30D"})
    times = [NOW - timedelta(days=40), NOW - timedelta(days=10), NOW - timedelta(days=2)]
    assert evaluate(rule, facts_with(rule, times, [1_000, 60_000, 40_000]), NOW).member  # 50,000 in the window
    assert not evaluate(rule, facts_with(rule, times, [90_000, 60_000, 30_000]), NOW).member
    assert not evaluate(rule, facts_with(rule, [], []), NOW).member  # no orders: no average


def test_last_occurrence_before_and_after_with_an_event_dated_ahead():
    before = rules.parse({"event": "Order Completed", "last": {"op": "before", "ago": "PT1H"}})
    after = rules.parse({"event": "Order Completed", "last": {"op": "after", "ago": "PT1H"}})
    # ordered two hours ago; an SDK with a fast clock reported another one for 30 minutes from now
    times = [NOW - timedelta(hours=2), NOW + timedelta(minutes=30)]
    outcome = evaluate(before, facts_with(before, times), NOW)
    assert outcome.member and outcome.next_change == times[1]  # until the skewed one comes due
    assert not evaluate(before, facts_with(before, times), times[1]).member
    assert not evaluate(after, facts_with(after, times), NOW).member
    first = rules.parse({"event": "Order Completed", "first": {"op": "within", "ago": "P1D"}})
    ahead = evaluate(first, facts_with(first, [NOW + timedelta(minutes=30)]), NOW)
    assert not ahead.member and ahead.next_change == NOW + timedelta(minutes=30)


def test_date_trait_before_and_after_a_moment_or_a_duration_ago():
    facts = ProfileFacts(traits={"signup_at": "2025-06-01T09:00:00+09:00"})
    def check(tree, at=NOW):
        return evaluate(rules.parse(tree), facts, at)
    assert check({"trait": "signup_at", "op": "before", "ago": "P365D"}).member  # signed up over a year ago
    assert not check({"trait": "signup_at", "op": "before", "ago": "P730D"}).member
    recent = check({"trait": "signup_at", "op": "after", "ago": "P730D"})
    assert recent.member and recent.next_change == datetime(2027, 6, 1, 0, 0, tzinfo=timezone.utc)
    assert check({"trait": "signup_at", "op": "before", "value": "2025-07-01"}).member
    assert not check({"trait": "signup_at", "op": "after", "value": "2025-07-01"}).member
    assert not evaluate(rules.parse({"trait": "signup_at", "op": "before", "ago": "P1D"}), ProfileFacts(), NOW).member


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
