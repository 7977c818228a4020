"""Use cases of the segment service: keeping memberships current from the event stream, on
timers and by backfill, and the management and query calls of the API.

Every membership change happens in a transaction that holds the profile's row lock (the
profile's mutex across replicas) and writes the membership, its timer and its
entered / exited event (outbox) together; Redis is updated after the commit.
"""

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from opentelemetry import trace
from redis.asyncio import Redis
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.clock import Clock
from kit.errors import FailedPrecondition, InvalidArgument, NotFound
from kit.labels import checked_description, checked_name
from kit.logs import get_logger
from kit.loops import repeat
from kit.outbox import Outbox
from kit.streams import StreamEvent
from kit.tracing import context_from_headers
from kit.transport import json_argument
from kit.zones import zone_of
import rules as rule_language
from services.segment.engine import Catalog, SegmentDef, leaves, reevaluate
from rules.evaluation import ProfileFacts, RfmModel, evaluate
from services.segment.explain import explain
from rules.facts import Seen, apply_event, build_series
from services.segment.clients import JourneyUsages
from services.segment.repository import SegmentRepository, decode_series, encode_series

log = get_logger(__name__)
tracer = trace.get_tracer("nudge.segment")

SEGMENTS = "nudge.segments.v1"  # segment.entered / segment.exited
DEFAULT_ORDER_EVENT = "Order Completed"
DEFAULT_REVENUE_PROPERTY = "revenue"
PREVIEW = "__preview__"
CACHE_TTL_SECONDS = 600


def cache_key(workspace_id: str, segment_id: str) -> str:
    return f"nudge:segment:{workspace_id}:{segment_id}"


@dataclass
class Plan:
    """What to re-evaluate for one profile, and why."""
    affected: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    traits: dict = field(default_factory=dict)  # name → (value, set at)
    trigger: dict = field(default_factory=dict)
    trace_headers: dict = field(default_factory=dict)
    at: dict[str, datetime] = field(default_factory=dict)  # segment → when its change took effect
    last_seen: datetime | None = None  # activity carried over from a merged profile
    consent: dict = field(default_factory=dict)  # purpose → {"granted", "at"}, from consent events

    def set_consent(self, purpose: str, state: dict) -> None:
        """The newest record of a purpose wins (by the time the consent was given), as in the profile service."""
        held = self.consent.get(purpose)
        if held is None or held["at"] <= state["at"]:
            self.consent[purpose] = {"granted": state["granted"], "at": state["at"]}

    def set_trait(self, name: str, value, at: datetime) -> None:
        """traits: name → (value, when the profile service set it); the newest wins."""
        if name not in self.traits or self.traits[name][1] <= at:
            self.traits[name] = (value, at)

    def absorb(self, other: "Plan") -> None:
        """Takes over the plan of a profile that turned out to be merged into this one."""
        self.affected |= other.affected
        self.seen += other.seen
        for name, (value, at) in other.traits.items():
            self.set_trait(name, value, at)
        self.last_seen = max(filter(None, [self.last_seen, other.last_seen]), default=None)
        for purpose, state in other.consent.items():
            self.set_consent(purpose, state)
        self.trigger = other.trigger or self.trigger
        self.trace_headers = other.trace_headers or self.trace_headers


