"""Moving one run through its journey graph: the same code runs live runs (time from the
service's clock, effects through dispatch, segment and profile) and the simulator (virtual
time, dry-run effects). Pure apart from the effects it is handed.

A run stands at a node. Nodes that take no time (send, condition, split, update trait) are
executed one after another; a wait records the moment it ends and hands that moment back,
and the run is picked up again by a durable timer at that moment. Schedules are counted
from the moment a wait was due, not the moment its timer happened to fire, so a late timer
does not push D+3 and D+7 later.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from croniter import croniter

from kit.zones import zone_of
from rules.evaluation import as_date, matches
from services.journey.definition import (WEEKDAYS, Condition, EventMatch, Exit, Journey, Send, Split,
                                         UpdateTrait, Wait, WaitForEvent, WaitUntil)

ACTIVE, CONVERTED, EXITED, COMPLETED = "active", "converted", "exited", "completed"
HOLDOUT = "holdout"
# Dispatch answers these while a deferred send has not gone out yet: ask again shortly after.
STILL_WAITING = ("deferred", "pending", "sending")
RECHECK_AFTER = timedelta(seconds=5)
MAX_STEPS_AT_ONCE = 500  # graphs have no cycle without a wait; this only stops a runaway


@dataclass
class RunState:
    id: str
    workspace_id: str
    journey_id: str
    version: int
    profile_id: str
    entered_at: datetime
    node_id: str
    status: str = ACTIVE
    variant: str = ""
    seq: int = 0                      # steps recorded so far; part of each send's idempotency key
    wait: dict | None = None          # {"until": iso, "event"?: name, "since"?: iso, "send_key"?: key, "from"?: iso}
    context: dict = field(default_factory=dict)  # the trigger's event properties, for templates
    ended_at: datetime | None = None
    end_reason: str = ""

    @property
    def waiting_until(self) -> datetime | None:
        return datetime.fromisoformat(self.wait["until"]) if self.wait else None

    @property
    def awaited_event(self) -> str | None:
        return self.wait.get("event") if self.wait else None

    def send_variables(self) -> dict:
        """What a send of this run gives its template besides the profile: the properties of
        the event that entered it (none for segment, date and broadcast entries) and the
        journey fields (definition.JOURNEY_VARIABLES). Live and simulated sends alike."""
        return {"event": self.context.get("event", {}).get("properties", {}),
                "journey": {"id": self.journey_id, "version": self.version, "run_id": self.id,
                            "variant": self.variant}}


@dataclass(frozen=True)
class StepRecord:
    seq: int
    node_id: str
    kind: str        # entered | wait | waited | send | deferred | branch | split | update_trait | …
    outcome: str
    at: datetime
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SendOutcome:
    status: str      # sent | delivered | deferred | suppressed | failed | pending | sending
    channel: str = ""
    template_id: str = ""
    reason: str = ""
    rule: str = ""
    deferred_until: datetime | None = None
    next_allowed_at: datetime | None = None
    delivery_id: str = ""


class Effects(Protocol):
    """What a run does to the world; live and simulated runs differ only here."""

    async def traits(self, run: RunState) -> dict: ...

    async def send(self, run: RunState, node_id: str, node: Send, key: str, at: datetime) -> SendOutcome: ...

    async def condition(self, run: RunState, node_id: str, node: Condition, at: datetime) -> bool: ...

    async def update_trait(self, run: RunState, node_id: str, node: UpdateTrait, key: str,
                           at: datetime) -> None: ...


class Stepper:
    """Advances runs of one journey version."""

    def __init__(self, journey: Journey, effects: Effects) -> None:
        self.journey = journey
        self.effects = effects

    async def advance(self, run: RunState, now: datetime, due: datetime | None = None) -> list[StepRecord]:
        """Executes every step due at `now`; the run is left waiting (run.wait) or ended.
        `due`: when the run was due to move (its timer), if earlier than now."""
        steps: list[StepRecord] = []
        moment = min(due, now) if due else now  # the moment the schedule counts from
        while run.status == ACTIVE:
            if len(steps) >= MAX_STEPS_AT_ONCE:
                raise RuntimeError(f"run {run.id} took {MAX_STEPS_AT_ONCE} steps without waiting")
            node = self.journey.nodes[run.node_id]
            if run.wait is not None:
                until = run.waiting_until
                if now < until:
                    return steps
                # a send dispatch deferred and that we asked about again counts from dispatch's moment
                moment = datetime.fromisoformat(run.wait.get("from", run.wait["until"]))
                if not await self._wait_over(run, node, now, moment, steps):
                    return steps
                continue
            await self._execute(run, node, now, moment, steps)
        return steps

    async def _wait_over(self, run: RunState, node, now: datetime, moment: datetime,
                         steps: list[StepRecord]) -> bool:
        """The run's wait ended; False when it must keep waiting (a send still deferred)."""
        waited, run.wait = run.wait, None
        if "send_key" in waited:
            outcome = await self.effects.send(run, run.node_id, node, waited["send_key"], moment)
            if outcome.status in STILL_WAITING:
                until = max(outcome.deferred_until or moment, now + RECHECK_AFTER)
                run.wait = {**waited, "until": until.isoformat(), "from": waited.get("from", waited["until"])}
                return False
            self._record_send(run, node, outcome, now, steps)
            self._goto(run, node.next, now, steps)
        elif isinstance(node, WaitForEvent):
            self._record(run, steps, "timeout", "timeout", now)
            self._goto(run, node.timeout_next, now, steps)
        else:
            self._record(run, steps, "waited", "done", now)
            self._goto(run, node.next, now, steps)
        return True

    async def _execute(self, run: RunState, node, now: datetime, moment: datetime,
                       steps: list[StepRecord]) -> None:
        match node:
            case Wait(duration=duration):
                self._wait(run, moment + duration, steps, now)
            case WaitUntil():
                until = next_wait_until(node, await self.effects.traits(run), moment)
                if until is None:  # the date trait is missing: nothing to wait for
                    self._record(run, steps, "waited", "no date", now, {"trait": node.trait})
                    self._goto(run, node.next, now, steps)
                else:
                    self._wait(run, max(until, moment), steps, now)
            case WaitForEvent(match=match, timeout=timeout):
                self._wait(run, moment + timeout, steps, now, event=match.event)
                run.wait["since"] = moment.isoformat()  # only events from here on satisfy it
            case Condition(then=then, else_=else_):
                taken = await self.effects.condition(run, run.node_id, node, moment)
                self._record(run, steps, "branch", "then" if taken else "else", now)
                self._goto(run, then if taken else else_, now, steps)
            case Split():
                variant, next_id = choose_branch(node, run.id, run.node_id)
                run.variant = variant
                self._record(run, steps, "split", variant, now)
                self._goto(run, next_id, now, steps)
            case Send():
                if run.variant == HOLDOUT:  # measured, never messaged
                    self._record(run, steps, "send", "held_out", now, {"template_id": node.template_id})
                    self._goto(run, node.next, now, steps)
                    return
                key = f"journey:{run.id}:{run.node_id}:{run.seq}"
                outcome = await self.effects.send(run, run.node_id, node, key, moment)
                if outcome.status in STILL_WAITING:
                    until = max(outcome.deferred_until or moment, moment)
                    run.wait = {"until": until.isoformat(), "send_key": key}
                    self._record(run, steps, "deferred", outcome.rule or "deferred", now,
                                 _send_detail(node, outcome) | {"until": until.isoformat()})
                    return
                self._record_send(run, node, outcome, now, steps)
                self._goto(run, node.next, now, steps)
            case UpdateTrait(trait=trait, value=value):
                await self.effects.update_trait(run, run.node_id, node, f"journey:{run.id}:{run.node_id}:{run.seq}",
                                                moment)
                self._record(run, steps, "update_trait", "set", now, {"trait": trait, "value": value})
                self._goto(run, node.next, now, steps)
            case Exit():
                end(run, COMPLETED, "reached an exit", now)
                steps.append(StepRecord(_next_seq(run), "", COMPLETED, "exit", now))

    def _wait(self, run: RunState, until: datetime, steps: list[StepRecord], now: datetime,
              event: str | None = None) -> None:
        run.wait = {"until": until.isoformat()} | ({"event": event} if event else {})
        self._record(run, steps, "wait", "until", now, {"until": until.isoformat()} | (
            {"event": event} if event else {}))

    def _record_send(self, run: RunState, node: Send, outcome: SendOutcome, now: datetime,
                     steps: list[StepRecord]) -> None:
        self._record(run, steps, "send", outcome.status, now, _send_detail(node, outcome))

    @staticmethod
    def _record(run: RunState, steps: list[StepRecord], kind: str, outcome: str, at: datetime,
                detail: dict | None = None) -> None:
        steps.append(StepRecord(_next_seq(run), run.node_id, kind, outcome, at, detail or {}))

    def _goto(self, run: RunState, next_id: str | None, now: datetime, steps: list[StepRecord]) -> None:
        if next_id is None:
            end(run, COMPLETED, "reached the end of its path", now)
            steps.append(StepRecord(_next_seq(run), "", COMPLETED, "end", now))
        else:
            run.node_id = next_id

    def event_arrived(self, run: RunState, name: str, properties: dict, at: datetime,
                      event_id: str, occurred_at: datetime | None = None) -> list[StepRecord]:
        """A run waiting for this event moves on to the event's branch (its timer is then due now).
        An event that happened before the wait began (`occurred_at`: a late, older one) does not count."""
        node = self.journey.nodes[run.node_id]
        if not (isinstance(node, WaitForEvent) and run.awaited_event == name
                and matches(node.match.where, properties)):
            return []
        since = datetime.fromisoformat(run.wait["since"]) if "since" in run.wait else run.entered_at
        if occurred_at is not None and occurred_at < since:
            return []
        run.wait = None
        steps: list[StepRecord] = []
        self._record(run, steps, "event", name, at, {"event_id": event_id})
        self._goto(run, node.next, at, steps)
        return steps


