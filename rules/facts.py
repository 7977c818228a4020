"""Keeping a profile's facts current from its events: which series an event feeds, adding
it idempotently and in event-time order (retries and clock skew deliver events twice and
out of order). Pure: no I/O, no clock.
"""

import bisect
from dataclasses import dataclass, field
from datetime import datetime

from rules.evaluation import EventSeries, ProfileFacts, matches, series_key
from rules import All, Any, EventCondition, Not


def event_conditions(rule) -> list[EventCondition]:
    match rule:
        case All(children) | Any(children):
            return [c for child in children for c in event_conditions(child)]
        case Not(child):
            return event_conditions(child)
        case EventCondition():
            return [rule]
    return []


@dataclass
class SeriesIndex:
    """For the active segments: the series each event name feeds, and the segments a change
    of a series can affect (so an event re-evaluates only those)."""
    by_event: dict[str, dict[tuple, EventCondition]] = field(default_factory=dict)
    segments_of: dict[tuple, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, segments: dict[str, object]) -> "SeriesIndex":
        index = cls()
        for segment_id, rule in segments.items():
            for condition in event_conditions(rule):
                key = series_key(condition)
                index.by_event.setdefault(condition.event, {})[key] = condition
                index.segments_of.setdefault(key, set()).add(segment_id)
        return index


@dataclass
class Seen:
    """One event as the segment service needs it."""
    id: str
    name: str
    at: datetime
    properties: dict


def apply_event(facts: ProfileFacts, index: SeriesIndex, event: Seen) -> set[str]:
    """Adds the event to every series it feeds; returns the segments to re-evaluate.
    An event already held (same id) changes nothing."""
    touched: set[str] = set()
    facts.last_seen = event.at if facts.last_seen is None else max(facts.last_seen, event.at)
    for key, condition in index.by_event.get(event.name, {}).items():
        if not matches(condition.where, event.properties):
            continue
        series = facts.series.setdefault(key, EventSeries())
        if add_to_series(series, event, condition.property):
            touched |= index.segments_of[key]
    return touched


def add_to_series(series: EventSeries, event: Seen, prop: str | None) -> bool:
    value = event.properties.get(prop) if prop else 1
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        value = 0  # a sum over a missing or non-numeric property counts the event as 0
    return _place(series, event.id, event.at, value)


def _place(series: EventSeries, event_id: str, at: datetime, value: float) -> bool:
    if event_id in series.ids:
        return False
    position = bisect.bisect_right(series.times, at)
    series.times.insert(position, at)
    series.values.insert(position, value)
    series.ids.insert(position, event_id)
    return True


def build_series(condition: EventCondition, history) -> EventSeries:
    """One series from a profile's stored events (each with .id .name .at .properties),
    used when a series is first needed (new or edited segment, or after a merge)."""
    series = EventSeries()
    for event in history:
        if event.name == condition.event and matches(condition.where, event.properties):
            add_to_series(series, event, condition.property)
    return series