class SegmentService:
    def __init__(self, sessions: async_sessionmaker, redis: Redis, outbox: Outbox, clock: Clock,
                 journeys: JourneyUsages, on_commit=lambda: None, timer_batch: int = 500,
                 backfill_batch: int = 1000) -> None:
        self.sessions = sessions
        self.redis = redis
        self.outbox = outbox
        self.clock = clock
        self.journeys = journeys
        self.on_commit = on_commit
        self.timer_batch = timer_batch
        self.backfill_batch = backfill_batch
        self._catalogs: dict[str, tuple[tuple, Catalog]] = {}
        self._rules: dict[tuple[str, int], object] = {}
        self._after_commit_tasks: set[asyncio.Task] = set()
        self.backfill_wanted = asyncio.Event()

    # -- the stream -------------------------------------------------------------------
    async def handle(self, session: AsyncSession, batch: list[StreamEvent]) -> None:
        """Consumer batch handler: events and trait changes are evaluated together per
        workspace; merges and erasures in stream order between them."""
        pending: dict[str, list[StreamEvent]] = {}
        for event in batch:
            if event.type in ("profile.merged", "profile.deleted"):
                await self._flush(session, pending)
                pending = {}
                await self._retire(session, event)
            elif event.type.startswith("event.") or event.type in ("profile.traits_changed",
                                                                    "profile.consent_changed"):
                pending.setdefault(event.workspace_id, []).append(event)
        await self._flush(session, pending)

    async def _flush(self, session: AsyncSession, pending: dict[str, list[StreamEvent]]) -> None:
        repo = SegmentRepository(session)
        for workspace_id in sorted(pending):  # one order for every replica: fewer deadlocks
            events = pending[workspace_id]
            live = await repo.survivors(workspace_id, sorted({e.profile_id for e in events}))
            log_rows = [{"id": e.payload["event_id"], "profile_id": live.get(e.profile_id, e.profile_id),
                         "name": _label(e.payload), "at": e.occurred_at,
                         "properties": e.payload.get("properties") or {}}
                        for e in events if e.type.startswith("event.")]
            fresh = await repo.insert_events(workspace_id, log_rows)
            plans: dict[str, Plan] = {}
            for e in sorted(events, key=lambda e: e.occurred_at):
                plan = plans.setdefault(live.get(e.profile_id, e.profile_id), Plan())
                if e.type == "profile.traits_changed":
                    for name, value in (e.payload.get("traits") or {}).items():
                        plan.set_trait(name, value, e.occurred_at)
                    plan.trigger = {"type": "traits", "event_id": str(e.id)}
                elif e.type == "profile.consent_changed":
                    for purpose, state in (e.payload.get("consent") or {}).items():
                        plan.set_consent(purpose, state)
                    plan.trigger = {"type": "consent", "event_id": str(e.id)}
                elif e.payload["event_id"] in fresh:
                    plan.seen.append(Seen(e.payload["event_id"], _label(e.payload), e.occurred_at,
                                          e.payload.get("properties") or {}))
                    plan.trigger = {"type": "event", "event_id": e.payload["event_id"]}
                else:
                    continue  # an event stored before: a redelivery changes nothing
                plan.trace_headers = e.trace_headers
            await self._evaluate(repo, workspace_id, plans)

    async def _retire(self, session: AsyncSession, event: StreamEvent) -> None:
        """A merge moves the merged profile's events to the survivor, whose memberships are
        recomputed; an erasure forgets the profile and keeps a tombstone. Either way its
        memberships end."""
        repo = SegmentRepository(session)
        workspace_id = event.workspace_id
        if event.type == "profile.merged":
            gone, survivor = event.payload["merged_id"], event.payload["survivor_id"]
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

    # -- evaluation shared by the stream, timers and backfills ------------------------
    async def _evaluate(self, repo: SegmentRepository, workspace_id: str, plans: dict[str, Plan],
                        rematerialize: bool = False) -> int:
        """Applies each plan to its profile (locked here) and writes what changed. Returns
        the number of membership changes."""
        if not plans:
            return 0
        rows, new = await repo.lock_profiles(workspace_id, list(plans))
        # Merged away or erased while this change was on its way (another partition, a
        # replica that was faster): the change belongs to the survivor, or to nobody.
        while moved := {p: rows[p].merged_into for p in plans if rows[p].merged_into}:
            for gone, target in moved.items():
                plan = plans.pop(gone)
                await repo.move_events(workspace_id, [s.id for s in plan.seen], target)
                plans.setdefault(target, Plan()).absorb(plan)
            more, more_new = await repo.lock_profiles(workspace_id, sorted(set(moved.values())))
            rows.update(more)
            new |= more_new
        for erased in [p for p in plans if rows[p].deleted_at]:
            await repo.delete_events(workspace_id, [s.id for s in plans.pop(erased).seen])
        if not plans:
            return 0
        now = self.clock.now()  # read after the locks: a timer that fired meanwhile is seen
        catalog = await self._catalog(repo, workspace_id)
        for profile_id in new & set(plans):  # someone new: every segment may want them (`not …`, `count ≥ 0`)
            plans[profile_id].affected |= set(catalog.defs)
        members = await repo.memberships_of(workspace_id, list(plans))
        current_timers = await repo.timers_of(workspace_id, list(plans))
        facts: dict[str, ProfileFacts] = {}
        missing: dict[str, set[tuple]] = {}
        times_of: dict[str, dict] = {}
        consent_of: dict[str, dict] = {}
        for profile_id, plan in plans.items():
            row = rows[profile_id]
            if plan.seen:
                plan.affected |= catalog.on_activity
            # The series the events can feed are loaded too; which segments they change is
            # known once the events are applied (property filters decide).
            fed = {k for seen in plan.seen for k in catalog.index.by_event.get(seen.name, {})}
            traits, trait_times = dict(row.traits), dict(row.trait_times)
            for name, (value, at) in plan.traits.items():
                if name in trait_times and datetime.fromisoformat(trait_times[name]) > at:
                    continue  # a newer value is already here: this change arrived late
                trait_times[name] = at.isoformat()
                if value is None:
                    traits.pop(name, None)
                else:
                    traits[name] = value
                plan.affected |= catalog.affected_by_traits({name})
            times_of[profile_id] = trait_times
            consent = dict(row.consent)
            for purpose, state in plan.consent.items():
                if purpose in consent and consent[purpose]["at"] > state["at"]:
                    continue  # a newer record is already here
                consent[purpose] = state
                plan.affected |= catalog.affected_by_consent({purpose})
            consent_of[profile_id] = consent
            last_seen = max(filter(None, [row.last_seen, plan.last_seen]), default=None)
            stored = {} if rematerialize else row.series
            could_change = set().union(*(catalog.index.segments_of[k] for k in fed)) if fed else set()
            keys = catalog.needed_keys(plan.affected | could_change) | fed
            facts[profile_id] = ProfileFacts(
                traits=traits, last_seen=last_seen, rfm=catalog.rfm, zone=zone_of(traits),
                segments=frozenset(members[profile_id]), consent=consent,
                series={k: decode_series(stored[catalog.digest_of[k]]) for k in keys
                        if catalog.digest_of[k] in stored})
            missing[profile_id] = keys - set(facts[profile_id].series)
        needy = [p for p, keys in missing.items() if keys]
        history = await repo.history(workspace_id, needy, {k[0] for p in needy for k in missing[p]})
        entered, exited, timers, entries, cache, profile_rows = [], [], [], [], [], []
        for profile_id, plan in plans.items():
            profile = facts[profile_id]
            for key in missing[profile_id]:
                profile.series[key] = build_series(catalog.condition_of(key), history[profile_id])
                if plan.seen:  # built from a history that already holds this batch's events
                    plan.affected |= catalog.index.segments_of.get(key, set())
            for seen in plan.seen:
                plan.affected |= apply_event(profile, catalog.index, seen)
            with tracer.start_as_current_span("segment.evaluate", context=context_from_headers(plan.trace_headers),
                                              attributes={"nudge.profile_id": profile_id,
                                                          "nudge.segments": len(plan.affected)}):
                verdict = reevaluate(catalog, profile, plan.affected, now)
                for change in verdict.changes:
                    at = plan.at.get(change.segment_id, now)
                    if change.entered:
                        entered.append((change.segment_id, profile_id, change.version, at))
                    else:
                        exited.append((change.segment_id, profile_id))
                    entries.append(self._change_event(workspace_id, profile_id, change.segment_id, change.version,
                                                      change.entered, at, plan.trigger))
                    cache.append((cache_key(workspace_id, change.segment_id), profile_id, change.entered))
            timers += [(s, profile_id, due) for s, due in verdict.timers.items()]
            series = {} if rematerialize else {d: v for d, v in rows[profile_id].series.items() if d in catalog.keys}
            series.update({catalog.digest_of[k]: encode_series(v) for k, v in profile.series.items()})
            profile_rows.append({"profile_id": profile_id, "traits": profile.traits,
                                 "trait_times": times_of[profile_id], "last_seen": profile.last_seen,
                                 "series": series, "consent": consent_of[profile_id]})
        await repo.write_profiles(workspace_id, profile_rows)
        await repo.write_memberships(workspace_id, entered, exited)
        await repo.write_timers(workspace_id, timers, current_timers)
        await self.outbox.add(repo.session, entries)
        self._after_commit(repo.session, cache)
        return len(entries)

    def _change_event(self, workspace_id: str, profile_id: str, segment_id: str, version: int, entered: bool,
                      at: datetime, trigger: dict) -> dict:
        return self.outbox.event(
            SEGMENTS, "segment.entered" if entered else "segment.exited", workspace_id, profile_id, at,
            {"segment_id": segment_id, "segment_version": version, "at": at.isoformat(), "trigger": trigger})

    def _after_commit(self, session: AsyncSession, cache: list[tuple[str, str, bool]]) -> None:
        """After this transaction commits, the Redis membership sets follow (cache key,
        profile, entered) and the outbox relay is woken. Nothing happens on a rollback."""
        if not cache:
            return

        def committed(_session) -> None:
            task = asyncio.get_running_loop().create_task(self._apply_cache(cache))
            self._after_commit_tasks.add(task)
            task.add_done_callback(self._after_commit_tasks.discard)
            self.on_commit()

        sa_event.listen(session.sync_session, "after_commit", committed, once=True)

    async def _apply_cache(self, cache: list[tuple[str, str, bool]]) -> None:
        final = {(key, profile_id): entered for key, profile_id, entered in cache}  # the last change wins
        grouped: dict[tuple[str, bool], list[str]] = {}
        for (key, profile_id), entered in final.items():
            grouped.setdefault((key, entered), []).append(profile_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for (key, entered), profile_ids in grouped.items():  # one command per set and direction
                    (pipe.sadd if entered else pipe.srem)(key, *profile_ids)
                await pipe.execute()
        except Exception:
            log.exception("membership cache update failed; the cache is rebuilt from the database")
            for key in {key for key, _, _ in cache}:
                await self.redis.delete(f"{key}:ready")

    # -- timers -----------------------------------------------------------------------
    async def fire_due_timers(self) -> int:
        """Re-evaluates the memberships whose moment has come (a view leaving its window,
        a quiet period passing). Returns the number of profiles handled."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            repo = SegmentRepository(session)
            claimed = await repo.claim_due_profiles(now, self.timer_batch)
            by_workspace: dict[str, list[str]] = {}
            for workspace_id, profile_id in claimed:
                by_workspace.setdefault(workspace_id, []).append(profile_id)
            for workspace_id, profile_ids in by_workspace.items():
                due = await repo.due_timers(workspace_id, profile_ids, now)
                plans = {}
                for profile_id, timers in due.items():  # a timer moved meanwhile has none due
                    first = min(timers.values())
                    plans[profile_id] = Plan(affected=set(timers), at=timers,
                                             trigger={"type": "timer", "due_at": first.isoformat()})
                catalog = await self._catalog(repo, workspace_id)
                gone = [(s, p, None) for p, timers in due.items() for s in timers if s not in catalog.defs]
                await repo.write_timers(workspace_id, gone)
                await self._evaluate(repo, workspace_id, plans)
        return len(claimed)

    async def run_timers(self, poll_seconds: float = 1.0) -> None:
        await repeat(self.fire_due_timers, poll_seconds, busy=lambda handled: handled >= self.timer_batch,
                     name="timer pass")

    # -- backfills --------------------------------------------------------------------
    async def backfill_once(self) -> bool:
        """One batch of one running backfill; False when there is nothing to do."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            repo = SegmentRepository(session)
            segment = await repo.claim_backfill()
            if segment is None:
                return False
            ids = await repo.profile_ids_after(segment.workspace_id, segment.backfill_cursor, self.backfill_batch)
            if not ids:
                await repo.update_segment(segment.workspace_id, segment.id, backfill_state="done",
                                          backfill_finished_at=now)
                done = (segment.workspace_id, segment.id)
            else:
                plans = {p: Plan(affected={segment.id}, trigger={"type": "backfill", "version": segment.version})
                         for p in ids}
                await self._evaluate(repo, segment.workspace_id, plans)
                await repo.update_segment(segment.workspace_id, segment.id, backfill_cursor=ids[-1],
                                          backfill_done=segment.backfill_done + len(ids),
                                          backfill_total=max(segment.backfill_total,
                                                             segment.backfill_done + len(ids)))
                done = None
        if done:
            await self.rebuild_cache(*done)
        return True

    async def run_backfills(self, poll_seconds: float = 1.0) -> None:
        await repeat(self.backfill_once, poll_seconds, wake=self.backfill_wanted, name="backfill batch")

    async def rebuild_cache(self, workspace_id: str, segment_id: str) -> None:
        """Loads a segment's members into its Redis set; IsMember reads the database until
        the set is marked ready. The mark expires, so a set that drifted (a Redis write lost
        after a commit) is rebuilt within CACHE_TTL_SECONDS."""
        key = cache_key(workspace_id, segment_id)
        await self.redis.delete(f"{key}:ready", key)
        after = ""
        while True:
            async with self.sessions() as session:
                page = await SegmentRepository(session).members_after(workspace_id, segment_id, after, 10_000)
            if not page:
                break
            await self.redis.sadd(key, *[m.profile_id for m in page])
            after = page[-1].profile_id
        await self.redis.set(f"{key}:ready", "1", ex=CACHE_TTL_SECONDS)

    async def reconcile_caches(self) -> None:
        """Rebuilds the membership sets that are not marked ready (new replica, expired mark)."""
        async with self.sessions() as session:
            pairs = await SegmentRepository(session).all_segment_ids()
        for workspace_id, segment_id in pairs:
            if not await self.redis.exists(f"{cache_key(workspace_id, segment_id)}:ready"):
                await self.rebuild_cache(workspace_id, segment_id)

    async def run_cache_reconcile(self, every_seconds: float = 60.0) -> None:
        await repeat(self.reconcile_caches, every_seconds, name="membership cache reconcile")

    # -- segment definitions ----------------------------------------------------------
    async def _catalog(self, repo: SegmentRepository, workspace_id: str) -> Catalog:
        """The workspace's segments, read in the caller's transaction (after its profile
        locks, so a segment committed before is always seen) and parsed once per version."""
        rows = await repo.segments(workspace_id)
        rfm_row = await repo.rfm(workspace_id)
        rfm = RfmModel(rfm_row.order_event if rfm_row else DEFAULT_ORDER_EVENT,
                       rfm_row.revenue_property if rfm_row else DEFAULT_REVENUE_PROPERTY,
                       rfm_row.edges if rfm_row else None)
        signature = (tuple((r.id, r.version) for r in rows), rfm)
        cached = self._catalogs.get(workspace_id)
        if cached and cached[0] == signature:
            return cached[1]
        defs = []
        for r in rows:
            if (r.id, r.version) not in self._rules:
                self._rules[(r.id, r.version)] = rule_language.parse(r.rules)
            defs.append(SegmentDef(r.id, r.version, self._rules[(r.id, r.version)]))
        catalog = Catalog(defs, rfm)
        self._catalogs[workspace_id] = (signature, catalog)
        return catalog

    async def create(self, workspace_id: str, name: str, description: str, rules_json: str) -> dict:
        name, description = checked_name(name), checked_description(description)
        tree, rule = _parse(rules_json)
        now = self.clock.now()
        segment_id = str(uuid.uuid4())
        async with self.sessions() as session, session.begin():
            repo = SegmentRepository(session)
            await self._check_references(repo, workspace_id, segment_id, rule)
            await self._prepare_rfm(repo, workspace_id, rule, now)
            await repo.insert_segment(
                workspace_id=workspace_id, id=segment_id, name=name, description=description, rules=tree,
                version=1, created_at=now, updated_at=now, backfill_state="running", backfill_done=0,
                backfill_total=await repo.count_profiles(workspace_id), backfill_cursor="", backfill_started_at=now)
            row = await repo.segment(workspace_id, segment_id)
        self.backfill_wanted.set()
        return _segment_dict(row)

    async def update(self, workspace_id: str, segment_id: str, name: str | None, description: str | None,
                     rules_json: str | None) -> dict:
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            repo = SegmentRepository(session)
            await repo.segments(workspace_id, lock=True)  # all of them, in id order: edits queue, never deadlock
            row = await self._existing(repo, workspace_id, segment_id)
            values: dict = {"updated_at": now}
            if name is not None:
                values["name"] = checked_name(name)
            if description is not None:
                values["description"] = checked_description(description)
            if rules_json is not None:
                tree, rule = _parse(rules_json)
                if tree != row.rules:
                    await self._check_references(repo, workspace_id, segment_id, rule)
                    await self._prepare_rfm(repo, workspace_id, rule, now)
                    values.update(rules=tree, version=row.version + 1, backfill_state="running", backfill_done=0,
                                  backfill_total=await repo.count_profiles(workspace_id), backfill_cursor="",
                                  backfill_started_at=now, backfill_finished_at=None)
            await repo.update_segment(workspace_id, segment_id, **values)
            row = await repo.segment(workspace_id, segment_id)
        self.backfill_wanted.set()
        return _segment_dict(row)

    async def delete(self, workspace_id: str, segment_id: str) -> None:
        await self.get(workspace_id, segment_id)  # a missing segment is NotFound, whatever journeys say
        # Asked before the transaction: no segment row stays locked while another service answers.
        await self.journeys.refuse_if_used(workspace_id, "segment", segment_id)
        async with self.sessions() as session, session.begin():
            repo = SegmentRepository(session)
            await self._existing(repo, workspace_id, segment_id, lock=True)
            users = sorted(r.name for r in await repo.segments(workspace_id)
                           if segment_id in rule_language.referenced_segments(rule_language.parse(r.rules)))
            if users:
                raise FailedPrecondition(f"segment {segment_id} is used by segment(s) {', '.join(users)}; "
                                         "change those first", field="id")
            await repo.delete_segment(workspace_id, segment_id)
        key = cache_key(workspace_id, segment_id)
        await self.redis.delete(key, f"{key}:ready")

    async def get(self, workspace_id: str, segment_id: str) -> dict:
        async with self.sessions() as session:
            return _segment_dict(await self._existing(SegmentRepository(session), workspace_id, segment_id))

    async def list_segments(self, workspace_id: str, size: int, cursor: str) -> tuple[list[dict], str]:
        size = min(max(size or 50, 1), 500)
        async with self.sessions() as session:
            rows = [r for r in await SegmentRepository(session).segments(workspace_id) if r.id > cursor]
        page = rows[:size]
        return [_segment_dict(r) for r in page], (page[-1].id if len(rows) > size else "")

    async def _existing(self, repo: SegmentRepository, workspace_id: str, segment_id: str, lock: bool = False):
        row = await repo.segment(workspace_id, segment_id, lock=lock)
        if row is None:
            raise NotFound(f"segment {segment_id!r} not found", field="id")
        return row

    async def _check_references(self, repo: SegmentRepository, workspace_id: str, segment_id: str, rule,
                                lock: bool = True) -> None:
        """Refuses cycles. Locks the workspace's segments, so two edits that would close a
        cycle together are checked one after the other."""
        stored = {r.id: r.rules for r in await repo.segments(workspace_id, lock=lock)}

        def rule_of(ref: str):
            return rule_language.parse(stored[ref]) if ref in stored else None

        rule_language.check_no_cycle(segment_id, rule, rule_of)

    async def _prepare_rfm(self, repo: SegmentRepository, workspace_id: str, rule, now: datetime) -> None:
        """A segment with an RFM condition needs the workspace's quintile edges."""
        if any(isinstance(leaf, rule_language.RfmCondition) for leaf in leaves(rule)):
            await self._refresh_rfm_edges(repo, workspace_id, now)

    async def _refresh_rfm_edges(self, repo: SegmentRepository, workspace_id: str, now: datetime) -> bool:
        row = await repo.rfm(workspace_id)
        event = row.order_event if row else DEFAULT_ORDER_EVENT
        prop = row.revenue_property if row else DEFAULT_REVENUE_PROPERTY
        edges = await repo.rfm_edges(workspace_id, event, prop, now)
        await repo.set_rfm(workspace_id, order_event=event, revenue_property=prop, edges=edges, edges_at=now)
        return edges != (row.edges if row else None)

    async def refresh_rfm(self, workspace_id: str, force: bool = False) -> None:
        """Recomputes the workspace's RFM edges; when they moved (new orders), or `force`
        (other settings), every RFM segment is recomputed for every profile (a backfill at
        the same version)."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            repo = SegmentRepository(session)
            if not await self._refresh_rfm_edges(repo, workspace_id, now) and not force:
                return
            catalog = await self._catalog(repo, workspace_id)
            for segment_id in catalog.rfm_segments:
                await repo.update_segment(workspace_id, segment_id, backfill_state="running", backfill_done=0,
                                          backfill_total=await repo.count_profiles(workspace_id),
                                          backfill_cursor="", backfill_started_at=now, backfill_finished_at=None)
        self.backfill_wanted.set()

    async def refresh_all_rfm(self) -> None:
        async with self.sessions() as session:
            workspaces = await SegmentRepository(session).rfm_workspaces()
        for workspace_id in workspaces:
            await self.refresh_rfm(workspace_id)

    async def run_rfm_refresh(self, every_seconds: float = 3600.0) -> None:
        await asyncio.sleep(every_seconds)  # the edges were computed when the segments were saved
        await repeat(self.refresh_all_rfm, every_seconds, name="RFM refresh")

    async def rfm_settings(self, workspace_id: str) -> dict:
        async with self.sessions() as session:
            row = await SegmentRepository(session).rfm(workspace_id)
        return {"order_event": row.order_event if row else DEFAULT_ORDER_EVENT,
                "revenue_property": row.revenue_property if row else DEFAULT_REVENUE_PROPERTY}

    async def set_rfm_settings(self, workspace_id: str, order_event: str, revenue_property: str) -> dict:
        for value, path in ((order_event, "settings.order_event"), (revenue_property, "settings.revenue_property")):
            if not value.strip():
                raise InvalidArgument(f"{path}: expected a non-empty string", field=path)
        async with self.sessions() as session, session.begin():
            await SegmentRepository(session).set_rfm(workspace_id, order_event=order_event,
                                                     revenue_property=revenue_property, edges=None, edges_at=None)
        await self.refresh_rfm(workspace_id, force=True)
        return await self.rfm_settings(workspace_id)

    # -- queries ----------------------------------------------------------------------
    async def count(self, workspace_id: str, segment_id: str) -> tuple[int, dict]:
        async with self.sessions() as session:
            repo = SegmentRepository(session)
            row = await self._existing(repo, workspace_id, segment_id)
            return await repo.count_members(workspace_id, segment_id), _segment_dict(row)

    async def members(self, workspace_id: str, segment_id: str, size: int, cursor: str) -> tuple[list, str]:
        size = min(max(size or 100, 1), 10_000)
        async with self.sessions() as session:
            repo = SegmentRepository(session)
            await self._existing(repo, workspace_id, segment_id)
            rows = await repo.members_after(workspace_id, segment_id, cursor, size + 1)
        return rows[:size], (rows[size - 1].profile_id if len(rows) > size else "")

    async def is_member(self, workspace_id: str, segment_id: str, profile_id: str) -> tuple[bool, str]:
        """O(1) from the Redis set when it is ready; from the database otherwise."""
        key = cache_key(workspace_id, segment_id)
        async with self.sessions() as session:
            repo = SegmentRepository(session)
            profile_id = (await repo.survivors(workspace_id, [profile_id])).get(profile_id, profile_id)
            if await self.redis.exists(f"{key}:ready"):
                return bool(await self.redis.sismember(key, profile_id)), profile_id
            await self._existing(repo, workspace_id, segment_id)
            return await repo.is_member(workspace_id, segment_id, profile_id), profile_id

    async def preview(self, workspace_id: str, rules_json: str, sample_size: int) -> tuple[int, int, list[str]]:
        """Evaluates an unsaved rule over every profile, in pages, writing nothing."""
        tree, rule = _parse(rules_json)
        sample_size = min(max(sample_size or 10, 1), 100)
        now = self.clock.now()
        count, total, sample, after = 0, 0, [], ""
        async with self.sessions() as session:
            repo = SegmentRepository(session)
            await self._check_references(repo, workspace_id, PREVIEW, rule, lock=False)
            catalog = await self._preview_catalog(repo, workspace_id, rule)
            while rows := await repo.read_profiles(workspace_id, after, 2000):
                for profile_id, facts in (await self._facts(repo, workspace_id, catalog, rows)).items():
                    total += 1
                    if evaluate(rule, facts, now).member:
                        count += 1
                        if len(sample) < sample_size:
                            sample.append(profile_id)
                after = rows[-1].profile_id
        return count, total, sample

    async def explain(self, workspace_id: str, segment_id: str, rules_json: str, profile_id: str,
                      events_since: datetime | None = None) -> dict:
        """Each condition's value and verdict for one profile now; with `events_since`, event
        conditions count only the events at or after it (traits, memberships, last seen and
        RFM stay the profile's whole story)."""
        now = self.clock.now()
        async with self.sessions() as session:
            repo = SegmentRepository(session)
            if segment_id:
                tree = (await self._existing(repo, workspace_id, segment_id)).rules
                rule = rule_language.parse(tree)
            else:
                tree, rule = _parse(rules_json)
            profile_id = (await repo.survivors(workspace_id, [profile_id])).get(profile_id, profile_id)
            row = await repo.profile(workspace_id, profile_id)
            if row is None:
                raise NotFound(f"profile {profile_id!r} has no events yet", field="profile_id")
            catalog = await self._preview_catalog(repo, workspace_id, rule)
            facts = (await self._facts(repo, workspace_id, catalog, [row], events_since))[profile_id]
        outcome = evaluate(rule, facts, now)
        return {"member": outcome.member, "profile_id": profile_id, "next_change": outcome.next_change,
                "conditions": explain(tree, rule, facts, now)}

    async def _preview_catalog(self, repo: SegmentRepository, workspace_id: str, rule) -> Catalog:
        current = await self._catalog(repo, workspace_id)
        return Catalog([*current.defs.values(), SegmentDef(PREVIEW, 0, rule)], current.rfm)

    async def _facts(self, repo: SegmentRepository, workspace_id: str, catalog: Catalog,
                     rows: list, events_since: datetime | None = None) -> dict[str, ProfileFacts]:
        """Facts of profiles for a read-only evaluation: every series rebuilt from history
        (from `events_since` on, when given; RFM still counts every order)."""
        ids = [r.profile_id for r in rows]
        keys = catalog.needs[PREVIEW]  # other segments count through their stored memberships
        history = await repo.history(workspace_id, ids, {k[0] for k in keys})
        members = await repo.memberships_of(workspace_id, ids)
        found = {}
        rfm_key = catalog.rfm.series_key if catalog.rfm else None
        for row in rows:
            traits = dict(row.traits)
            every = history[row.profile_id]
            counted = every
            if events_since:
                counted = [e for e in every if e.at >= events_since]
            facts = ProfileFacts(
                traits=traits, last_seen=row.last_seen, rfm=catalog.rfm, zone=zone_of(traits),
                segments=frozenset(members[row.profile_id]), consent=dict(row.consent),
                series={k: build_series(catalog.condition_of(k), counted) for k in keys})
            if events_since and rfm_key in keys:
                facts.rfm_orders = build_series(catalog.condition_of(rfm_key), every)
            found[row.profile_id] = facts
        return found


def _label(payload: dict) -> str:
    """The event's name as rules name it: the track event, the page or screen name, else the call type."""
    return payload.get("event") or payload.get("name") or payload.get("type", "")


def _parse(rules_json: str) -> tuple[object, object]:
    tree = json_argument(rules_json, "rules", empty="null")
    return tree, rule_language.parse(tree)


def _segment_dict(row) -> dict:
    return {"id": row.id, "name": row.name, "description": row.description, "rules": row.rules,
            "version": row.version, "created_at": row.created_at, "updated_at": row.updated_at,
            "backfill": {"state": row.backfill_state, "done": row.backfill_done, "total": row.backfill_total,
                         "version": row.version, "started_at": row.backfill_started_at,
                         "finished_at": row.backfill_finished_at}}
