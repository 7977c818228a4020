"""Scheduled loops of the segment service: membership timers, backfills after a segment
changes, the hourly RFM edge refresh and the Redis membership-set reconcile."""

import asyncio

from kit.loops import repeat
from services.segment.memberships import CACHE_TTL_SECONDS, Memberships, Plan, cache_key
from services.segment.repository import SegmentRepository


class ScheduledLoops(Memberships):
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

    # -- RFM edges --------------------------------------------------------------------
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

    # -- the Redis membership sets ----------------------------------------------------
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
