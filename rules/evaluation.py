"""Membership of one profile in one rule at a moment, and the next moment it could change
with no new event (a view leaving the 3-day window, last seen passing 3 days). The service
re-evaluates at that moment on a durable timer instead of polling. Pure: time is passed in.
"""

import operator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from kit.zones import SEOUL
from rules import (All, Any, ConsentCondition, EventCondition, LastSeen, Not, PropertyFilter,
                   RfmCondition, SegmentRef, TraitCondition)

_COMPARE = {"eq": operator.eq, "neq": operator.ne, "gt": operator.gt, "gte": operator.ge,
            "lt": operator.lt, "lte": operator.le}


def series_key(condition: EventCondition) -> tuple:
    """Conditions counting the same events (name and filters) share one series of facts."""
    return (condition.event, condition.where, condition.property)


@dataclass
class EventSeries:
    """The matching events of one profile for one series: their times (ascending) and, for
    sums and averages, the property's value at each."""
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # event ids, so a redelivery adds nothing


@dataclass(frozen=True)
class RfmModel:
    """A workspace's orders (event and revenue property) and the quintile edges of its
    customers: recency in days, frequency in orders, monetary in revenue (ascending)."""
    order_event: str
    revenue_property: str
    edges: dict | None = None         # {"r": [4 epoch seconds, newest first], "f": [4 counts], "m": [4 sums]}

    @property
    def series_key(self) -> tuple:
        return (self.order_event, (), self.revenue_property)


@dataclass
class ProfileFacts:
    traits: dict = field(default_factory=dict)
    last_seen: datetime | None = None
    series: dict[tuple, EventSeries] = field(default_factory=dict)
    rfm: RfmModel | None = None
    segments: frozenset[str] = frozenset()
    zone: tzinfo = SEOUL              # the profile's zone, for calendar rules
    # Every order, when series[rfm.series_key] holds only some (Explain since a moment): RFM
    # ranks the customer against edges drawn from all orders.
    rfm_orders: EventSeries | None = None
    # purpose → {"granted": bool, "at": ISO time}, from the profile service's consent events
    consent: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    member: bool
    next_change: datetime | None      # the earliest moment the answer may flip by time alone


def matches(filters: tuple[PropertyFilter, ...], properties: dict) -> bool:
    """Whether an event's properties pass every filter of a condition (applied at ingest)."""
    return all(_test(f.op, f.value, properties.get(f.property), f.property in properties) for f in filters)


def evaluate(rule, facts: ProfileFacts, now: datetime) -> Outcome:
    match rule:
        case All(children):
            outcomes = [evaluate(c, facts, now) for c in children]
            return Outcome(all(o.member for o in outcomes), _earliest(o.next_change for o in outcomes))
        case Any(children):
            outcomes = [evaluate(c, facts, now) for c in children]
            return Outcome(any(o.member for o in outcomes), _earliest(o.next_change for o in outcomes))
        case Not(child):
            inner = evaluate(child, facts, now)
            return Outcome(not inner.member, inner.next_change)
        case TraitCondition():
            return _trait(rule, facts, now)
        case EventCondition():
            return _event(rule, facts.series.get(series_key(rule), EventSeries()), now)
        case LastSeen(op, ago):
            if facts.last_seen is None:  # never active: neither recently nor lapsed
                return Outcome(False, None)
            threshold = facts.last_seen + ago
            return Outcome((now >= threshold) == (op == "more_than"), threshold if threshold > now else None)
        case RfmCondition():
            scores, next_change = rfm_scores(facts, now)
            return Outcome(_rfm(rule, scores), next_change)
        case SegmentRef(segment_id):
            return Outcome(segment_id in facts.segments, None)
        case ConsentCondition():
            return _consent(rule, facts.consent.get(rule.purpose), now)
    raise TypeError(f"not a rule: {rule!r}")


def _event(condition: EventCondition, series: EventSeries, now: datetime) -> Outcome:
    if condition.measure in ("first", "last"):
        # an event dated ahead of now (clock skew) has not happened yet: it counts from its time
        happened = [t for t in series.times if t <= now]
        coming = [t for t in series.times if t > now]
        if not happened:
            return Outcome(False, coming[0] if coming else None)
        at = happened[0] if condition.measure == "first" else happened[-1]
        threshold = at + condition.ago
        # within: it happened less than `ago` ago; before: more than `ago` ago; after: since then
        inside = now < threshold
        member = inside if condition.op in ("within", "after") else not inside
        moments = [threshold] if threshold > now else []
        if condition.measure == "last":
            moments += coming[:1]  # the next one to happen becomes the last
        return Outcome(member, _earliest(moments))
    measured, window = measure(condition, series, now)
    member = measured is not None and _COMPARE[condition.op](measured, condition.value)
    # The oldest event in the window leaves it first; later events still to come (times in
    # the future, from clock skew) enter it at their own time.
    moments = []
    if window and condition.within:
        moments.append(series.times[window[0]] + condition.within)
    moments += [t for t in series.times if t > now]
    return Outcome(member, _earliest(moments))


def measure(condition: EventCondition, series: EventSeries, now: datetime) -> tuple[float | None, list[int]]:
    """The count, sum or average over the window (None: an average of nothing), and the
    positions of the events in the window."""
    start = now - condition.within if condition.within else None
    window = [i for i, t in enumerate(series.times) if t <= now and (start is None or t > start)]
    if condition.measure == "count":
        return len(window), window
    values = [series.values[i] for i in window]
    if condition.measure == "sum":
        return sum(values), window
    return (sum(values) / len(values) if values else None), window


