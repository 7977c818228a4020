"""Journey use cases: definitions and their lifecycle, entries from events, segment changes,
dates and broadcasts, runs moved by durable timers, and the simulator.

Exactly once in effect: a run's state, its steps, its next timer and its outbox entries are
written in one transaction after the run moved. A replica that dies mid-way leaves the
last committed state and a leased timer; the next claimant replays the same steps, and
every send carries an idempotency key made of run, node and step number, so dispatch
answers the first result instead of sending again.
"""

import asyncio
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.clock import Clock
from kit.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from kit.labels import checked_description, checked_name
from kit.logs import get_logger
from kit.loops import repeat
from kit.outbox import Outbox
from kit.streams import StreamEvent
from kit.tracing import context_from_headers, current_trace_headers
from kit.transport import json_argument
from kit.zones import SEOUL
from services.journey.clients import LiveEffects, Platform
from services.journey.definition import (BroadcastTrigger, DateTraitTrigger, EventTrigger, Journey, SegmentTrigger,
                                         Send, missing_variable, parse_journey, referenced_segments,
                                         referenced_templates, segment_fields, template_fields)
from services.journey.engine import (ACTIVE, EXITED, RunState, StepRecord, Stepper, end, event_matches,
                                     happened_during, next_cron, next_date_occurrence)
from services.journey.entry import may_enter
from services.journey.models import JOURNEYS
from services.journey.repository import LIVE, JourneyRepository
from services.journey.simulator import TimelineEvent, ending_of, simulate

log = get_logger(__name__)
tracer = trace.get_tracer("nudge.journey")

STATUSES = ("draft", "published", "paused", "archived")
RETRY_AFTER = timedelta(seconds=30)   # a run whose step failed (a service down) is tried again then
DATE_BATCH = 500


@dataclass(frozen=True)
class LiveJourney:
    workspace_id: str
    id: str
    status: str
    version: int
    journey: Journey


