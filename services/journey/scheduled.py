"""Scheduled loops of the journey service: the timer passes that move runs, and the
scheduled entries (date-trait entries and broadcast pages)."""

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

from opentelemetry import trace

from kit.logs import get_logger
from kit.loops import repeat
from kit.tracing import context_from_headers
from kit.zones import SEOUL
from services.journey.clients import LiveEffects
from services.journey.definition import BroadcastTrigger, DateTraitTrigger, parse_journey
from services.journey.engine import ACTIVE, RunState, Stepper, next_cron, next_date_occurrence
from services.journey.repository import JourneyRepository
from services.journey.runs import Runs

log = get_logger(__name__)
tracer = trace.get_tracer("nudge.journey")

RETRY_AFTER = timedelta(seconds=30)   # a run whose step failed (a service down) is tried again then
DATE_BATCH = 500


class ScheduledLoops(Runs):
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
        async def timer_pass() -> int:
            claimed = await self.fire_due_timers()
            if claimed < self.timer_batch:
                # Less than a batch: nothing due at the pass's moment was left for a later pass.
                # Counted, so that one can wait until whatever was due at a moment has had its turn.
                self.timer_sweeps += 1
            return claimed

        await repeat(timer_pass, poll_seconds, busy=lambda claimed: claimed >= self.timer_batch,
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
