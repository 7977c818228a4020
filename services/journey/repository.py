"""SQL of the journey service: journeys and versions, runs with their steps, and the three
kinds of due work (run timers, date-trait entries, broadcasts) claimed with
FOR UPDATE SKIP LOCKED."""

import uuid

import orjson
from datetime import datetime, timedelta

from sqlalchemy import ARRAY, Text, Uuid, bindparam, delete, exists, func, literal, null, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import rows_about
from services.journey.engine import ACTIVE, RunState, StepRecord
from services.journey.models import (broadcasts, date_entries, erased_profiles, journey_versions, journeys, profiles,
                                     runs, steps, timers)

LIVE = ("published", "paused")


def _json(value) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _uuids(ids: list[str]):
    """Ids as one uuid[] parameter (`= ANY(…)`): one cached statement whatever the count,
    where an IN list is compiled anew for each length."""
    return bindparam("ids", ids, type_=ARRAY(Uuid(as_uuid=False)))


def run_of(row) -> RunState:
    return RunState(id=str(row.id), workspace_id=row.workspace_id, journey_id=row.journey_id, version=row.version,
                    profile_id=row.profile_id, entered_at=row.entered_at, node_id=row.node_id, status=row.status,
                    variant=row.variant, seq=row.seq, wait=row.wait, context=row.context, ended_at=row.ended_at,
                    end_reason=row.end_reason)


class JourneyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- journeys --------------------------------------------------------------------------
    async def journey(self, workspace_id: str, journey_id: str, lock: bool = False):
        query = select(journeys).where(journeys.c.workspace_id == workspace_id, journeys.c.id == journey_id)
        return (await self.session.execute(query.with_for_update() if lock else query)).one_or_none()

    async def list_journeys(self, workspace_id: str, status: str = "") -> list:
        query = select(journeys).where(journeys.c.workspace_id == workspace_id)
        if status:
            query = query.where(journeys.c.status == status)
        return list(await self.session.execute(query.order_by(journeys.c.created_at, journeys.c.id)))

    async def live_journeys(self, workspace_ids: set[str]) -> list:
        """Published and paused journeys with their latest definition, for routing events."""
        return list(await self.session.execute(select(journeys).where(
            journeys.c.workspace_id.in_(workspace_ids), journeys.c.status.in_(LIVE))))

    async def insert_journey(self, values: dict) -> bool:
        result = await self.session.execute(insert(journeys).values(**values).on_conflict_do_nothing())
        return result.rowcount == 1

    async def update_journey(self, workspace_id: str, journey_id: str, values: dict) -> None:
        await self.session.execute(update(journeys).where(
            journeys.c.workspace_id == workspace_id, journeys.c.id == journey_id).values(**values))

    async def delete_journey(self, workspace_id: str, journey_id: str) -> None:
        for table, column in ((journey_versions, journey_versions.c.journey_id), (date_entries, date_entries.c.journey_id),
                              (broadcasts, broadcasts.c.journey_id), (journeys, journeys.c.id)):
            await self.session.execute(delete(table).where(table.c.workspace_id == workspace_id, column == journey_id))

    async def add_version(self, workspace_id: str, journey_id: str, version: int, definition: dict,
                          at: datetime) -> None:
        await self.session.execute(insert(journey_versions).values(
            workspace_id=workspace_id, journey_id=journey_id, version=version, definition=definition, published_at=at))

    async def versions(self, workspace_id: str, journey_id: str) -> list:
        return list(await self.session.execute(select(journey_versions).where(
            journey_versions.c.workspace_id == workspace_id, journey_versions.c.journey_id == journey_id)
            .order_by(journey_versions.c.version)))

    async def definitions(self, keys: set[tuple[str, str, int]]) -> dict[tuple[str, str, int], dict]:
        """(workspace, journey, version) → definition."""
        if not keys:
            return {}
        rows = await self.session.execute(
            select(journey_versions).where(func.row(journey_versions.c.workspace_id, journey_versions.c.journey_id,
                                                    journey_versions.c.version).in_(list(keys))))
        return {(r.workspace_id, r.journey_id, r.version): r.definition for r in rows}

    # -- runs ------------------------------------------------------------------------------
    async def insert_run(self, run: RunState) -> bool:
        """False when the profile already has a live run of the journey."""
        result = await self.session.execute(insert(runs).values(
            id=uuid.UUID(run.id), workspace_id=run.workspace_id, journey_id=run.journey_id, version=run.version,
            profile_id=run.profile_id, status=run.status, node_id=run.node_id, variant=run.variant, seq=run.seq,
            wait=run.wait, awaited_event=run.awaited_event, context=run.context, entered_at=run.entered_at,
        ).on_conflict_do_nothing(index_elements=["workspace_id", "journey_id", "profile_id"],
                                 index_where=text("status = 'active'")))
        return result.rowcount == 1

    async def save_runs(self, states: list[RunState]) -> None:
        """Every run's new state in one statement (a timer pass writes hundreds)."""
        if not states:
            return
        await self.session.execute(text(
            "UPDATE runs SET status = u.status, node_id = u.node_id, variant = u.variant, seq = u.seq,"
            "  wait = u.wait::jsonb, awaited_event = u.awaited_event, ended_at = u.ended_at,"
            "  end_reason = u.end_reason, profile_id = u.profile_id, context = u.context::jsonb "
            "FROM unnest(CAST(:id AS uuid[]), CAST(:status AS text[]), CAST(:node AS text[]), CAST(:variant AS text[]),"
            "  CAST(:seq AS int[]), CAST(:wait AS text[]), CAST(:awaited AS text[]), CAST(:ended AS timestamptz[]),"
            "  CAST(:reason AS text[]), CAST(:profile AS text[]), CAST(:context AS text[]))"
            "  AS u(id, status, node_id, variant, seq, wait, awaited_event, ended_at, end_reason, profile_id, context) "
            "WHERE runs.id = u.id"), {
                "id": [r.id for r in states], "status": [r.status for r in states],
                "node": [r.node_id for r in states], "variant": [r.variant for r in states],
                "seq": [r.seq for r in states], "wait": [_json(r.wait) for r in states],
                "awaited": [r.awaited_event for r in states], "ended": [r.ended_at for r in states],
                "reason": [r.end_reason for r in states], "profile": [r.profile_id for r in states],
                "context": [_json(r.context) for r in states]})

    async def lock_runs(self, run_ids: list[str]) -> list[RunState]:
        """Locked in (workspace, id) order, the order every transaction of the service uses."""
        rows = await self.session.execute(select(runs).where(runs.c.id == func.any(_uuids(run_ids)))
                                          .order_by(runs.c.workspace_id, runs.c.id).with_for_update())
        return [run_of(r) for r in rows]

    async def lock_live_runs(self, profiles: set[tuple[str, str]]) -> None:
        if profiles:
            await self.session.execute(select(runs.c.id).where(
                func.row(runs.c.workspace_id, runs.c.profile_id).in_(sorted(profiles)), runs.c.status == ACTIVE)
                .order_by(runs.c.workspace_id, runs.c.id).with_for_update())

    async def live_runs_of(self, workspace_id: str, profile_ids: list[str]) -> list[RunState]:
        rows = await self.session.execute(select(runs).where(
            runs.c.workspace_id == workspace_id, runs.c.profile_id.in_(profile_ids), runs.c.status == ACTIVE)
            .order_by(runs.c.id).with_for_update())
        return [run_of(r) for r in rows]

    async def live_runs_of_journey(self, workspace_id: str, journey_id: str) -> list[RunState]:
        rows = await self.session.execute(select(runs).where(
            runs.c.workspace_id == workspace_id, runs.c.journey_id == journey_id, runs.c.status == ACTIVE)
            .order_by(runs.c.id).with_for_update())
        return [run_of(r) for r in rows]

    async def move_runs(self, workspace_id: str, merged_id: str, survivor_id: str) -> None:
        """Every run of a merged profile, live or ended, becomes the survivor's: its history and
        its past entries (for once / cooldown / cap) are the same person's."""
        await self.session.execute(update(runs).where(
            runs.c.workspace_id == workspace_id, runs.c.profile_id == merged_id).values(profile_id=survivor_id))

    async def entries_of(self, workspace_id: str, journey_id: str, profile_id: str) -> list[datetime]:
        return list(await self.session.scalars(select(runs.c.entered_at).where(
            runs.c.workspace_id == workspace_id, runs.c.journey_id == journey_id, runs.c.profile_id == profile_id)))

    async def count_entries(self, workspace_id: str, journey_id: str) -> int:
        return await self.session.scalar(select(func.count()).select_from(runs).where(
            runs.c.workspace_id == workspace_id, runs.c.journey_id == journey_id))

    async def runs_of_profile(self, workspace_id: str, profile_id: str, journey_id: str = "") -> list:
        query = select(runs).where(runs.c.workspace_id == workspace_id, runs.c.profile_id == profile_id)
        if journey_id:
            query = query.where(runs.c.journey_id == journey_id)
        return list(await self.session.execute(query.order_by(runs.c.entered_at.desc()).limit(500)))

    async def run(self, workspace_id: str, run_id: str):
        try:
            key = uuid.UUID(run_id)
        except ValueError:
            return None
        return (await self.session.execute(select(runs).where(
            runs.c.workspace_id == workspace_id, runs.c.id == key))).one_or_none()

    async def steps_of(self, run_id) -> list:
        return list(await self.session.execute(select(steps).where(steps.c.run_id == run_id).order_by(steps.c.seq)))

    async def add_steps(self, records: list[tuple[RunState, StepRecord]]) -> None:
        """Steps of many runs in one statement; a replayed step (same run and seq) is kept once."""
        if not records:
            return
        await self.session.execute(text(
            "INSERT INTO steps (run_id, seq, workspace_id, journey_id, node_id, kind, outcome, detail, at) "
            "SELECT r, s, w, j, n, k, o, d::jsonb, a FROM unnest(CAST(:run AS uuid[]), CAST(:seq AS int[]),"
            "  CAST(:ws AS text[]), CAST(:journey AS text[]), CAST(:node AS text[]), CAST(:kind AS text[]),"
            "  CAST(:outcome AS text[]), CAST(:detail AS text[]), CAST(:at AS timestamptz[]))"
            "  AS u(r, s, w, j, n, k, o, d, a) ON CONFLICT DO NOTHING"), {
                "run": [run.id for run, _ in records], "seq": [r.seq for _, r in records],
                "ws": [run.workspace_id for run, _ in records], "journey": [run.journey_id for run, _ in records],
                "node": [r.node_id for _, r in records], "kind": [r.kind for _, r in records],
                "outcome": [r.outcome for _, r in records], "detail": [_json(r.detail) for _, r in records],
                "at": [r.at for _, r in records]})

    async def stats(self, workspace_id: str, journey_id: str) -> tuple[dict, list, list, list]:
        """Runs by status; per node the runs that reached it, its outcomes, and who waits there."""
        of_journey = (steps.c.workspace_id == workspace_id, steps.c.journey_id == journey_id, steps.c.node_id != "")
        by_status = dict((await self.session.execute(select(runs.c.status, func.count()).where(
            runs.c.workspace_id == workspace_id, runs.c.journey_id == journey_id).group_by(runs.c.status))).all())
        reached = list(await self.session.execute(select(steps.c.node_id, func.count(func.distinct(steps.c.run_id)))
                                                  .where(*of_journey).group_by(steps.c.node_id)))
        outcomes = list(await self.session.execute(
            select(steps.c.node_id, steps.c.kind, steps.c.outcome, func.count()).where(
                *of_journey, steps.c.kind.not_in(("wait", "waited"))).group_by(steps.c.node_id, steps.c.kind,
                                                                                steps.c.outcome)))
        waiting = list(await self.session.execute(select(runs.c.node_id, func.count()).where(
            runs.c.workspace_id == workspace_id, runs.c.journey_id == journey_id, runs.c.status == ACTIVE)
            .group_by(runs.c.node_id)))
        return by_status, reached, outcomes, waiting

    # -- timers ----------------------------------------------------------------------------
    async def set_timers(self, entries: list[tuple[RunState, datetime | None]]) -> None:
        """Each run's next moment (None: no timer); a new moment is unclaimed."""
        gone = [run.id for run, due in entries if due is None]
        if gone:
            await self.session.execute(text("DELETE FROM timers WHERE run_id = ANY(CAST(:ids AS uuid[]))"),
                                       {"ids": gone})
        due = [(run, moment) for run, moment in entries if moment is not None]
        if due:
            await self.session.execute(text(
                "INSERT INTO timers (run_id, workspace_id, journey_id, due_at) "
                "SELECT * FROM unnest(CAST(:run AS uuid[]), CAST(:ws AS text[]), CAST(:journey AS text[]),"
                "  CAST(:due AS timestamptz[])) "
                "ON CONFLICT (run_id) DO UPDATE SET due_at = EXCLUDED.due_at, lease_owner = NULL, lease_until = NULL"),
                {"run": [run.id for run, _ in due], "ws": [run.workspace_id for run, _ in due],
                 "journey": [run.journey_id for run, _ in due], "due": [moment for _, moment in due]})

    async def claim_timers(self, now: datetime, limit: int, owner: str, lease: timedelta) -> dict[str, datetime]:
        """Due timers of published journeys, leased to `owner`: other replicas skip them
        until the lease runs out (then they are taken over)."""
        rows = await self.session.execute(text(
            "UPDATE timers SET lease_owner = :owner, lease_until = :until FROM ("
            "  SELECT t.run_id FROM timers AS t JOIN journeys AS j"
            "    ON j.workspace_id = t.workspace_id AND j.id = t.journey_id AND j.status = 'published'"
            "  WHERE t.due_at <= :now AND (t.lease_until IS NULL OR t.lease_until < :now)"
            "  ORDER BY t.due_at LIMIT :limit FOR UPDATE OF t SKIP LOCKED) AS due "
            "WHERE timers.run_id = due.run_id RETURNING timers.run_id, timers.due_at"),
            {"owner": owner, "until": now + lease, "now": now, "limit": limit})
        return {str(r.run_id): r.due_at for r in rows}

    async def still_leased(self, run_ids: list[str], owner: str) -> set[str]:
        """Of the claimed runs, those whose claim is still this owner's (not retaken, not moved)."""
        rows = await self.session.execute(select(timers.c.run_id).where(
            timers.c.run_id == func.any(_uuids(run_ids)), timers.c.lease_owner == owner))
        return {str(r.run_id) for r in rows}

    async def next_due(self) -> datetime | None:
        return await self.session.scalar(select(func.min(timers.c.due_at)))

    # -- date-trait entries ----------------------------------------------------------------
    async def set_date_entries(self, rows: list[dict]) -> None:
        if rows:
            stmt = insert(date_entries).values(rows)
            await self.session.execute(stmt.on_conflict_do_update(
                index_elements=[date_entries.c.workspace_id, date_entries.c.journey_id, date_entries.c.profile_id],
                set_={"due_at": stmt.excluded.due_at}))

    async def drop_date_entries(self, workspace_id: str, journey_id: str, profile_ids: list[str]) -> None:
        await self.session.execute(delete(date_entries).where(
            date_entries.c.workspace_id == workspace_id, date_entries.c.journey_id == journey_id,
            date_entries.c.profile_id.in_(profile_ids)))

    async def claim_date_entries(self, now: datetime, limit: int) -> list:
        return list(await self.session.execute(text(
            "SELECT d.workspace_id, d.journey_id, d.profile_id, d.due_at FROM date_entries AS d JOIN journeys AS j"
            "  ON j.workspace_id = d.workspace_id AND j.id = d.journey_id AND j.status = 'published' "
            "WHERE d.due_at <= :now ORDER BY d.due_at LIMIT :limit FOR UPDATE OF d SKIP LOCKED"),
            {"now": now, "limit": limit}))

    # -- broadcasts ------------------------------------------------------------------------
    async def set_broadcast(self, values: dict) -> None:
        stmt = insert(broadcasts).values(**values)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[broadcasts.c.workspace_id, broadcasts.c.journey_id],
            set_={k: stmt.excluded[k] for k in values if k not in ("workspace_id", "journey_id")}))

    async def drop_broadcast(self, workspace_id: str, journey_id: str) -> None:
        await self.session.execute(delete(broadcasts).where(
            broadcasts.c.workspace_id == workspace_id, broadcasts.c.journey_id == journey_id))

    async def claim_broadcast(self, now: datetime):
        return (await self.session.execute(text(
            "SELECT b.* FROM broadcasts AS b JOIN journeys AS j"
            "  ON j.workspace_id = b.workspace_id AND j.id = b.journey_id AND j.status = 'published' "
            "WHERE b.due_at <= :now ORDER BY b.due_at LIMIT 1 FOR UPDATE OF b SKIP LOCKED"), {"now": now})).first()

    async def update_broadcast(self, workspace_id: str, journey_id: str, values: dict) -> None:
        await self.session.execute(update(broadcasts).where(
            broadcasts.c.workspace_id == workspace_id, broadcasts.c.journey_id == journey_id).values(**values))

    # -- profiles --------------------------------------------------------------------------
    async def traits_of(self, workspace_id: str, profile_ids: list[str]) -> dict[str, dict]:
        rows = await self.session.execute(select(profiles.c.profile_id, profiles.c.traits).where(
            profiles.c.workspace_id == workspace_id,
            profiles.c.profile_id == func.any(bindparam("profile_ids", profile_ids, type_=ARRAY(Text)))))
        return {r.profile_id: r.traits for r in rows}

    async def lock_profile(self, workspace_id: str, profile_id: str):
        """The profile's row (created if new), locked; None for someone erased."""
        erased = exists().where(erased_profiles.c.workspace_id == workspace_id,
                                erased_profiles.c.profile_id == profile_id)
        await self.session.execute(insert(profiles).from_select(
            ["workspace_id", "profile_id"], select(literal(workspace_id), literal(profile_id)).where(~erased))
            .on_conflict_do_nothing())
        return (await self.session.execute(select(profiles).where(
            profiles.c.workspace_id == workspace_id, profiles.c.profile_id == profile_id).with_for_update())).first()

    async def save_profile(self, workspace_id: str, profile_id: str, traits: dict, trait_times: dict) -> None:
        await self.session.execute(update(profiles).where(
            profiles.c.workspace_id == workspace_id, profiles.c.profile_id == profile_id).values(
            traits=traits, trait_times=trait_times))

    async def profiles_with_trait(self, workspace_id: str, trait: str) -> list:
        return list(await self.session.execute(select(profiles.c.profile_id, profiles.c.traits).where(
            profiles.c.workspace_id == workspace_id, profiles.c.traits.has_key(trait))))

    async def delete_profile(self, workspace_id: str, profile_id: str) -> None:
        for table in (profiles, date_entries):
            await self.session.execute(delete(table).where(
                table.c.workspace_id == workspace_id, table.c.profile_id == profile_id))

    # -- erasure and export ----------------------------------------------------------------
    async def erase_profile(self, workspace_id: str, profile_id: str, now: datetime) -> None:
        """Forgets a person: traits and date entries go; their runs stay for the journeys' counts
        but name nobody, without their context (entry event, traits) or step details."""
        await self.session.execute(insert(erased_profiles).values(
            workspace_id=workspace_id, profile_id=profile_id, at=now).on_conflict_do_nothing())
        await self.delete_profile(workspace_id, profile_id)
        theirs = select(runs.c.id).where(runs.c.workspace_id == workspace_id, runs.c.profile_id == profile_id)
        await self.session.execute(update(steps).where(steps.c.workspace_id == workspace_id, steps.c.run_id.in_(theirs))
                                   .values(detail={}))
        await self.session.execute(update(runs).where(runs.c.workspace_id == workspace_id,
                                                      runs.c.profile_id == profile_id)
                                   .values(profile_id="", context={}, wait=null(), awaited_event=None))

    async def is_erased(self, workspace_id: str, profile_id: str) -> bool:
        return await self.session.scalar(select(erased_profiles.c.at).where(
            erased_profiles.c.workspace_id == workspace_id, erased_profiles.c.profile_id == profile_id)) is not None

    async def held_about(self, workspace_id: str, profile_ids: list[str]) -> dict:
        """Everything kept about these people: runs with their context and steps, traits, date entries."""
        held_runs = await rows_about(self.session, runs, workspace_id, profile_ids, runs.c.entered_at, runs.c.id)
        held_steps = await rows_about(self.session, steps, workspace_id, [r["id"] for r in held_runs],
                                      steps.c.run_id, steps.c.seq, key="run_id")
        by_run: dict = {}
        for step in held_steps:
            by_run.setdefault(step.pop("run_id"), []).append(step)
        for run in held_runs:
            run["steps"] = by_run.get(run["id"], [])
        return {"runs": held_runs,
                "profiles": await rows_about(self.session, profiles, workspace_id, profile_ids, profiles.c.profile_id),
                "date_entries": await rows_about(self.session, date_entries, workspace_id, profile_ids,
                                                 date_entries.c.due_at)}