def _next_seq(run: RunState) -> int:
    run.seq += 1
    return run.seq


def _send_detail(node: Send, outcome: SendOutcome) -> dict:
    detail = {"template_id": node.template_id, "channel": outcome.channel, "reason": outcome.reason,
              "rule": outcome.rule, "delivery_id": outcome.delivery_id}
    if outcome.next_allowed_at:
        detail["next_allowed_at"] = outcome.next_allowed_at.isoformat()
    return {k: v for k, v in detail.items() if v}


def end(run: RunState, status: str, reason: str, at: datetime) -> None:
    run.status, run.end_reason, run.ended_at, run.wait = status, reason, at, None


def happened_during(run: RunState, occurred_at: datetime, event_id: str = "") -> bool:
    """Whether an event may end the run (its goal, its exit criteria): it happened at or after
    the run entered and is not the event that entered it. Events arrive out of order (an
    offline device's batch, a retried delivery), so a late, older one is judged by its time."""
    entering = (run.context.get("event") or {}).get("id", "")
    return occurred_at >= run.entered_at and not (event_id and event_id == entering)


def event_matches(match: EventMatch | None, name: str, properties: dict) -> bool:
    return match is not None and match.event == name and matches(match.where, properties)


def choose_branch(split: Split, run_id: str, node_id: str) -> tuple[str, str]:
    """(variant, next node): a stable draw per run and node, so a replay takes the same branch.
    Variants are named by branch position (a, b, c, …); the holdout follows the first
    branch's path (same waits, same goal window) with every send held back."""
    total = sum(b.weight for b in split.branches) + split.holdout
    digest = hashlib.sha256(f"{run_id}:{node_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2 ** 64 * total
    for i, branch in enumerate(split.branches):
        if point < branch.weight:
            return variant_name(i), branch.next
        point -= branch.weight
    return HOLDOUT, split.branches[0].next


def variant_name(index: int) -> str:
    return chr(ord("a") + index) if index < 26 else f"v{index}"


# -- calendar ----------------------------------------------------------------------------

def next_wait_until(node: WaitUntil, traits: dict, moment: datetime) -> datetime | None:
    zone = zone_of(traits)
    if node.trait is not None:
        day = as_date(traits.get(node.trait))
        if day is None:
            return None
        day += timedelta(days=node.offset_days)
        at = node.at or datetime.min.time()
        return datetime.combine(day, at, zone)
    return next_time_of_day(moment, node.at, node.weekdays, zone)


def next_time_of_day(moment: datetime, at, weekdays: tuple[str, ...], zone: tzinfo) -> datetime:
    """The first moment at or after `moment` that is `at` o'clock on one of the weekdays, in the zone."""
    local = moment.astimezone(zone)
    for days in range(8):
        day = local.date() + timedelta(days=days)
        candidate = datetime.combine(day, at, zone)
        if candidate >= moment and (not weekdays or WEEKDAYS[day.weekday()] in weekdays):
            return candidate
    raise AssertionError("a weekday always comes within a week")


def next_date_occurrence(value, at, offset_days: int, yearly: bool, traits: dict,
                         after: datetime) -> datetime | None:
    """The next entry moment of a date-trait trigger strictly after `after`: the date (or its
    anniversary) moved by offset_days, at the time of day in the profile's zone."""
    day = as_date(value)
    if day is None:
        return None
    zone = zone_of(traits)
    if not yearly:
        moment = datetime.combine(day + timedelta(days=offset_days), at, zone)
        return moment if moment > after else None
    year = after.astimezone(zone).year - 1
    for candidate_year in range(year, year + 3):
        moment = datetime.combine(_in_year(day, candidate_year) + timedelta(days=offset_days), at, zone)
        if moment > after:
            return moment
    return None


def _in_year(day, year: int):
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February outside a leap year: the 28th
        return day.replace(year=year, day=28)


def next_cron(expression: str, after: datetime, zone: tzinfo) -> datetime:
    """The next moment of a cron schedule after `after`, read in the workspace zone."""
    return croniter(expression, after.astimezone(zone)).get_next(datetime)
