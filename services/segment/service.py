"""Use cases of the segment service: managing segments and RFM settings, and the queries
of the API (counts, members, membership, preview, explain).

`SegmentService` is the one object the transport and `__main__` hold; the stream handlers
(`consumers.py`) and scheduled loops (`scheduled.py`) are mixed into it over the shared
evaluation core (`memberships.py`), so every path shares one set of caches.
"""

import uuid
from datetime import datetime

import rules as rule_language
from kit.errors import FailedPrecondition, InvalidArgument, NotFound
from kit.labels import checked_description, checked_name
from kit.transport import json_argument
from kit.zones import zone_of
from rules.evaluation import ProfileFacts, evaluate
from rules.facts import build_series
from services.segment.consumers import StreamHandlers
from services.segment.engine import Catalog, SegmentDef, leaves
from services.segment.explain import explain
from services.segment.memberships import (CACHE_TTL_SECONDS, DEFAULT_ORDER_EVENT, DEFAULT_REVENUE_PROPERTY, Plan,
                                          cache_key)
from services.segment.models import audit_log
from services.segment.repository import SegmentRepository
from services.segment.scheduled import ScheduledLoops

__all__ = ["CACHE_TTL_SECONDS", "Plan", "SegmentService", "cache_key"]

PREVIEW = "__preview__"


class SegmentService(StreamHandlers, ScheduledLoops):
    # -- segment definitions ----------------------------------------------------------
    async def create(self, workspace_id: str, actor: str, name: str, description: str, rules_json: str) -> dict:
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
            await audit_log.record(session, workspace_id, actor, "segment.create", segment_id, detail={"name": name})
            row = await repo.segment(workspace_id, segment_id)
        self.backfill_wanted.set()
        return _segment_dict(row)

    async def update(self, workspace_id: str, actor: str, segment_id: str, name: str | None,
                     description: str | None, rules_json: str | None) -> dict:
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
            await audit_log.record(session, workspace_id, actor, "segment.update", segment_id,
                                   detail={"changed": sorted(set(values) & {"name", "description", "rules"}),
                                           "version": values.get("version", row.version)})
            row = await repo.segment(workspace_id, segment_id)
        self.backfill_wanted.set()
        return _segment_dict(row)

    async def delete(self, workspace_id: str, actor: str, segment_id: str) -> None:
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
            await audit_log.record(session, workspace_id, actor, "segment.delete", segment_id)
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

    # -- RFM settings (the edge refresh itself is in scheduled.py) ---------------------
    async def rfm_settings(self, workspace_id: str) -> dict:
        async with self.sessions() as session:
            row = await SegmentRepository(session).rfm(workspace_id)
        return {"order_event": row.order_event if row else DEFAULT_ORDER_EVENT,
                "revenue_property": row.revenue_property if row else DEFAULT_REVENUE_PROPERTY}

    async def set_rfm_settings(self, workspace_id: str, actor: str, order_event: str, revenue_property: str) -> dict:
        for value, path in ((order_event, "settings.order_event"), (revenue_property, "settings.revenue_property")):
            if not value.strip():
                raise InvalidArgument(f"{path}: expected a non-empty string", field=path)
        async with self.sessions() as session, session.begin():
            await SegmentRepository(session).set_rfm(workspace_id, order_event=order_event,
                                                     revenue_property=revenue_property, edges=None, edges_at=None)
            await audit_log.record(session, workspace_id, actor, "rfm_settings.update",
                                   detail={"order_event": order_event, "revenue_property": revenue_property})
        await self.refresh_rfm(workspace_id, force=True)
        return await self.rfm_settings(workspace_id)

    # -- queries ----------------------------------------------------------------------
    async def count(self, workspace_id: str, segment_id: str) -> tuple[int, dict]:
        async with self.sessions() as session:
            repo = SegmentRepository(session)
            row = await self._existing(repo, workspace_id, segment_id)
            return await repo.count_members(workspace_id, segment_id), _segment_dict(row)

    async def members(self, workspace_id: str, actor: str, segment_id: str, size: int, cursor: str,
                      action: str | None = "segment.members.read") -> tuple[list, str]:
        """A page of members; `action` names the audit row (None: the next page of an export
        that has its row)."""
        size = min(max(size or 100, 1), 10_000)
        async with self.sessions() as session, session.begin():
            repo = SegmentRepository(session)
            await self._existing(repo, workspace_id, segment_id)
            rows = await repo.members_after(workspace_id, segment_id, cursor, size + 1)
            if action:
                await audit_log.record(session, workspace_id, actor, action, segment_id)
        return rows[:size], (rows[size - 1].profile_id if len(rows) > size else "")

    async def is_member(self, workspace_id: str, actor: str, segment_id: str, profile_id: str) -> tuple[bool, str]:
        """O(1) from the Redis set when it is ready; from the database otherwise."""
        key = cache_key(workspace_id, segment_id)
        async with self.sessions() as session, session.begin():
            repo = SegmentRepository(session)
            profile_id = (await repo.survivors(workspace_id, [profile_id])).get(profile_id, profile_id)
            if await self.redis.exists(f"{key}:ready"):
                member = bool(await self.redis.sismember(key, profile_id))
            else:
                await self._existing(repo, workspace_id, segment_id)
                member = await repo.is_member(workspace_id, segment_id, profile_id)
            await audit_log.record(session, workspace_id, actor, "segment.membership.read", segment_id, profile_id)
            return member, profile_id

    async def export_profile(self, workspace_id: str, profile_ids: list[str]) -> dict:
        """What this service keeps about a person (GDPR export)."""
        async with self.sessions() as session:
            return await SegmentRepository(session).held_about(workspace_id, profile_ids)

    async def preview(self, workspace_id: str, actor: str, rules_json: str,
                      sample_size: int) -> tuple[int, int, list[str]]:
        """Evaluates an unsaved rule over every profile, in pages, writing nothing."""
        tree, rule = _parse(rules_json)
        sample_size = min(max(sample_size or 10, 1), 100)
        now = self.clock.now()
        count, total, sample, after = 0, 0, [], ""
        async with self.sessions() as session, session.begin():
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
            await audit_log.record(session, workspace_id, actor, "segment.preview",  # who matches: a sample of people
                                   detail={"count": count, "sample": len(sample)})
        return count, total, sample

    async def explain(self, workspace_id: str, actor: str, segment_id: str, rules_json: str, profile_id: str,
                      events_since: datetime | None = None) -> dict:
        """Each condition's value and verdict for one profile now; with `events_since`, event
        conditions count only the events at or after it (traits, memberships, last seen and
        RFM stay the profile's whole story)."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
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
            # the values of the person's traits and events, read
            await audit_log.record(session, workspace_id, actor, "segment.explain", segment_id or None, profile_id)
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


def _parse(rules_json: str) -> tuple[object, object]:
    tree = json_argument(rules_json, "rules", empty="null")
    return tree, rule_language.parse(tree)


def _segment_dict(row) -> dict:
    return {"id": row.id, "name": row.name, "description": row.description, "rules": row.rules,
            "version": row.version, "created_at": row.created_at, "updated_at": row.updated_at,
            "backfill": {"state": row.backfill_state, "done": row.backfill_done, "total": row.backfill_total,
                         "version": row.version, "started_at": row.backfill_started_at,
                         "finished_at": row.backfill_finished_at}}
