"""The core every path of the segment service shares: applying a plan to profiles and
writing what changed (used by the stream handlers, timers and backfills), the workspace's
parsed segments, and the Redis membership sets that follow each commit.

Every membership change happens in a transaction that holds the profile's row lock (the
profile's mutex across replicas) and writes the membership, its timer and its
entered / exited event (outbox) together; Redis is updated after the commit.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from opentelemetry import trace
from redis.asyncio import Redis
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import rules as rule_language
from kit.clock import Clock
from kit.logs import get_logger
from kit.outbox import Outbox
from kit.payloads import MembershipChanged
from kit.tracing import context_from_headers
from kit.zones import zone_of
from rules.evaluation import ProfileFacts, RfmModel
from rules.facts import Seen, apply_event, build_series
from services.segment.clients import JourneyUsages
from services.segment.engine import Catalog, SegmentDef, reevaluate
from services.segment.repository import SegmentRepository, decode_series, encode_series

log = get_logger(__name__)
tracer = trace.get_tracer("nudge.segment")

DEFAULT_ORDER_EVENT = "Order Completed"
DEFAULT_REVENUE_PROPERTY = "revenue"
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
        if _newest(self.consent.get(purpose), state):
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


@dataclass
class Loaded:
    """One profile as an evaluation sees it: its facts, the series still to build from
    history, and the trait times and consent to store back."""
    facts: ProfileFacts
    missing: set[tuple]
    trait_times: dict
    consent: dict


@dataclass
class Changes:
    """What one evaluation writes, gathered over its profiles."""
    entered: list = field(default_factory=list)
    exited: list = field(default_factory=list)
    timers: list = field(default_factory=list)
    entries: list = field(default_factory=list)
    cache: list = field(default_factory=list)
    profile_rows: list = field(default_factory=list)


class Memberships:
    """State and steps shared by the use cases, the stream handlers and the scheduled loops
    (they are mixed into one `SegmentService`, so one object holds one set of caches)."""

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

    # -- evaluation shared by the stream, timers and backfills ------------------------
    async def _evaluate(self, repo: SegmentRepository, workspace_id: str, plans: dict[str, Plan],
                        rematerialize: bool = False) -> int:
        """Applies each plan to its profile (locked here) and writes what changed. Returns
        the number of membership changes."""
        if not plans:
            return 0
        rows, new = await self._lock_current_profiles(repo, workspace_id, plans)
        if not plans:
            return 0
        now = self.clock.now()  # read after the locks: a timer that fired meanwhile is seen
        catalog = await self._catalog(repo, workspace_id)
        for profile_id in new & set(plans):  # someone new: every segment may want them (`not …`, `count ≥ 0`)
            plans[profile_id].affected |= set(catalog.defs)
        members = await repo.memberships_of(workspace_id, list(plans))
        current_timers = await repo.timers_of(workspace_id, list(plans))
        loaded = {profile_id: _load(catalog, rows[profile_id], plan, members[profile_id], rematerialize)
                  for profile_id, plan in plans.items()}
        await _build_missing_series(repo, workspace_id, catalog, plans, loaded)
        changes = Changes()
        for profile_id, plan in plans.items():
            self._decide(workspace_id, profile_id, plan, loaded[profile_id].facts, catalog, now, changes)
            changes.profile_rows.append(_profile_row(profile_id, loaded[profile_id], rows[profile_id].series,
                                                     catalog, rematerialize))
        await self._write(repo, workspace_id, changes, current_timers)
        return len(changes.entries)

    async def _lock_current_profiles(self, repo: SegmentRepository, workspace_id: str,
                                     plans: dict[str, Plan]) -> tuple[dict, set[str]]:
        """Locks the plans' profiles. A profile merged away or erased while this change was
        on its way (another partition, a replica that was faster): the change belongs to the
        survivor (its plan moves there, locked too), or to nobody (its plan is dropped)."""
        rows, new = await repo.lock_profiles(workspace_id, list(plans))
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
        return rows, new

    def _decide(self, workspace_id: str, profile_id: str, plan: Plan, profile: ProfileFacts, catalog: Catalog,
                now: datetime, changes: Changes) -> None:
        """Adds the plan's events to the profile's series, re-evaluates the affected
        segments and gathers the changes, their events and the profile's next timers."""
        for seen in plan.seen:
            plan.affected |= apply_event(profile, catalog.index, seen)
        with tracer.start_as_current_span("segment.evaluate", context=context_from_headers(plan.trace_headers),
                                          attributes={"nudge.profile_id": profile_id,
                                                      "nudge.segments": len(plan.affected)}):
            verdict = reevaluate(catalog, profile, plan.affected, now)
            for change in verdict.changes:
                at = plan.at.get(change.segment_id, now)
                if change.entered:
                    changes.entered.append((change.segment_id, profile_id, change.version, at))
                else:
                    changes.exited.append((change.segment_id, profile_id))
                changes.entries.append(self._change_event(workspace_id, profile_id, change.segment_id,
                                                          change.version, change.entered, at, plan.trigger))
                changes.cache.append((cache_key(workspace_id, change.segment_id), profile_id, change.entered))
        changes.timers += [(s, profile_id, due) for s, due in verdict.timers.items()]

    async def _write(self, repo: SegmentRepository, workspace_id: str, changes: Changes,
                     current_timers) -> None:
        await repo.write_profiles(workspace_id, changes.profile_rows)
        await repo.write_memberships(workspace_id, changes.entered, changes.exited)
        await repo.write_timers(workspace_id, changes.timers, current_timers)
        await self.outbox.add(repo.session, changes.entries)
        self._after_commit(repo.session, changes.cache)

    def _change_event(self, workspace_id: str, profile_id: str, segment_id: str, version: int, entered: bool,
                      at: datetime, trigger: dict) -> dict:
        change = MembershipChanged("entered" if entered else "exited", segment_id, version, at, trigger)
        return self.outbox.event(change, workspace_id, profile_id, at)

    # -- the Redis membership sets ----------------------------------------------------
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

    async def _refresh_rfm_edges(self, repo: SegmentRepository, workspace_id: str, now: datetime) -> bool:
        row = await repo.rfm(workspace_id)
        event = row.order_event if row else DEFAULT_ORDER_EVENT
        prop = row.revenue_property if row else DEFAULT_REVENUE_PROPERTY
        edges = await repo.rfm_edges(workspace_id, event, prop, now)
        await repo.set_rfm(workspace_id, order_event=event, revenue_property=prop, edges=edges, edges_at=now)
        return edges != (row.edges if row else None)