class JourneyService:
    def __init__(self, sessions: async_sessionmaker, outbox: Outbox, clock: Clock, platform: Platform, *,
                 owner: str, timer_batch: int = 200, lease: timedelta = timedelta(seconds=30),
                 step_concurrency: int = 32, on_commit=lambda: None) -> None:
        self.sessions = sessions
        self.outbox = outbox
        self.clock = clock
        self.platform = platform
        self.owner = owner
        self.timer_batch = timer_batch
        self.lease = lease
        self.step_concurrency = step_concurrency
        self.on_commit = on_commit
        self.timers_wanted = asyncio.Event()
        self._parsed: dict[tuple[str, str, int], Journey] = {}  # versions never change

    # -- definitions and lifecycle -----------------------------------------------------------
    async def create(self, workspace_id: str, journey_id: str, name: str, description: str,
                     definition_json: str) -> dict:
        journey_id = _journey_id(journey_id)
        tree, journey = await self._checked(workspace_id, definition_json)
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            inserted = await JourneyRepository(session).insert_journey(dict(
                workspace_id=workspace_id, id=journey_id, name=checked_name(name),
                description=checked_description(description),
                status="draft", version=0, definition=tree, created_at=now, updated_at=now))
        if not inserted:
            raise Conflict(f"journey {journey_id!r} already exists", field="id")
        return await self.get(workspace_id, journey_id)

    async def update(self, workspace_id: str, journey_id: str, name: str, description: str | None,
                     definition_json: str) -> dict:
        checked = await self._checked(workspace_id, definition_json) if definition_json else None
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            repo = JourneyRepository(session)
            row = await self._existing(repo, workspace_id, journey_id, lock=True)
            if row.status == "archived":
                raise FailedPrecondition(f"journey {journey_id!r} is archived", field="id")
            values = {"updated_at": now}
            if name:
                values["name"] = checked_name(name)
            if description is not None:
                values["description"] = checked_description(description)
            if checked is not None:
                values["definition"] = checked[0]
                if row.status in LIVE:  # a live journey's edit is its next version
                    values["version"] = row.version + 1
                    await repo.add_version(workspace_id, journey_id, row.version + 1, checked[0], now)
            await repo.update_journey(workspace_id, journey_id, values)
            if checked is not None and row.status in LIVE:
                await self._plan_scheduled_entries(repo, workspace_id, journey_id, checked[1], now)
        return await self.get(workspace_id, journey_id)

    async def publish(self, workspace_id: str, journey_id: str) -> dict:
        async with self.sessions() as session:
            draft = await self._existing(JourneyRepository(session), workspace_id, journey_id)
        if draft.status == "draft":  # its templates may have changed since it was saved
            await self._check_template_variables(workspace_id, parse_journey(draft.definition))
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            repo = JourneyRepository(session)
            row = await self._existing(repo, workspace_id, journey_id, lock=True)
            if row.status != "draft":
                raise FailedPrecondition(f"journey {journey_id!r} is {row.status}; only a draft is published "
                                         "(edit a published journey to publish its next version)", field="id")
            journey = parse_journey(row.definition)
            await repo.add_version(workspace_id, journey_id, 1, row.definition, now)
            await repo.update_journey(workspace_id, journey_id, {"status": "published", "version": 1,
                                                                 "updated_at": now})
            await self._plan_scheduled_entries(repo, workspace_id, journey_id, journey, now)
        return await self.get(workspace_id, journey_id)

    async def pause(self, workspace_id: str, journey_id: str) -> dict:
        return await self._move(workspace_id, journey_id, "published", "paused")

    async def resume(self, workspace_id: str, journey_id: str) -> dict:
        journey = await self._move(workspace_id, journey_id, "paused", "published")
        self.timers_wanted.set()
        return journey

    async def archive(self, workspace_id: str, journey_id: str) -> dict:
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            repo = JourneyRepository(session)
            row = await self._existing(repo, workspace_id, journey_id, lock=True)
            if row.status == "archived":
                return _journey_dict(row)
            ended = await repo.live_runs_of_journey(workspace_id, journey_id)
            records = [(run, [finish(run, EXITED, "journey archived", "archived", now)]) for run in ended]
            await self._write(repo, records, {run.id: None for run in ended})
            await repo.drop_broadcast(workspace_id, journey_id)
            await repo.update_journey(workspace_id, journey_id, {"status": "archived", "updated_at": now})
        self.on_commit()
        return await self.get(workspace_id, journey_id)

    async def delete(self, workspace_id: str, journey_id: str) -> None:
        async with self.sessions() as session, session.begin():
            repo = JourneyRepository(session)
            row = await self._existing(repo, workspace_id, journey_id, lock=True)
            if row.status in LIVE:
                raise FailedPrecondition(f"journey {journey_id!r} is {row.status}; archive it before deleting",
                                         field="id")
            await repo.delete_journey(workspace_id, journey_id)

    async def get(self, workspace_id: str, journey_id: str) -> dict:
        async with self.sessions() as session:
            return _journey_dict(await self._existing(JourneyRepository(session), workspace_id, journey_id))

    async def list_journeys(self, workspace_id: str, status: str) -> list[dict]:
        if status and status not in STATUSES:
            raise InvalidArgument(f"status: expected one of {', '.join(STATUSES)}", field="status")
        async with self.sessions() as session:
            return [_journey_dict(r) for r in await JourneyRepository(session).list_journeys(workspace_id, status)]

    async def versions(self, workspace_id: str, journey_id: str) -> list:
        async with self.sessions() as session:
            repo = JourneyRepository(session)
            await self._existing(repo, workspace_id, journey_id)
            return await repo.versions(workspace_id, journey_id)

    async def find_usages(self, workspace_id: str, segment_id: str, template_id: str) -> list[dict]:
        if bool(segment_id) == bool(template_id):
            raise InvalidArgument("give exactly one of segment_id and template_id", field="segment_id")
        found = []
        async with self.sessions() as session:
            for row in await JourneyRepository(session).live_journeys({workspace_id}):
                # every version a run may still be on counts, so the latest definition is not enough
                for version in await JourneyRepository(session).versions(workspace_id, row.id):
                    journey = parse_journey(version.definition)
                    if (segment_id in referenced_segments(journey) if segment_id
                            else template_id in referenced_templates(journey)):
                        found.append(_journey_dict(row))
                        break
        return found

    async def _move(self, workspace_id: str, journey_id: str, source: str, target: str) -> dict:
        async with self.sessions() as session, session.begin():
            repo = JourneyRepository(session)
            row = await self._existing(repo, workspace_id, journey_id, lock=True)
            if row.status != source:
                raise FailedPrecondition(f"journey {journey_id!r} is {row.status}, not {source}", field="id")
            await repo.update_journey(workspace_id, journey_id, {"status": target, "updated_at": self.clock.now()})
        return await self.get(workspace_id, journey_id)

    async def _checked(self, workspace_id: str, definition_json: str) -> tuple[dict, Journey]:
        tree = json_argument(definition_json, "definition", empty="null")
        journey = parse_journey(tree)
        await self.platform.check_references(workspace_id, template_fields(journey), segment_fields(journey))
        await self._check_template_variables(workspace_id, journey)
        return tree, journey

    async def _check_template_variables(self, workspace_id: str, journey: Journey) -> None:
        """Every send's template reads only what a send of this journey will have (asked of
        dispatch now: a template may have changed since the journey was saved)."""
        for node_id, node in sorted(journey.nodes.items()):
            if not isinstance(node, Send):
                continue
            field = f"nodes.{node_id}.template"
            needed = await self.platform.template_variables(workspace_id, node.template_id, field)
            if missing := missing_variable(journey, needed):
                raise InvalidArgument(f"{field}: template {node.template_id!r} reads {missing}", field=field)

    @staticmethod
    async def _existing(repo: JourneyRepository, workspace_id: str, journey_id: str, lock: bool = False):
        row = await repo.journey(workspace_id, journey_id, lock=lock)
        if row is None:
            raise NotFound(f"journey {journey_id!r} not found", field="id")
        return row

    async def _plan_scheduled_entries(self, repo: JourneyRepository, workspace_id: str, journey_id: str,
                                      journey: Journey, now: datetime) -> None:
        """A published version's broadcast occurrence, or its date-trait entries for every
        profile whose traits the service has seen."""
        trigger = journey.trigger
        await repo.drop_broadcast(workspace_id, journey_id)
        if isinstance(trigger, BroadcastTrigger):
            due = trigger.at if trigger.at is not None else next_cron(trigger.cron, now, SEOUL)
            if trigger.at is None or trigger.at >= now - timedelta(minutes=5):
                await repo.set_broadcast(dict(workspace_id=workspace_id, journey_id=journey_id, due_at=due,
                                              segment_id=trigger.segment_id, rate_per_second=trigger.rate_per_second,
                                              cursor="", entered=0))
        elif isinstance(trigger, DateTraitTrigger):
            rows = []
            for profile in await repo.profiles_with_trait(workspace_id, trigger.trait):
                due = next_date_occurrence(profile.traits.get(trigger.trait), trigger.at, trigger.offset_days,
                                           trigger.yearly, profile.traits, now)
                if due is not None:
                    rows.append(dict(workspace_id=workspace_id, journey_id=journey_id,
                                     profile_id=profile.profile_id, due_at=due))
            for start in range(0, len(rows), 1000):
                await repo.set_date_entries(rows[start:start + 1000])

    # -- the streams: entries, goals, exits, waited events, traits, merges ------------------
    async def handle(self, session: AsyncSession, batch: list[StreamEvent]) -> None:
        repo = JourneyRepository(session)
        now = self.clock.now()
        live = await self._live_journeys(repo, {e.workspace_id for e in batch})
        # the batch's runs are locked up front in the order the timer passes use: no deadlock
        await repo.lock_live_runs({(e.workspace_id, p) for e in batch
                                   for p in (e.profile_id, e.payload.get("survivor_id")) if p})
        for event in sorted(batch, key=lambda e: e.occurred_at):
            journeys = live.get(event.workspace_id, [])
            if event.type == "profile.traits_changed":
                await self._traits_changed(repo, event, journeys, now)
            elif event.type == "profile.merged":
                await self._merged(repo, event, now)
            elif event.type == "profile.deleted":
                await self._erased(repo, event, now)
            elif event.type.startswith("event."):
                name = event.payload.get("event") or event.payload.get("name") or event.payload.get("type", "")
                props = event.payload.get("properties") or {}
                await self._behaviour(repo, event, journeys, name, props, now)
            elif event.type in ("segment.entered", "segment.exited"):
                await self._segment_change(repo, event, journeys, now)
        self.on_commit()

    async def _behaviour(self, repo: JourneyRepository, event: StreamEvent, journeys: list[LiveJourney],
                         name: str, props: dict, now: datetime) -> None:
        """Goals, exit events and waited events of the profile's live runs; then entries."""
        profile_id = event.profile_id
        changed: list[tuple[RunState, list[StepRecord]]] = []
        timers: dict[str, datetime | None] = {}
        for run in await repo.live_runs_of(event.workspace_id, [profile_id]):
            journey = await self._version(repo, run.workspace_id, run.journey_id, run.version)
            event_id = event.payload.get("event_id", "")
            ending = ending_of(journey, name, props) if happened_during(run, event.occurred_at, event_id) else None
            if ending:
                changed.append((run, [finish(run, ending[0], ending[1], name, event.occurred_at,
                                             {"event_id": event_id})]))
                timers[run.id] = None
            elif steps := Stepper(journey, None).event_arrived(run, name, props, now, event_id,
                                                                occurred_at=event.occurred_at):
                run.context["trace"] = event.trace_headers  # the step it unblocks belongs to this event
                changed.append((run, steps))
                timers[run.id] = now  # the branch after the event runs at once
        await self._write(repo, changed, timers)
        for journey in journeys:
            trigger = journey.journey.trigger
            if journey.status == "published" and isinstance(trigger, EventTrigger) and event_matches(
                    trigger.match, name, props):
                await self._enter(repo, journey, profile_id, event.occurred_at, now,
                                  {"event": {"name": name, "properties": props,
                                             "id": event.payload.get("event_id", "")}}, event.trace_headers)

    async def _segment_change(self, repo: JourneyRepository, event: StreamEvent, journeys: list[LiveJourney],
                              now: datetime) -> None:
        segment_id = event.payload.get("segment_id", "")
        transition = event.type.removeprefix("segment.")
        if transition == "exited":
            changed, timers = [], {}
            for run in await repo.live_runs_of(event.workspace_id, [event.profile_id]):
                journey = await self._version(repo, run.workspace_id, run.journey_id, run.version)
                if segment_id in journey.exit_criteria.segment_exited and happened_during(run, event.occurred_at):
                    changed.append((run, [finish(run, EXITED, f"left segment {segment_id}", f"left {segment_id}",
                                                 event.occurred_at)]))
                    timers[run.id] = None
            await self._write(repo, changed, timers)
        for journey in journeys:
            trigger = journey.journey.trigger
            if (journey.status == "published" and isinstance(trigger, SegmentTrigger)
                    and trigger.segment_id == segment_id and trigger.transition == transition):
                await self._enter(repo, journey, event.profile_id, event.occurred_at, now,
                                  {"segment": {"id": segment_id, "transition": transition}}, event.trace_headers)

    async def _traits_changed(self, repo: JourneyRepository, event: StreamEvent, journeys: list[LiveJourney],
                              now: datetime) -> None:
        row = await repo.lock_profile(event.workspace_id, event.profile_id)
        traits, times = dict(row.traits), dict(row.trait_times)
        stamp = event.occurred_at.isoformat()
        for name, value in (event.payload.get("traits") or {}).items():
            if times.get(name, "") <= stamp:  # a late, older change loses
                times[name] = stamp
                if value is None:
                    traits.pop(name, None)
                else:
                    traits[name] = value
        await repo.save_profile(event.workspace_id, event.profile_id, traits, times)
        changed = set(event.payload.get("traits") or {})
        for journey in journeys:
            trigger = journey.journey.trigger
            if isinstance(trigger, DateTraitTrigger) and changed & {trigger.trait, "timezone"}:
                due = next_date_occurrence(traits.get(trigger.trait), trigger.at, trigger.offset_days,
                                           trigger.yearly, traits, now)
                if due is None:
                    await repo.drop_date_entries(event.workspace_id, journey.id, [event.profile_id])
                else:
                    await repo.set_date_entries([dict(workspace_id=event.workspace_id, journey_id=journey.id,
                                                      profile_id=event.profile_id, due_at=due)])

    async def _merged(self, repo: JourneyRepository, event: StreamEvent, now: datetime) -> None:
        """The merged profile's runs move to the survivor; where both have a live run of the
        same journey, the survivor's stays and the other ends. Ended runs move too, so the
        survivor's history and entry rules (once, cooldown) count the merged person's runs."""
        survivor, merged = event.payload["survivor_id"], event.payload["merged_id"]
        live = await repo.live_runs_of(event.workspace_id, sorted({survivor, merged}))
        kept = {r.journey_id for r in live if r.profile_id == survivor}
        ended = [run for run in live if run.profile_id == merged and run.journey_id in kept]
        for run in ended:
            run.profile_id = survivor  # its end is announced as the survivor's
        await self._write(repo, [(run, [finish(run, EXITED, f"merged into {survivor}, which has its own run",
                                               "merged", now)]) for run in ended], {run.id: None for run in ended})
        await repo.move_runs(event.workspace_id, merged, survivor)
        await repo.delete_profile(event.workspace_id, merged)

    async def _erased(self, repo: JourneyRepository, event: StreamEvent, now: datetime) -> None:
        runs = await repo.live_runs_of(event.workspace_id, [event.profile_id])
        await self._write(repo, [(r, [finish(r, EXITED, "profile erased", "erased", now)]) for r in runs],
                          {r.id: None for r in runs})
        await repo.delete_profile(event.workspace_id, event.profile_id)

    async def _enter(self, repo: JourneyRepository, journey: LiveJourney, profile_id: str, at: datetime,
                     now: datetime, context: dict, trace: dict | None = None,
                     scheduled: bool = False) -> RunState | None:
        """A new run, if the entry rules allow it; it starts moving on the next timer pass, in
        the trace of what caused the entry (`trace`: the event's; else the current span's).
        A scheduled entry (a date, a broadcast) counts its waits from its due moment `at`, so a
        birthday's D+7 is 09:00 a week later however late the entry pass ran; an event's from now."""
        rules = journey.journey.entry
        previous = await repo.entries_of(journey.workspace_id, journey.id, profile_id)
        entered_in_all = 0
        if rules.cap is not None:
            await repo.journey(journey.workspace_id, journey.id, lock=True)  # the cap is counted under a lock
            entered_in_all = await repo.count_entries(journey.workspace_id, journey.id)
        if not may_enter(rules, previous, at, entered_in_all):
            return None
        run = RunState(id=str(uuid.uuid4()), workspace_id=journey.workspace_id, journey_id=journey.id,
                       version=journey.version, profile_id=profile_id, entered_at=at, node_id=journey.journey.start,
                       seq=1, context=context | {"trace": trace if trace is not None else current_trace_headers()})
        if not await repo.insert_run(run):
            return None  # already in a live run of this journey
        await self._write(repo, [(run, [StepRecord(1, "", "entered", "entered", at, context)])],
                          {run.id: min(at, now) if scheduled else now}, save=False)
        self.timers_wanted.set()
        return run

    async def _write(self, repo: JourneyRepository, changed: list[tuple[RunState, list[StepRecord]]],
                     timers: dict[str, datetime | None], save: bool = True) -> None:
        """Runs, their new steps, their timers and the stream entries, in the caller's transaction."""
        if not changed:
            return
        if save:
            await repo.save_runs([run for run, _ in changed])
        by_id = {run.id: run for run, _ in changed}
        await repo.set_timers([(by_id[run_id], due) for run_id, due in timers.items()])
        await repo.add_steps([(run, record) for run, records in changed for record in records])
        entries = []
        for run, records in changed:
            trace = run.context.get("trace")
            if trace is None:
                trace = current_trace_headers()
            for record in records:
                entries.append(self.outbox.event(JOURNEYS, _stream_type(record), run.workspace_id, run.profile_id,
                                                 record.at, _step_payload(run, record), trace))
        if entries:
            await self.outbox.add(repo.session, entries)

    async def _live_journeys(self, repo: JourneyRepository, workspace_ids: set[str]) -> dict[str, list[LiveJourney]]:
        found: dict[str, list[LiveJourney]] = {}
        for row in await repo.live_journeys(workspace_ids):
            journey = await self._version(repo, row.workspace_id, row.id, row.version)
            found.setdefault(row.workspace_id, []).append(
                LiveJourney(row.workspace_id, row.id, row.status, row.version, journey))
        return found

    async def _version(self, repo: JourneyRepository, workspace_id: str, journey_id: str, version: int) -> Journey:
        key = (workspace_id, journey_id, version)
        if key not in self._parsed:
            self._parsed[key] = parse_journey((await repo.definitions({key}))[key])
        return self._parsed[key]

    # -- timers ----------------------------------------------------------------------------
    async def fire_due_timers(self) -> int:
        """One batch of due runs: claimed under a lease, then moved and written in one
        transaction. Returns how many were claimed."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            claimed = await JourneyRepository(session).claim_timers(now, self.timer_batch, self.owner, self.lease)
        if not claimed:
            return 0
        async with self.sessions() as session, session.begin():
            repo = JourneyRepository(session)
            runs = [r for r in await repo.lock_runs(sorted(await repo.still_leased(list(claimed), self.owner)))
                    if r.status == ACTIVE]
            trees = await repo.definitions({(r.workspace_id, r.journey_id, r.version) for r in runs})
            for key, tree in trees.items():
                if key not in self._parsed:
                    self._parsed[key] = parse_journey(tree)
            traits: dict[tuple[str, str], dict] = {}
            for workspace_id in {r.workspace_id for r in runs}:
                found = await repo.traits_of(workspace_id, [r.profile_id for r in runs if r.workspace_id == workspace_id])
                traits.update({(workspace_id, p): t for p, t in found.items()})
            effects = LiveEffects(self.platform, traits, trees)
            gate = asyncio.Semaphore(self.step_concurrency)
            moved = await asyncio.gather(*(self._step(run, claimed[run.id], effects, gate) for run in runs))
            changed = [(run, records) for run, records in moved if records is not None]
            timers = {run.id: (run.waiting_until if run.status == ACTIVE else None) for run, _ in changed}
            await self._write(repo, changed, timers)
            await repo.set_timers([(run, now + RETRY_AFTER) for run, records in moved if records is None])
        self.on_commit()
        return len(claimed)

    async def _step(self, run: RunState, due: datetime, effects: LiveEffects, gate: asyncio.Semaphore):
        """(run, steps), or (the unchanged run, None) when a step failed and must be retried."""
        async with gate:
            stepper = Stepper(self._parsed[(run.workspace_id, run.journey_id, run.version)], effects)
            moving = replace(run, context=dict(run.context), wait=dict(run.wait) if run.wait else None)
            with tracer.start_as_current_span("journey.step", context=context_from_headers(
                    run.context.get("trace") or {}), attributes={"journey.id": run.journey_id,
                                                                  "journey.run_id": run.id}):
                try:
                    return moving, await stepper.advance(moving, self.clock.now(), due)
                except Exception:
                    log.exception("run step failed; retrying later", run_id=run.id, journey_id=run.journey_id)
                    return run, None

    async def run_timers(self, poll_seconds: float) -> None:
        await repeat(self.fire_due_timers, poll_seconds, busy=lambda claimed: claimed >= self.timer_batch,
                     wake=self.timers_wanted, name="timer pass")

    # -- scheduled entries: dates and broadcasts ------------------------------------------
    async def enter_due_dates(self) -> int:
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            repo = JourneyRepository(session)
            due = await repo.claim_date_entries(now, DATE_BATCH)
            live = await self._live_journeys(repo, {d.workspace_id for d in due})
            by_id = {(j.workspace_id, j.id): j for js in live.values() for j in js}
            for entry in due:
                journey = by_id.get((entry.workspace_id, entry.journey_id))
                trigger = journey.journey.trigger if journey else None
                if not isinstance(trigger, DateTraitTrigger):
                    await repo.drop_date_entries(entry.workspace_id, entry.journey_id, [entry.profile_id])
                    continue
                await self._enter(repo, journey, entry.profile_id, entry.due_at, now,
                                  {"date": {"trait": trigger.trait}}, scheduled=True)
                traits = (await repo.traits_of(entry.workspace_id, [entry.profile_id])).get(entry.profile_id, {})
                following = next_date_occurrence(traits.get(trigger.trait), trigger.at, trigger.offset_days,
                                                 trigger.yearly, traits, entry.due_at)
                if following is None:
                    await repo.drop_date_entries(entry.workspace_id, entry.journey_id, [entry.profile_id])
                else:
                    await repo.set_date_entries([dict(workspace_id=entry.workspace_id, journey_id=entry.journey_id,
                                                      profile_id=entry.profile_id, due_at=following)])
        self.on_commit()
        return len(due)

    async def enter_broadcast_page(self) -> bool:
        """One second's worth of one due broadcast's members; True when there was work."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            repo = JourneyRepository(session)
            broadcast = await repo.claim_broadcast(now)
            if broadcast is None:
                return False
            live = await self._live_journeys(repo, {broadcast.workspace_id})
            journey = next((j for j in live.get(broadcast.workspace_id, []) if j.id == broadcast.journey_id), None)
            if journey is None or not isinstance(journey.journey.trigger, BroadcastTrigger):
                await repo.drop_broadcast(broadcast.workspace_id, broadcast.journey_id)
                return True
            size = max(1, int(broadcast.rate_per_second))
            members, cursor = await self.platform.members_page(broadcast.workspace_id, broadcast.segment_id,
                                                               broadcast.cursor, size)
            for profile_id in members:
                await self._enter(repo, journey, profile_id, broadcast.due_at, now,
                                  {"broadcast": {"at": broadcast.due_at.isoformat()}}, scheduled=True)
            if cursor:  # more members: the next page a second later, paced
                await repo.update_broadcast(broadcast.workspace_id, broadcast.journey_id, {
                    "cursor": cursor, "entered": broadcast.entered + len(members),
                    "due_at": max(broadcast.due_at, now) + timedelta(seconds=len(members) / broadcast.rate_per_second)})
            elif journey.journey.trigger.cron:
                await repo.update_broadcast(broadcast.workspace_id, broadcast.journey_id, {
                    "cursor": "", "entered": 0, "due_at": next_cron(journey.journey.trigger.cron, now, SEOUL)})
            else:
                await repo.drop_broadcast(broadcast.workspace_id, broadcast.journey_id)
        self.on_commit()
        return True

    async def run_scheduled_entries(self, poll_seconds: float) -> None:
        async def once() -> bool:
            dates = await self.enter_due_dates()
            return await self.enter_broadcast_page() or dates >= DATE_BATCH

        await repeat(once, poll_seconds, name="scheduled entries")

    # -- reading runs and stats --------------------------------------------------------------
    async def runs_of(self, workspace_id: str, profile_id: str, journey_id: str) -> list:
        if not profile_id:
            raise InvalidArgument("profile_id: required", field="profile_id")
        async with self.sessions() as session:
            return await JourneyRepository(session).runs_of_profile(workspace_id, profile_id, journey_id)

    async def run(self, workspace_id: str, run_id: str) -> tuple:
        async with self.sessions() as session:
            repo = JourneyRepository(session)
            row = await repo.run(workspace_id, run_id)
            if row is None:
                raise NotFound(f"run {run_id!r} not found", field="id")
            return row, await repo.steps_of(row.id)

    async def stats(self, workspace_id: str, journey_id: str) -> dict:
        async with self.sessions() as session:
            repo = JourneyRepository(session)
            await self._existing(repo, workspace_id, journey_id)
            by_status, reached, outcomes, waiting = await repo.stats(workspace_id, journey_id)
        nodes: dict[str, dict] = {}

        def node(node_id: str) -> dict:
            return nodes.setdefault(node_id, {"reached": 0, "waiting": 0, "outcomes": {}})

        for node_id, count in reached:
            node(node_id)["reached"] = count
        for node_id, kind, outcome, count in outcomes:
            key = outcome if kind in ("send", "branch", "split", "deferred") else f"{kind}:{outcome}"
            node(node_id)["outcomes"][key] = node(node_id)["outcomes"].get(key, 0) + count
        for node_id, count in waiting:
            node(node_id)["waiting"] = count
        return {"entered": sum(by_status.values()), **{s: by_status.get(s, 0) for s in
                                                       ("active", "converted", "exited", "completed")},
                "nodes": nodes}

    # -- the simulator ---------------------------------------------------------------------
    async def simulate(self, workspace_id: str, journey_id: str, definition_json: str, profile_json: str,
                       start_at: datetime | None, timeline: list[TimelineEvent], until: datetime | None):
        if journey_id:
            definition = (await self.get(workspace_id, journey_id))["definition"]
            journey = parse_journey(definition)
        else:
            _, journey = await self._checked(workspace_id, definition_json)
        profile = json_argument(profile_json, "profile", empty="{}")
        if not isinstance(profile, dict) or not isinstance(profile.get("traits", {}), dict):
            raise InvalidArgument('profile: expected {"traits": {...}, "consents": {...}, "segments": [...]}',
                                  field="profile")
        if start_at is None:
            raise InvalidArgument("start_at: required", field="start_at")
        if until is not None and until <= start_at:
            raise InvalidArgument("until: must be after start_at", field="until")

        async def dry_send(simulation_id, at, person, node, context):
            return await self.platform.dry_send(simulation_id, at, person, node, context, workspace_id)

        return await simulate(journey, journey_id, profile, timeline, start_at, until, dry_send)