def consent_time(state: dict) -> datetime:
    return datetime.fromisoformat(state["at"].replace("Z", "+00:00"))


def _consent(condition: ConsentCondition, state: dict | None, now: datetime) -> Outcome:
    """The consent's state now, and with `since` how long it has held (by its recorded time):
    within / after: recorded less than `ago` ago; before: more than `ago` ago."""
    if state is None or state["granted"] != (condition.state == "granted"):
        return Outcome(False, None)
    if condition.op is None:
        return Outcome(True, None)
    threshold = consent_time(state) + condition.ago
    inside = now < threshold
    member = inside if condition.op in ("within", "after") else not inside
    return Outcome(member, threshold if threshold > now else None)


def _trait(condition: TraitCondition, facts: ProfileFacts, now: datetime) -> Outcome:
    present = condition.trait in facts.traits
    value = facts.traits.get(condition.trait)
    if condition.op == "anniversary_within":
        day = as_date(value)
        if day is None:
            return Outcome(False, None)
        return _anniversary(day, condition.days, now, facts.zone)
    if condition.op in ("before", "after"):
        moment = _as_datetime(value, facts.zone)
        if moment is None:
            return Outcome(False, None)
        if condition.ago is not None:
            threshold = moment + condition.ago    # from then on, the trait's moment is `ago` before now
            member = (now >= threshold) == (condition.op == "before")
            return Outcome(member, threshold if threshold > now else None)
        reference = _as_datetime(condition.value, facts.zone)
        return Outcome(moment < reference if condition.op == "before" else moment > reference, None)
    return Outcome(_test(condition.op, condition.value, value, present), None)


def _anniversary(day: date, days: int, now: datetime, zone: tzinfo) -> Outcome:
    """In the segment from `days` days before the yearly date until that day ends, local time."""
    today = now.astimezone(zone).date()
    moments, member = [], False
    for year in (today.year - 1, today.year, today.year + 1):
        anniversary = _same_day_in(day, year)
        enter = datetime.combine(anniversary - timedelta(days=days), time(), zone)
        leave = datetime.combine(anniversary + timedelta(days=1), time(), zone)
        member = member or enter <= now < leave
        moments += [m for m in (enter, leave) if m > now]
    return Outcome(member, min(moments) if moments else None)


def _same_day_in(day: date, year: int) -> date:
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 2, 28)


def _test(op: str, expected, actual, present: bool) -> bool:
    if op == "exists":
        return present and actual is not None
    if not present:
        return op in ("neq", "not_in")
    if op == "in":
        return actual in expected
    if op == "not_in":
        return actual not in expected
    if op == "contains":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        return isinstance(actual, list) and expected in actual
    if op in ("eq", "neq"):
        return _COMPARE[op](actual, expected)
    try:
        return _COMPARE[op](actual, expected)
    except TypeError:  # a number compared with a string: not a match, never an error
        return False


# (group, lowest R, highest R, lowest FM, highest FM), first match wins; FM = round((F + M) / 2).
RFM_GRID = (("champions", 4, 5, 4, 5), ("loyal", 3, 3, 4, 5), ("potential_loyalists", 4, 5, 2, 3),
            ("new_customers", 5, 5, 1, 1), ("promising", 4, 4, 1, 1), ("need_attention", 3, 3, 3, 3),
            ("about_to_sleep", 3, 3, 1, 2), ("cannot_lose", 1, 1, 4, 5), ("at_risk", 1, 2, 3, 5),
            ("hibernating", 2, 2, 1, 2), ("lost", 1, 1, 1, 2))


def rfm_scores(facts: ProfileFacts, now: datetime) -> tuple[dict | None, datetime | None]:
    """The profile's R, F, M quintile scores and group (None without orders), and when an
    order dated in the future (clock skew) starts to count. Recency is ranked against the
    last-order moments of the workspace's customers at the latest refresh of the edges, so
    scores move when the edges are refreshed (hourly), not with every passing second."""
    model = facts.rfm
    if model is None or not model.edges:
        return None, None
    series = facts.rfm_orders if facts.rfm_orders is not None else facts.series.get(model.series_key, EventSeries())
    past = [i for i, t in enumerate(series.times) if t <= now]
    upcoming = [t for t in series.times if t > now]
    if not past:
        return None, min(upcoming, default=None)
    last = series.times[past[-1]].timestamp()
    r = 5 - sum(last <= edge for edge in model.edges["r"])
    f = 1 + sum(len(past) > edge for edge in model.edges["f"])
    m = 1 + sum(sum(series.values[i] for i in past) > edge for edge in model.edges["m"])
    fm = int((f + m) / 2 + 0.5)
    group = next(g for g, r_lo, r_hi, fm_lo, fm_hi in RFM_GRID if r_lo <= r <= r_hi and fm_lo <= fm <= fm_hi)
    return {"r": r, "f": f, "m": m, "group": group}, min(upcoming, default=None)


def _rfm(condition: RfmCondition, rfm: dict | None) -> bool:
    if rfm is None:
        return False
    if condition.group is not None:
        return rfm.get("group") == condition.group
    score = rfm.get(condition.score)
    return score is not None and _COMPARE[condition.op](score, condition.value)


def as_date(value) -> date | None:
    """A date trait's day (`1990-03-02` or an ISO moment); None when it is not one."""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _as_datetime(value, zone: tzinfo) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value, time(), zone)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    return None


def _earliest(moments) -> datetime | None:
    present = [m for m in moments if m is not None]
    return min(present) if present else None
