"""Stream handlers of the journey service: events (entries, goals, exits, waited events),
segment changes (entries, exits), trait changes (date entries), merges and erasures."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.payloads import Erased, MembershipChanged, Merged, TraitsChanged, Tracked
from kit.streams import StreamEvent
from services.journey.definition import DateTraitTrigger, EventTrigger, SegmentTrigger
from services.journey.engine import (EXITED, RunState, StepRecord, Stepper, event_matches, happened_during,
                                     next_date_occurrence)
from services.journey.repository import JourneyRepository
from services.journey.runs import LiveJourney, Runs, finish
from services.journey.simulator import ending_of


class StreamHandlers(Runs):
    async def handle(self, session: AsyncSession, batch: list[StreamEvent]) -> None:
        repo = JourneyRepository(session)
        now = self.clock.now()
        live = await self._live_journeys(repo, {e.workspace_id for e in batch})
        # the batch's runs are locked up front in the order the timer passes use: no deadlock
        await repo.lock_live_runs({(e.workspace_id, p) for e in batch for p in (
            e.profile_id, e.data.survivor_id if isinstance(e.data, Merged) else None) if p})
        for event in sorted(batch, key=lambda e: e.occurred_at):
            journeys = live.get(event.workspace_id, [])
            match event.data:
                case TraitsChanged(traits=traits):
                    await self._traits_changed(repo, event, traits, journeys, now)
                case Merged(survivor_id=survivor, merged_id=merged):
                    await self._merged(repo, event.workspace_id, survivor, merged, now)
                case Erased():
                    await self._erased(repo, event.workspace_id, event.profile_id, now)
                case Tracked() as tracked:
                    await self._behaviour(repo, event, tracked, journeys, now)
                case MembershipChanged() as change:
                    await self._segment_change(repo, event, change, journeys, now)
        self.on_commit()

    async def _behaviour(self, repo: JourneyRepository, event: StreamEvent, tracked: Tracked,
                         journeys: list[LiveJourney], now: datetime) -> None:
        """Goals, exit events and waited events of the profile's live runs; then entries."""
        profile_id, name, props, event_id = event.profile_id, tracked.label, tracked.properties, tracked.event_id
        changed: list[tuple[RunState, list[StepRecord]]] = []
        timers: dict[str, datetime | None] = {}
        for run in await repo.live_runs_of(event.workspace_id, [profile_id]):
            journey = await self._version(repo, run.workspace_id, run.journey_id, run.version)
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
                                  {"event": {"name": name, "properties": props, "id": event_id}}, event.trace_headers)

    async def _segment_change(self, repo: JourneyRepository, event: StreamEvent, change: MembershipChanged,
                              journeys: list[LiveJourney], now: datetime) -> None:
        segment_id, transition = change.segment_id, change.transition
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

    async def _traits_changed(self, repo: JourneyRepository, event: StreamEvent, changes: dict,
                              journeys: list[LiveJourney], now: datetime) -> None:
        row = await repo.lock_profile(event.workspace_id, event.profile_id)
        if row is None:
            return  # a late change of someone erased: not kept again
        traits, times = dict(row.traits), dict(row.trait_times)
        stamp = event.occurred_at.isoformat()
        for name, value in changes.items():
            if times.get(name, "") <= stamp:  # a late, older change loses
                times[name] = stamp
                if value is None:
                    traits.pop(name, None)
                else:
                    traits[name] = value
        await repo.save_profile(event.workspace_id, event.profile_id, traits, times)
        changed = set(changes)
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

    async def _merged(self, repo: JourneyRepository, workspace_id: str, survivor: str, merged: str,
                      now: datetime) -> None:
        """The merged profile's runs move to the survivor; where both have a live run of the
        same journey, the survivor's stays and the other ends. Ended runs move too, so the
        survivor's history and entry rules (once, cooldown) count the merged person's runs.
        Into someone erased since (the erasure overtook the merge): the merged person is erased too."""
        if await repo.is_erased(workspace_id, survivor):
            await self._erased(repo, workspace_id, merged, now)
            return
        live = await repo.live_runs_of(workspace_id, sorted({survivor, merged}))
        kept = {r.journey_id for r in live if r.profile_id == survivor}
        ended = [run for run in live if run.profile_id == merged and run.journey_id in kept]
        for run in ended:
            run.profile_id = survivor  # its end is announced as the survivor's
        await self._write(repo, [(run, [finish(run, EXITED, f"merged into {survivor}, which has its own run",
                                               "merged", now)]) for run in ended], {run.id: None for run in ended})
        await repo.move_runs(workspace_id, merged, survivor)
        await repo.delete_profile(workspace_id, merged)

    async def _erased(self, repo: JourneyRepository, workspace_id: str, profile_id: str, now: datetime) -> None:
        """Live runs end (and say so), then every run of the person is anonymized."""
        runs = await repo.live_runs_of(workspace_id, [profile_id])
        await self._write(repo, [(r, [finish(r, EXITED, "profile erased", "erased", now)]) for r in runs],
                          {r.id: None for r in runs})
        await repo.erase_profile(workspace_id, profile_id, now)