def finish(run: RunState, status: str, reason: str, outcome: str, at: datetime,
           detail: dict | None = None) -> StepRecord:
    """Ends a live run from outside its graph (goal, exit criteria, archive, merge, erasure)."""
    end(run, status, reason, at)
    run.seq += 1
    return StepRecord(run.seq, run.node_id, status, outcome, at, detail or {})


def _journey_dict(row) -> dict:
    return {"id": row.id, "name": row.name, "description": row.description, "status": row.status,
            "version": row.version, "definition": row.definition, "created_at": row.created_at,
            "updated_at": row.updated_at}


def _stream_type(record: StepRecord) -> str:
    if record.kind == "entered":
        return "journey.entered"
    if record.kind in ("converted", "exited", "completed"):
        return "journey.ended"
    return "journey.step"


def _step_payload(run: RunState, record: StepRecord) -> dict:
    return {"journey_id": run.journey_id, "version": run.version, "run_id": run.id, "node_id": record.node_id,
            "kind": record.kind, "outcome": record.outcome, "variant": run.variant, "seq": record.seq,
            "detail": record.detail}


def _journey_id(journey_id: str) -> str:
    if not journey_id:
        return f"jrn_{uuid.uuid4().hex[:16]}"
    if len(journey_id) > 64 or not journey_id.replace("-", "").replace("_", "").isalnum():
        raise InvalidArgument("id: 1 to 64 letters, digits, - or _", field="id")
    return journey_id
