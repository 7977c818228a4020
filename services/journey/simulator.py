"""The simulator: one synthetic person and a timeline of their events, replayed in virtual
time through the same Stepper and entry rules as live runs. Sends are dry runs of the real
dispatch pipeline at the virtual moment (consent, quiet hours, the night rule, fatigue,
render); conditions are the segment service's own evaluation over the timeline. Nothing is
stored and nothing is sent.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from services.journey.definition import (BroadcastTrigger, Condition, DateTraitTrigger, EventTrigger, Journey,
                                         SegmentTrigger, Send, UpdateTrait)
from services.journey.engine import (ACTIVE, CONVERTED, EXITED, RunState, SendOutcome, StepRecord, Stepper, end,
                                     event_matches, next_cron, next_date_occurrence)
from services.journey.entry import may_enter
from rules import CONSENT_CHANNELS
from rules.evaluation import ProfileFacts, evaluate, series_key
from rules.facts import Seen, build_series, event_conditions
from kit.zones import SEOUL, zone_of

# Timeline pseudo-events that move the synthetic person in or out of a segment.
SEGMENT_ENTERED, SEGMENT_EXITED = "$segment_entered", "$segment_exited"
DEFAULT_HORIZON = timedelta(days=400)
MAX_HORIZON = timedelta(days=3660)   # from start_at to until (ten years): a simulation stays one request
MAX_TIMELINE = 1_000                 # events of one simulated timeline

DrySend = Callable[[str, datetime, dict, Send, dict], Awaitable[SendOutcome]]


@dataclass(frozen=True)
class TimelineEvent:
    name: str
    at: datetime
    properties: dict = field(default_factory=dict)


@dataclass
class Simulation:
    steps: list[StepRecord] = field(default_factory=list)
    end_status: str = "not_entered"
    end_reason: str = ""
    ended_at: datetime | None = None


class _Person:
    """The synthetic profile as the effects see it, changing as the timeline plays."""

    def __init__(self, profile: dict) -> None:
        self.traits = dict(profile.get("traits") or {})
        self.consents = profile.get("consents") or {}
        self.identities = profile.get("identities") or {}
        self.segments = set(profile.get("segments") or [])
        self.history: list[Seen] = []

    def consent_states(self, at: datetime) -> dict:
        """The consents as consent conditions read them; without `at`, given at the moment asked
        (as dispatch's simulation has it); "advertising" is ads:<channel> on every channel."""
        states: dict = {}
        for purpose, state in self.consents.items():
            if not isinstance(state, dict):
                continue  # dispatch's dry run names the bad field
            held = {"granted": state.get("granted") is True, "at": state.get("at") or at.isoformat()}
            for each in ([f"ads:{c}" for c in CONSENT_CHANNELS] if purpose == "advertising" else [purpose]):
                if purpose != "advertising" or each not in self.consents:
                    states[each] = held
        return states


class _DryEffects:
    def __init__(self, person: _Person, dry_send: DrySend, simulation_id: str) -> None:
        self.person = person
        self.dry_send = dry_send
        self.simulation_id = simulation_id

    async def traits(self, run: RunState) -> dict:
        return self.person.traits

    async def send(self, run, node_id, node: Send, key, at) -> SendOutcome:
        person = {"traits": self.person.traits, "consents": self.person.consents,
                  "identities": self.person.identities}
        return await self.dry_send(self.simulation_id, at, person, node, run.send_variables())

    async def condition(self, run, node_id, node: Condition, at) -> bool:
        """The rule on the person now, counting only events since the run's entry."""
        seen = [e for e in self.person.history if e.at <= at]
        since = [e for e in seen if e.at >= run.entered_at]
        facts = ProfileFacts(traits=self.person.traits, last_seen=max((e.at for e in seen), default=None),
                             segments=frozenset(self.person.segments), zone=zone_of(self.person.traits, SEOUL),
                             series={series_key(c): build_series(c, since) for c in event_conditions(node.rule)},
                             consent=self.person.consent_states(at))
        return evaluate(node.rule, facts, at).member

    async def update_trait(self, run, node_id, node: UpdateTrait, key, at) -> None:
        if node.value is None:
            self.person.traits.pop(node.trait, None)
        else:
            self.person.traits[node.trait] = node.value


async def simulate(journey: Journey, journey_id: str, profile: dict, timeline: list[TimelineEvent],
                   start_at: datetime, until: datetime | None, dry_send: DrySend) -> Simulation:
    until = until or start_at + DEFAULT_HORIZON
    person = _Person(profile)
    stepper = Stepper(journey, _DryEffects(person, dry_send, f"sim-{uuid.uuid4().hex}"))
    result = Simulation()
    events = sorted((e for e in timeline if start_at <= e.at <= until), key=lambda e: e.at)
    runs: list[RunState] = []
    scheduled = _first_scheduled_entry(journey, person, start_at)

    async def enter(at: datetime, context: dict) -> None:
        live = runs[-1] if runs and runs[-1].status == ACTIVE else None
        if live or not may_enter(journey.entry, [r.entered_at for r in runs], at, len(runs)):
            return
        run = RunState(id=f"simulated-{len(runs) + 1}", workspace_id="", journey_id=journey_id, version=0,
                       profile_id="synthetic", entered_at=at, node_id=journey.start, context=context)
        runs.append(run)
        result.steps.append(StepRecord(0, "", "entered", "entered", at, {"run": len(runs)}))
        result.steps.extend(await stepper.advance(run, at))

    while True:
        live = runs[-1] if runs and runs[-1].status == ACTIVE else None
        moments = [m for m in (live.waiting_until if live else None, events[0].at if events else None,
                               scheduled) if m is not None]
        if not moments or min(moments) > until:
            break
        now = min(moments)
        if live and live.waiting_until == now:
            result.steps.extend(await stepper.advance(live, now))
        elif events and events[0].at == now:
            await _play(journey, person, events.pop(0), runs, result, stepper, enter)
        else:
            trigger = journey.trigger
            if not isinstance(trigger, BroadcastTrigger) or trigger.segment_id in person.segments:
                await enter(now, {})
            scheduled = _next_scheduled_entry(journey, person, now)
    if runs:
        last = runs[-1]
        result.end_status, result.end_reason, result.ended_at = last.status, last.end_reason, last.ended_at
        if last.status == ACTIVE:
            result.end_reason = f"still at {last.node_id} at the end of the simulation"
    return result


async def _play(journey: Journey, person: _Person, event: TimelineEvent, runs: list[RunState],
                result: Simulation, stepper: Stepper, enter) -> None:
    """One timeline event: the person's facts, then the live run (goal, exits, a waited
    event), then entry — in that order, as the live service does."""
    props = event.properties
    segment = props.get("segment")
    if event.name == SEGMENT_ENTERED:
        person.segments.add(segment)
    elif event.name == SEGMENT_EXITED:
        person.segments.discard(segment)
    else:
        person.history.append(Seen(f"timeline-{len(person.history)}", event.name, event.at, props))
    live = runs[-1] if runs and runs[-1].status == ACTIVE else None
    if live:
        outcome = ending_of(journey, event.name, props)
        if outcome:
            end(live, outcome[0], outcome[1], event.at)
            result.steps.append(StepRecord(0, live.node_id, outcome[0], event.name, event.at))
        elif steps := stepper.event_arrived(live, event.name, props, event.at, ""):
            result.steps.extend(steps)
            result.steps.extend(await stepper.advance(live, event.at))
    trigger = journey.trigger
    if isinstance(trigger, EventTrigger) and event_matches(trigger.match, event.name, props):
        await enter(event.at, {"event": {"name": event.name, "properties": props}})
    elif isinstance(trigger, SegmentTrigger) and segment == trigger.segment_id and (
            event.name == (SEGMENT_ENTERED if trigger.transition == "entered" else SEGMENT_EXITED)):
        await enter(event.at, {})


def ending_of(journey: Journey, name: str, properties: dict) -> tuple[str, str] | None:
    """(status, reason) when this event ends a live run of the journey: the goal converts,
    an exit event or leaving an exit segment exits. Segment changes come as
    $segment_exited with {"segment": id}."""
    if event_matches(journey.goal, name, properties):
        return CONVERTED, f"goal: {name}"
    if any(event_matches(m, name, properties) for m in journey.exit_criteria.events):
        return EXITED, f"exit event: {name}"
    if name == SEGMENT_EXITED and properties.get("segment") in journey.exit_criteria.segment_exited:
        return EXITED, f"left segment {properties['segment']}"
    return None


def _first_scheduled_entry(journey: Journey, person: _Person, start_at: datetime) -> datetime | None:
    trigger = journey.trigger
    if isinstance(trigger, BroadcastTrigger) and trigger.at is not None:
        return trigger.at if trigger.at >= start_at else None
    return _next_scheduled_entry(journey, person, start_at - timedelta(microseconds=1))


def _next_scheduled_entry(journey: Journey, person: _Person, after: datetime) -> datetime | None:
    """Date-trait and broadcast entries are moments, not events: the next one after `after`."""
    trigger = journey.trigger
    if isinstance(trigger, DateTraitTrigger):
        return next_date_occurrence(person.traits.get(trigger.trait), trigger.at, trigger.offset_days,
                                    trigger.yearly, person.traits, after)
    if isinstance(trigger, BroadcastTrigger) and trigger.cron is not None:
        moment = next_cron(trigger.cron, after, SEOUL)
        return moment if trigger.segment_id in person.segments else None
    return None
