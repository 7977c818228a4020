"""The typed journey (triggers, nodes, exit criteria, entry rules), as `definition.py`
parses it from JSON, and the graph's edges. Pure: no I/O, no clock."""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from rules import PropertyFilter

DEFAULT_BROADCAST_RATE = 100.0  # entries per second


@dataclass(frozen=True)
class EventMatch:
    event: str
    where: tuple[PropertyFilter, ...] = ()


# -- triggers -------------------------------------------------------------------------
@dataclass(frozen=True)
class EventTrigger:
    match: EventMatch


@dataclass(frozen=True)
class SegmentTrigger:
    segment_id: str
    transition: str                  # entered | exited


@dataclass(frozen=True)
class DateTraitTrigger:
    trait: str
    at: time                         # in the profile's zone
    offset_days: int = 0             # -3: three days before the date
    yearly: bool = True              # the date's anniversary every year (birthday), not the date once


@dataclass(frozen=True)
class BroadcastTrigger:
    segment_id: str
    at: datetime | None = None       # one time …
    cron: str | None = None          # … or on a schedule
    rate_per_second: float = DEFAULT_BROADCAST_RATE


# -- nodes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Wait:
    duration: timedelta
    next: str


@dataclass(frozen=True)
class WaitUntil:
    next: str
    at: time | None = None           # time of day in the profile's zone (midnight with a trait and no `at`)
    weekdays: tuple[str, ...] = ()   # with `at`: only on these days; () = any day
    trait: str | None = None         # the date held in this trait …
    offset_days: int = 0             # … moved by this many days


@dataclass(frozen=True)
class WaitForEvent:
    match: EventMatch
    timeout: timedelta
    next: str
    timeout_next: str


@dataclass(frozen=True)
class Condition:
    rule: object                     # a `rules` rule
    then: str
    else_: str


@dataclass(frozen=True)
class Branch:
    weight: float
    next: str


@dataclass(frozen=True)
class Split:
    branches: tuple[Branch, ...]
    holdout: float = 0               # weight of those who get nothing but are still measured


@dataclass(frozen=True)
class Send:
    channels: tuple[str, ...]        # fallback order
    template_id: str
    advertising: bool
    next: str | None = None
    order: str = "first_allowed"     # dispatch's channel order: first_allowed | strict (passed through)
    # a receipt or shipping notice: dispatch exempts it from fatigue (when its policy does)
    transactional: bool = False


@dataclass(frozen=True)
class UpdateTrait:
    trait: str
    value: object
    next: str | None = None


@dataclass(frozen=True)
class Exit:
    pass


WAITS = (Wait, WaitUntil, WaitForEvent)


# -- the journey ----------------------------------------------------------------------
@dataclass(frozen=True)
class ExitCriteria:
    segment_exited: tuple[str, ...] = ()
    events: tuple[EventMatch, ...] = ()


@dataclass(frozen=True)
class Entry:
    mode: str = "once"
    cooldown: timedelta | None = None  # mode cooldown: again only this long after the last entry
    cap: int | None = None             # at most this many entries into the journey in all
    active_from: datetime | None = None
    active_until: datetime | None = None


@dataclass(frozen=True)
class Journey:
    trigger: object
    start: str
    nodes: dict                      # node id → node, in definition order; do not mutate
    goal: EventMatch | None = None
    exit_criteria: ExitCriteria = ExitCriteria()
    entry: Entry = Entry()


def successors(node) -> tuple[tuple[str, str], ...]:
    """(field, node id) of every node this one can lead to, the field relative to the node."""
    match node:
        case Wait(next=n) | WaitUntil(next=n):
            return (("next", n),)
        case WaitForEvent(next=n, timeout_next=t):
            return ("next", n), ("timeout_next", t)
        case Condition(then=t, else_=e):
            return ("then", t), ("else", e)
        case Split(branches):
            return tuple((f"branches[{i}].next", b.next) for i, b in enumerate(branches))
        case Send(next=n) | UpdateTrait(next=n) if n is not None:
            return (("next", n),)
    return ()
