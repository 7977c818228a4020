"""Which segments a change can affect, in which order to evaluate them, and the membership
changes and timers that result for one profile. Pure: the service loads and stores.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from rules.evaluation import ProfileFacts, RfmModel, evaluate, series_key
from rules.facts import SeriesIndex
from rules import (All, Any, ConsentCondition, EventCondition, LastSeen, Not, RfmCondition,
                   TraitCondition, referenced_segments)


@dataclass(frozen=True)
class SegmentDef:
    id: str
    version: int
    rule: object


@dataclass(frozen=True)
class Change:
    segment_id: str
    version: int
    entered: bool


@dataclass
class Verdict:
    changes: list[Change] = field(default_factory=list)
    # segment → the next moment time alone may flip it (None: no timer)
    timers: dict[str, datetime | None] = field(default_factory=dict)


def digest(key: tuple) -> str:
    """A stable name for a series, to store it under."""
    return hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()


def leaves(rule):
    match rule:
        case All(children) | Any(children):
            for child in children:
                yield from leaves(child)
        case Not(child):
            yield from leaves(child)
        case _:
            yield rule


class Catalog:
    """A workspace's active segments, indexed by what can change them."""

    def __init__(self, segments: list[SegmentDef], rfm: RfmModel | None = None) -> None:
        self.defs = {s.id: s for s in segments}
        self.rfm = rfm
        self.index = SeriesIndex.of({s.id: s.rule for s in segments})
        self.by_trait: dict[str, set[str]] = {}
        self.by_consent: dict[str, set[str]] = {}  # purpose → segments reading it
        self.on_activity: set[str] = set()
        self.rfm_segments: set[str] = set()
        self.dependents: dict[str, set[str]] = {}
        self.needs: dict[str, set[tuple]] = {}  # segment → the series its rule reads
        for s in segments:
            needs: set[tuple] = set()
            for leaf in leaves(s.rule):
                if isinstance(leaf, EventCondition):
                    needs.add(series_key(leaf))
                elif isinstance(leaf, TraitCondition):
                    self.by_trait.setdefault(leaf.trait, set()).add(s.id)
                    if leaf.op in ("anniversary_within", "before", "after"):  # calendar days follow the zone
                        self.by_trait.setdefault("timezone", set()).add(s.id)
                elif isinstance(leaf, LastSeen):
                    self.on_activity.add(s.id)
                elif isinstance(leaf, ConsentCondition):
                    self.by_consent.setdefault(leaf.purpose, set()).add(s.id)
                elif isinstance(leaf, RfmCondition) and rfm is not None:
                    self.rfm_segments.add(s.id)
                    needs.add(rfm.series_key)
            self.needs[s.id] = needs
            for ref in referenced_segments(s.rule):
                self.dependents.setdefault(ref, set()).add(s.id)
        if rfm is not None and self.rfm_segments:
            self.index.by_event.setdefault(rfm.order_event, {})[rfm.series_key] = EventCondition(
                rfm.order_event, (), "sum", "gte", 0, property=rfm.revenue_property)
            self.index.segments_of.setdefault(rfm.series_key, set()).update(self.rfm_segments)
        self.order = self._topological()
        self.digest_of = {k: digest(k) for needs in self.needs.values() for k in needs}  # computed once
        self.keys = {d: k for k, d in self.digest_of.items()}

    def _topological(self) -> list[str]:
        order, seen = [], set()

        def visit(segment_id: str) -> None:
            if segment_id in seen or segment_id not in self.defs:
                return
            seen.add(segment_id)
            for ref in sorted(referenced_segments(self.defs[segment_id].rule)):
                visit(ref)
            order.append(segment_id)

        for segment_id in sorted(self.defs):
            visit(segment_id)
        return order

    def affected_by_traits(self, names) -> set[str]:
        return set().union(*(self.by_trait.get(n, set()) for n in names))

    def affected_by_consent(self, purposes) -> set[str]:
        return set().union(*(self.by_consent.get(p, set()) for p in purposes))

    def closure(self, segment_ids: set[str]) -> list[str]:
        """The segments and every segment referring to them, references first."""
        pending, found = list(segment_ids), set()
        while pending:
            current = pending.pop()
            if current in found or current not in self.defs:
                continue
            found.add(current)
            pending.extend(self.dependents.get(current, ()))
        return [s for s in self.order if s in found]

    def condition_of(self, key: tuple) -> EventCondition:
        """The condition that feeds a series (its event, filters and summed property)."""
        return self.index.by_event[key[0]][key]

    def needed_keys(self, segment_ids) -> set[tuple]:
        return {k for s in self.closure(set(segment_ids)) for k in self.needs.get(s, ())}


def reevaluate(catalog: Catalog, facts: ProfileFacts, segment_ids: set[str], now: datetime) -> Verdict:
    """Evaluates the segments (and those that refer to them) for one profile at `now`;
    `facts.segments` holds its current memberships and is kept up to date."""
    verdict = Verdict()
    for segment_id in catalog.closure(segment_ids):
        definition = catalog.defs[segment_id]
        outcome = evaluate(definition.rule, facts, now)
        if outcome.member != (segment_id in facts.segments):
            verdict.changes.append(Change(segment_id, definition.version, outcome.member))
            facts.segments = (facts.segments | {segment_id}) if outcome.member else (facts.segments - {segment_id})
        verdict.timers[segment_id] = outcome.next_change
    return verdict