# -- the steps of an evaluation that need no service state ------------------------------
def _load(catalog: Catalog, row, plan: Plan, memberships, rematerialize: bool) -> Loaded:
    """The profile's stored facts with the plan's traits and consent applied, and the series
    the affected segments (and the events' series) need: stored ones decoded, the others
    listed as missing."""
    if plan.seen:
        plan.affected |= catalog.on_activity
    # The series the events can feed are loaded too; which segments they change is
    # known once the events are applied (property filters decide).
    fed = {k for seen in plan.seen for k in catalog.index.by_event.get(seen.name, {})}
    traits, trait_times = _apply_traits(catalog, row, plan)
    consent = _apply_consent(catalog, row, plan)
    last_seen = max(filter(None, [row.last_seen, plan.last_seen]), default=None)
    stored = {} if rematerialize else row.series
    could_change = set().union(*(catalog.index.segments_of[k] for k in fed)) if fed else set()
    keys = catalog.needed_keys(plan.affected | could_change) | fed
    facts = ProfileFacts(
        traits=traits, last_seen=last_seen, rfm=catalog.rfm, zone=zone_of(traits),
        segments=frozenset(memberships), consent=consent,
        series={k: decode_series(stored[catalog.digest_of[k]]) for k in keys
                if catalog.digest_of[k] in stored})
    return Loaded(facts, keys - set(facts.series), trait_times, consent)


def _apply_traits(catalog: Catalog, row, plan: Plan) -> tuple[dict, dict]:
    """The stored traits with the plan's changes, unless a newer value is already stored."""
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
    return traits, trait_times


def _apply_consent(catalog: Catalog, row, plan: Plan) -> dict:
    consent = dict(row.consent)
    for purpose, state in plan.consent.items():
        if _newest(consent.get(purpose), state):
            consent[purpose] = state
            plan.affected |= catalog.affected_by_consent({purpose})
    return consent


def _newest(held: dict | None, state: dict) -> bool:
    """Whether a consent record replaces the one held: the newest wins, by when it was given."""
    return held is None or held["at"] <= state["at"]


async def _build_missing_series(repo: SegmentRepository, workspace_id: str, catalog: Catalog,
                                plans: dict[str, Plan], loaded: dict[str, Loaded]) -> None:
    """Builds the series no profile row holds yet from the stored event history."""
    needy = [p for p, profile in loaded.items() if profile.missing]
    history = await repo.history(workspace_id, needy, {k[0] for p in needy for k in loaded[p].missing})
    for profile_id, plan in plans.items():
        profile = loaded[profile_id]
        for key in profile.missing:
            profile.facts.series[key] = build_series(catalog.condition_of(key), history[profile_id])
            if plan.seen:  # built from a history that already holds this batch's events
                plan.affected |= catalog.index.segments_of.get(key, set())


def _profile_row(profile_id: str, profile: Loaded, stored_series: dict, catalog: Catalog,
                 rematerialize: bool) -> dict:
    """The profile row to store: its series kept for the current segments, updated ones encoded."""
    series = {} if rematerialize else {d: v for d, v in stored_series.items() if d in catalog.keys}
    series.update({catalog.digest_of[k]: encode_series(v) for k, v in profile.facts.series.items()})
    return {"profile_id": profile_id, "traits": profile.facts.traits, "trait_times": profile.trait_times,
            "last_seen": profile.facts.last_seen, "series": series, "consent": profile.consent}
