"""Stream handlers of the segment service: events, trait and consent changes keep
memberships current; merges and erasures end the retired profile's memberships."""

from sqlalchemy.ext.asyncio import AsyncSession

from kit.payloads import ConsentChanged, Erased, Merged, TraitsChanged, Tracked
from kit.streams import StreamEvent
from kit.tracing import context_from_headers
from rules.facts import Seen
from services.segment.memberships import Memberships, Plan, cache_key, tracer
from services.segment.repository import SegmentRepository


class StreamHandlers(Memberships):
    async def handle(self, session: AsyncSession, batch: list[StreamEvent]) -> None:
        """Consumer batch handler: events and trait changes are evaluated together per
        workspace; merges and erasures in stream order between them."""
        pending: dict[str, list[StreamEvent]] = {}
        for event in batch:
            if isinstance(event.data, (Merged, Erased)):
                await self._flush(session, pending)
                pending = {}
                await self._retire(session, event)
            elif isinstance(event.data, (Tracked, TraitsChanged, ConsentChanged)):
                pending.setdefault(event.workspace_id, []).append(event)
        await self._flush(session, pending)

    async def _flush(self, session: AsyncSession, pending: dict[str, list[StreamEvent]]) -> None:
        repo = SegmentRepository(session)
        for workspace_id in sorted(pending):  # one order for every replica: fewer deadlocks
            events = pending[workspace_id]
            live = await repo.survivors(workspace_id, sorted({e.profile_id for e in events}))
            log_rows = [{"id": e.data.event_id, "profile_id": live.get(e.profile_id, e.profile_id),
                         "name": e.data.label, "at": e.occurred_at, "properties": e.data.properties}
                        for e in events if isinstance(e.data, Tracked)]
            fresh = await repo.insert_events(workspace_id, log_rows)
            plans: dict[str, Plan] = {}
            for e in sorted(events, key=lambda e: e.occurred_at):
                plan = plans.setdefault(live.get(e.profile_id, e.profile_id), Plan())
                match e.data:
                    case TraitsChanged(traits=traits):
                        for name, value in traits.items():
                            plan.set_trait(name, value, e.occurred_at)
                        plan.trigger = {"type": "traits", "event_id": str(e.id)}
                    case ConsentChanged(consent=consent):
                        for purpose, state in consent.items():
                            plan.set_consent(purpose, state)
                        plan.trigger = {"type": "consent", "event_id": str(e.id)}
                    case Tracked(event_id=event_id, label=label) as tracked if event_id in fresh:
                        plan.seen.append(Seen(event_id, label, e.occurred_at, tracked.properties))
                        plan.trigger = {"type": "event", "event_id": event_id}
                    case _:
                        continue  # an event stored before: a redelivery changes nothing
                plan.trace_headers = e.trace_headers
            await self._evaluate(repo, workspace_id, plans)

    async def _retire(self, session: AsyncSession, event: StreamEvent) -> None:
        """A merge moves the merged profile's events to the survivor, whose memberships are
        recomputed; an erasure forgets the profile and keeps a tombstone. Either way its
        memberships end."""
        repo = SegmentRepository(session)
        workspace_id = event.workspace_id
        if isinstance(event.data, Merged):
            gone, survivor = event.data.merged_id, event.data.survivor_id
            trigger = {"type": "merge", "merged_id": gone, "survivor_id": survivor}
        else:
            gone, survivor, trigger = event.profile_id, None, {"type": "deleted"}
        rows, _ = await repo.lock_profiles(workspace_id, [p for p in (gone, survivor) if p])
        if rows[gone].merged_into or rows[gone].deleted_at:
            return  # already retired: a redelivered or overtaken announcement
        while survivor and rows[survivor].merged_into:  # the survivor was merged on since: follow it
            survivor = rows[survivor].merged_into
            rows.update((await repo.lock_profiles(workspace_id, [survivor]))[0])
        if survivor and rows[survivor].deleted_at:
            survivor = None  # merged into someone erased since: forget this one too
        now = self.clock.now()
        memberships = await repo.memberships_of(workspace_id, [gone])
        catalog = await self._catalog(repo, workspace_id)
        with tracer.start_as_current_span("segment.retire", context=context_from_headers(event.trace_headers)):
            entries = [self._change_event(workspace_id, gone, segment_id, version, False, now, trigger)
                       for segment_id, version in memberships[gone].items()]
            await repo.retire_profile(workspace_id, gone, survivor, now)
            cache = [(cache_key(workspace_id, segment_id), gone, False) for segment_id in memberships[gone]]
            await self.outbox.add(session, entries)
            self._after_commit(session, cache)
            if survivor:
                plan = Plan(affected=set(catalog.defs), trigger=trigger, trace_headers=event.trace_headers,
                            last_seen=rows[gone].last_seen)
                for purpose, state in rows[gone].consent.items():  # as the profile service merges it
                    plan.set_consent(purpose, state)
                await self._evaluate(repo, workspace_id, {survivor: plan}, rematerialize=True)
