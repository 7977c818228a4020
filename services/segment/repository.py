"""Queries of the segment service. Every method takes the workspace and scopes by it; bulk
writes go through unnest so a batch of any size is one statement."""

from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text as TextType
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import rows_about
from rules.evaluation import EventSeries
from services.segment.models import events, memberships, profiles, rfm_settings, segments, timers


@dataclass
class StoredEvent:
    id: str
    name: str
    at: datetime
    properties: dict


def encode_series(series: EventSeries) -> dict:
    return {"t": [t.timestamp() for t in series.times], "v": series.values, "i": series.ids}


def decode_series(stored: dict) -> EventSeries:
    return EventSeries([datetime.fromtimestamp(t, timezone.utc) for t in stored["t"]],
                       list(stored["v"]), list(stored["i"]))


def any_of(column, values: list):
    """column = ANY(array): one bind parameter whatever the count, so the plan stays an index
    lookup (an IN list of thousands gets a generic plan that scans)."""
    return column == func.any(func.cast(list(values), ARRAY(TextType)))


class SegmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- segments ---------------------------------------------------------------------
    async def segments(self, workspace_id: str, lock: bool = False) -> list:
        query = select(segments).where(segments.c.workspace_id == workspace_id).order_by(segments.c.id)
        return list((await self.session.execute(query.with_for_update() if lock else query)).all())

    async def segment(self, workspace_id: str, segment_id: str, lock: bool = False):
        query = select(segments).where(segments.c.workspace_id == workspace_id, segments.c.id == segment_id)
        return (await self.session.execute(query.with_for_update() if lock else query)).first()

    async def insert_segment(self, **values) -> None:
        await self.session.execute(insert(segments).values(**values))

    async def update_segment(self, workspace_id: str, segment_id: str, **values) -> None:
        await self.session.execute(update(segments).where(
            segments.c.workspace_id == workspace_id, segments.c.id == segment_id).values(**values))

    async def delete_segment(self, workspace_id: str, segment_id: str) -> None:
        for table in (memberships, timers):
            await self.session.execute(delete(table).where(
                table.c.workspace_id == workspace_id, table.c.segment_id == segment_id))
        await self.session.execute(delete(segments).where(
            segments.c.workspace_id == workspace_id, segments.c.id == segment_id))

    async def all_segment_ids(self) -> list[tuple[str, str]]:
        return [(r.workspace_id, r.id) for r in await self.session.execute(
            select(segments.c.workspace_id, segments.c.id))]

    async def rfm_workspaces(self) -> list[str]:
        return list((await self.session.execute(select(rfm_settings.c.workspace_id))).scalars())

    async def claim_backfill(self):
        """A running backfill no other replica is working on right now."""
        return (await self.session.execute(
            select(segments).where(segments.c.backfill_state == "running")
            .order_by(segments.c.backfill_started_at).limit(1).with_for_update(skip_locked=True))).first()

    async def count_profiles(self, workspace_id: str) -> int:
        return await self.session.scalar(select(func.count()).select_from(profiles).where(
            profiles.c.workspace_id == workspace_id, profiles.c.merged_into.is_(None),
            profiles.c.deleted_at.is_(None)))

    async def profile_ids_after(self, workspace_id: str, cursor: str, limit: int) -> list[str]:
        return list((await self.session.execute(
            select(profiles.c.profile_id).where(profiles.c.workspace_id == workspace_id,
                                                profiles.c.merged_into.is_(None), profiles.c.deleted_at.is_(None),
                                                profiles.c.profile_id > cursor)
            .order_by(profiles.c.profile_id).limit(limit))).scalars())

    # -- RFM --------------------------------------------------------------------------
    async def rfm(self, workspace_id: str):
        return (await self.session.execute(
            select(rfm_settings).where(rfm_settings.c.workspace_id == workspace_id))).first()

    async def set_rfm(self, workspace_id: str, **values) -> None:
        stmt = insert(rfm_settings).values(workspace_id=workspace_id, **values)
        await self.session.execute(stmt.on_conflict_do_update(index_elements=[rfm_settings.c.workspace_id],
                                                              set_=values))

    async def rfm_edges(self, workspace_id: str, order_event: str, revenue_property: str,
                        now: datetime) -> dict | None:
        """Quintile edges of the workspace's customers: the moments of their last order (as
        epoch seconds: a fixed moment, so a later refresh over the same orders gives the same
        edges), their number of orders and their revenue."""
        row = (await self.session.execute(text(
            "WITH c AS (SELECT profile_id, EXTRACT(EPOCH FROM (:now - max(at))) / 86400 AS days, count(*) AS n, "
            "  sum(CASE WHEN jsonb_typeof(properties -> :prop) = 'number' "
            "           THEN (properties ->> :prop)::float8 ELSE 0 END) AS revenue "
            "  FROM events WHERE workspace_id = :ws AND name = :event AND at <= :now GROUP BY profile_id) "
            "SELECT percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY days), "
            "       percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY n), "
            "       percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY revenue), count(*) FROM c"),
            {"ws": workspace_id, "event": order_event, "prop": revenue_property, "now": now})).one()
        if not row[3]:
            return None
        return {"r": [round(now.timestamp() - days * 86400) for days in row[0]],
                "f": [float(x) for x in row[1]], "m": [float(x) for x in row[2]]}

    # -- profiles and their events ----------------------------------------------------
    async def survivors(self, workspace_id: str, profile_ids: list[str]) -> dict[str, str]:
        """merged id → live id, for the given ids that were merged away (chains followed)."""
        found: dict[str, str] = {}
        pending = list(profile_ids)
        while pending:
            rows = await self.session.execute(
                select(profiles.c.profile_id, profiles.c.merged_into).where(
                    profiles.c.workspace_id == workspace_id, any_of(profiles.c.profile_id, pending),
                    profiles.c.merged_into.is_not(None)))
            step = {r.profile_id: r.merged_into for r in rows}
            for merged, into in step.items():
                for source, target in found.items():
                    if target == merged:
                        found[source] = into
                found.setdefault(merged, into)
            pending = [into for into in step.values() if into not in found]
        return found

    async def insert_events(self, workspace_id: str, rows: list[dict]) -> set[str]:
        """Stores events not stored before; returns the ids of those that were new."""
        if not rows:
            return set()
        result = await self.session.execute(text(
            "INSERT INTO events (workspace_id, id, profile_id, name, at, properties) "
            "SELECT :ws, * FROM unnest(CAST(:ids AS uuid[]), CAST(:profiles AS text[]), CAST(:names AS text[]), "
            "  CAST(:ats AS timestamptz[]), CAST(:props AS jsonb[])) "
            "ON CONFLICT DO NOTHING RETURNING id"),
            {"ws": workspace_id, "ids": [r["id"] for r in rows], "profiles": [r["profile_id"] for r in rows],
             "names": [r["name"] for r in rows], "ats": [r["at"] for r in rows],
             "props": [orjson.dumps(r["properties"]).decode() for r in rows]})
        return {str(i) for i in result.scalars()}

    async def lock_profiles(self, workspace_id: str, profile_ids: list[str]) -> tuple[dict[str, object], set[str]]:
        """Creates the profiles not seen before and locks them all, in one sorted order so
        concurrent batches queue instead of deadlocking. Returns the rows and the new ids."""
        ids = sorted(set(profile_ids))
        if not ids:
            return {}, set()
        created = await self.session.execute(text(
            "INSERT INTO profiles (workspace_id, profile_id) SELECT :ws, p FROM unnest(CAST(:ids AS text[])) AS p "
            "ORDER BY p ON CONFLICT DO NOTHING RETURNING profile_id"), {"ws": workspace_id, "ids": ids})
        new = set(created.scalars())
        rows = await self.session.execute(
            select(profiles).where(profiles.c.workspace_id == workspace_id, any_of(profiles.c.profile_id, ids))
            .order_by(profiles.c.profile_id).with_for_update())
        return {r.profile_id: r for r in rows}, new

    async def read_profiles(self, workspace_id: str, after: str, limit: int) -> list:
        return list((await self.session.execute(
            select(profiles).where(profiles.c.workspace_id == workspace_id, profiles.c.merged_into.is_(None),
                                   profiles.c.deleted_at.is_(None), profiles.c.profile_id > after)
            .order_by(profiles.c.profile_id).limit(limit))).all())

    async def profile(self, workspace_id: str, profile_id: str):
        return (await self.session.execute(select(profiles).where(
            profiles.c.workspace_id == workspace_id, profiles.c.profile_id == profile_id))).first()

    async def history(self, workspace_id: str, profile_ids: list[str], names: set[str]) -> dict[str, list]:
        """The stored events of these names for each profile, oldest first."""
        found: dict[str, list] = {p: [] for p in profile_ids}
        if not profile_ids or not names:
            return found
        rows = await self.session.execute(text(
            "SELECT profile_id, id, name, at, properties FROM events WHERE workspace_id = :ws "
            "AND profile_id = ANY(CAST(:ids AS text[])) AND name = ANY(CAST(:names AS text[])) ORDER BY at, id"),
            {"ws": workspace_id, "ids": profile_ids, "names": sorted(names)})
        for r in rows:
            found[r.profile_id].append(StoredEvent(str(r.id), r.name, r.at, r.properties))
        return found

    async def move_events(self, workspace_id: str, event_ids: list[str], profile_id: str) -> None:
        if event_ids:
            await self.session.execute(update(events).where(
                events.c.workspace_id == workspace_id, events.c.id.in_(event_ids)).values(profile_id=profile_id))

    async def delete_events(self, workspace_id: str, event_ids: list[str]) -> None:
        if event_ids:
            await self.session.execute(delete(events).where(
                events.c.workspace_id == workspace_id, events.c.id.in_(event_ids)))

    async def write_profiles(self, workspace_id: str, rows: list[dict]) -> None:
        if not rows:
            return
        await self.session.execute(text(
            "UPDATE profiles AS p SET traits = u.traits, trait_times = u.trait_times, last_seen = u.last_seen, "
            "  series = u.series, consent = u.consent "
            "FROM unnest(CAST(:ids AS text[]), CAST(:traits AS jsonb[]), CAST(:times AS jsonb[]), "
            "  CAST(:seen AS timestamptz[]), CAST(:series AS jsonb[]), CAST(:consent AS jsonb[])) "
            "  AS u(id, traits, trait_times, last_seen, series, consent) "
            "WHERE p.workspace_id = :ws AND p.profile_id = u.id"),
            {"ws": workspace_id, "ids": [r["profile_id"] for r in rows],
             "traits": [orjson.dumps(r["traits"]).decode() for r in rows],
             "times": [orjson.dumps(r["trait_times"]).decode() for r in rows],
             "seen": [r["last_seen"] for r in rows],
             "series": [orjson.dumps(r["series"]).decode() for r in rows],
             "consent": [orjson.dumps(r["consent"]).decode() for r in rows]})

    async def retire_profile(self, workspace_id: str, profile_id: str, merged_into: str | None,
                             now: datetime) -> None:
        """A profile merged away keeps a row that redirects to the survivor; an erased one
        keeps an empty tombstone (so late events for it, or for ids merged into it, are
        dropped) and loses its events."""
        if merged_into is None:
            await self.session.execute(delete(events).where(
                events.c.workspace_id == workspace_id, events.c.profile_id == profile_id))
            await self.session.execute(update(profiles).where(
                profiles.c.workspace_id == workspace_id,
                (profiles.c.profile_id == profile_id) | (profiles.c.merged_into == profile_id))
                .values(deleted_at=now, traits={}, trait_times={}, series={}, last_seen=None, consent={}))
        else:
            await self.session.execute(update(events).where(
                events.c.workspace_id == workspace_id, events.c.profile_id == profile_id)
                .values(profile_id=merged_into))
            await self.session.execute(update(profiles).where(
                profiles.c.workspace_id == workspace_id, profiles.c.profile_id == profile_id)
                .values(merged_into=merged_into, series={}, traits={}, consent={}))
            await self.session.execute(update(profiles).where(
                profiles.c.workspace_id == workspace_id, profiles.c.merged_into == profile_id)
                .values(merged_into=merged_into))
        for table in (memberships, timers):
            await self.session.execute(delete(table).where(
                table.c.workspace_id == workspace_id, table.c.profile_id == profile_id))

    async def held_about(self, workspace_id: str, profile_ids: list[str]) -> dict:
        """Everything kept about these profiles: their traits, consent and event aggregates,
        their events, memberships and membership timers."""
        return {"profiles": await rows_about(self.session, profiles, workspace_id, profile_ids, profiles.c.profile_id),
                "events": await rows_about(self.session, events, workspace_id, profile_ids, events.c.at, events.c.id),
                "memberships": await rows_about(self.session, memberships, workspace_id, profile_ids,
                                                memberships.c.segment_id),
                "timers": await rows_about(self.session, timers, workspace_id, profile_ids, timers.c.due_at)}

    # -- memberships and timers -------------------------------------------------------
    async def memberships_of(self, workspace_id: str, profile_ids: list[str]) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {p: {} for p in profile_ids}
        rows = await self.session.execute(
            select(memberships.c.profile_id, memberships.c.segment_id, memberships.c.version).where(
                memberships.c.workspace_id == workspace_id, any_of(memberships.c.profile_id, profile_ids)))
        for r in rows:
            found[r.profile_id][r.segment_id] = r.version
        return found

    async def write_memberships(self, workspace_id: str, entered: list[tuple[str, str, int, datetime]],
                                exited: list[tuple[str, str]]) -> None:
        """entered: (segment, profile, version, since); exited: (segment, profile)."""
        if entered:
            await self.session.execute(text(
                "INSERT INTO memberships (workspace_id, segment_id, profile_id, version, since) "
                "SELECT :ws, * FROM unnest(CAST(:segs AS text[]), CAST(:profiles AS text[]), "
                "  CAST(:versions AS int[]), CAST(:since AS timestamptz[])) ON CONFLICT DO NOTHING"),
                {"ws": workspace_id, "segs": [e[0] for e in entered], "profiles": [e[1] for e in entered],
                 "versions": [e[2] for e in entered], "since": [e[3] for e in entered]})
        if exited:
            await self.session.execute(text(
                "DELETE FROM memberships AS m USING unnest(CAST(:segs AS text[]), CAST(:profiles AS text[])) "
                "AS x(segment_id, profile_id) WHERE m.workspace_id = :ws AND m.segment_id = x.segment_id "
                "AND m.profile_id = x.profile_id"),
                {"ws": workspace_id, "segs": [e[0] for e in exited], "profiles": [e[1] for e in exited]})

    async def timers_of(self, workspace_id: str, profile_ids: list[str]) -> dict[tuple[str, str], datetime]:
        rows = await self.session.execute(
            select(timers.c.segment_id, timers.c.profile_id, timers.c.due_at).where(
                timers.c.workspace_id == workspace_id, any_of(timers.c.profile_id, profile_ids)))
        return {(r.segment_id, r.profile_id): r.due_at for r in rows}

    async def write_timers(self, workspace_id: str, due: list[tuple[str, str, datetime | None]],
                           current: dict[tuple[str, str], datetime] | None = None) -> None:
        """(segment, profile, due_at): a None clears that timer. Given the `current` timers,
        only the ones that change are written."""
        if current is not None:
            due = [(s, p, at) for s, p, at in due if current.get((s, p)) != at]
            due = [(s, p, at) for s, p, at in due if at is not None or (s, p) in current]
        clear = [(s, p) for s, p, at in due if at is None]
        arm = [(s, p, at) for s, p, at in due if at is not None]
        if clear:
            await self.session.execute(text(
                "DELETE FROM timers AS t USING unnest(CAST(:segs AS text[]), CAST(:profiles AS text[])) "
                "AS x(segment_id, profile_id) WHERE t.workspace_id = :ws AND t.segment_id = x.segment_id "
                "AND t.profile_id = x.profile_id"),
                {"ws": workspace_id, "segs": [c[0] for c in clear], "profiles": [c[1] for c in clear]})
        if arm:
            await self.session.execute(text(
                "INSERT INTO timers (workspace_id, segment_id, profile_id, due_at) "
                "SELECT :ws, * FROM unnest(CAST(:segs AS text[]), CAST(:profiles AS text[]), "
                "  CAST(:due AS timestamptz[])) "
                "ON CONFLICT (workspace_id, segment_id, profile_id) DO UPDATE SET due_at = excluded.due_at"),
                {"ws": workspace_id, "segs": [a[0] for a in arm], "profiles": [a[1] for a in arm],
                 "due": [a[2] for a in arm]})

    async def claim_due_profiles(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """Profiles with a due timer, locked for this transaction; a profile another replica
        (or an event batch) holds is skipped and taken on a later pass."""
        rows = await self.session.execute(text(
            "SELECT p.workspace_id, p.profile_id FROM timers AS t JOIN profiles AS p "
            "  ON p.workspace_id = t.workspace_id AND p.profile_id = t.profile_id "
            "WHERE t.due_at <= :now ORDER BY t.due_at LIMIT :limit FOR UPDATE OF p SKIP LOCKED"),
            {"now": now, "limit": limit})
        return list(dict.fromkeys((r.workspace_id, r.profile_id) for r in rows))

    async def due_timers(self, workspace_id: str, profile_ids: list[str], now: datetime) -> dict[str, dict]:
        """profile → {segment: due_at} of its due timers."""
        rows = await self.session.execute(
            select(timers.c.profile_id, timers.c.segment_id, timers.c.due_at).where(
                timers.c.workspace_id == workspace_id, any_of(timers.c.profile_id, profile_ids),
                timers.c.due_at <= now))
        found: dict[str, dict] = {}
        for r in rows:
            found.setdefault(r.profile_id, {})[r.segment_id] = r.due_at
        return found

    async def count_members(self, workspace_id: str, segment_id: str) -> int:
        return await self.session.scalar(select(func.count()).select_from(memberships).where(
            memberships.c.workspace_id == workspace_id, memberships.c.segment_id == segment_id))

    async def members_after(self, workspace_id: str, segment_id: str, after: str, limit: int) -> list:
        return list((await self.session.execute(
            select(memberships.c.profile_id, memberships.c.since, memberships.c.version).where(
                memberships.c.workspace_id == workspace_id, memberships.c.segment_id == segment_id,
                memberships.c.profile_id > after).order_by(memberships.c.profile_id).limit(limit))).all())

    async def is_member(self, workspace_id: str, segment_id: str, profile_id: str) -> bool:
        return await self.session.scalar(select(func.count()).select_from(memberships).where(
            memberships.c.workspace_id == workspace_id, memberships.c.segment_id == segment_id,
            memberships.c.profile_id == profile_id)) > 0
