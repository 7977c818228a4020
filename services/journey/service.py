"""Journey use cases: definitions and their lifecycle, reading runs and stats, and the
simulator.

`JourneyService` is the one object the transport and `__main__` hold; the stream handlers
(`consumers.py`) and scheduled loops (`scheduled.py`) are mixed into it over the shared
core of entering and writing runs (`runs.py`), so every path shares one cache of versions.
"""

import uuid
from datetime import datetime, timedelta

from kit.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from kit.labels import checked_description, checked_name
from kit.transport import json_argument
from kit.zones import SEOUL
from services.journey.consumers import StreamHandlers
from services.journey.definition import BroadcastTrigger, DateTraitTrigger, Journey, Send, parse_journey
from services.journey.engine import EXITED, next_cron, next_date_occurrence
from services.journey.models import audit_log
from services.journey.references import (missing_variable, referenced_segments, referenced_templates,
                                         segment_fields, template_fields)
from services.journey.repository import LIVE, JourneyRepository
from services.journey.runs import finish
from services.journey.scheduled import ScheduledLoops
from services.journey.simulator import MAX_HORIZON, TimelineEvent, simulate

STATUSES = ("draft", "published", "paused", "archived")


class JourneyService(StreamHandlers, ScheduledLoops):
    # -- definitions and lifecycle -----------------------------------------------------------
    async def create(self, workspace_id: str, actor: str, journey_id: str, name: str, description: str,
                     definition_json: str, starter: str = "") -> dict:
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
            await audit_log.record(session, workspace_id, actor, "journey.create", journey_id,
                                   detail={"starter": starter} if starter else None)
        return await self.get(workspace_id, journey_id)

    async def update(self, workspace_id: str, actor: str, journey_id: str, name: str, description: str | None,
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
            await audit_log.record(session, workspace_id, actor, "journey.update", journey_id, detail={
                "changed": sorted(set(values) & {"name", "description", "definition"}),
                "version": values.get("version", row.version)})
        return await self.get(workspace_id, journey_id)

    async def publish(self, workspace_id: str, actor: str, journey_id: str) -> dict:
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
            await audit_log.record(session, workspace_id, actor, "journey.publish", journey_id, detail={"version": 1})
        return await self.get(workspace_id, journey_id)

    async def pause(self, workspace_id: str, actor: str, journey_id: str) -> dict:
        return await self._move(workspace_id, actor, journey_id, "published", "paused", "journey.pause")

    async def resume(self, workspace_id: str, actor: str, journey_id: str) -> dict:
        journey = await self._move(workspace_id, actor, journey_id, "paused", "published", "journey.resume")
        self.timers_wanted.set()
        return journey

    async def archive(self, workspace_id: str, actor: str, journey_id: str) -> dict:
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
            await audit_log.record(session, workspace_id, actor, "journey.archive", journey_id,
                                   detail={"runs_ended": len(ended)})
        self.on_commit()
        return await self.get(workspace_id, journey_id)

    async def delete(self, workspace_id: str, actor: str, journey_id: str) -> None:
        async with self.sessions() as session, session.begin():
            repo = JourneyRepository(session)
            row = await self._existing(repo, workspace_id, journey_id, lock=True)
            if row.status in LIVE:
                raise FailedPrecondition(f"journey {journey_id!r} is {row.status}; archive it before deleting",
                                         field="id")
            await repo.delete_journey(workspace_id, journey_id)
            await audit_log.record(session, workspace_id, actor, "journey.delete", journey_id)

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

    async def _move(self, workspace_id: str, actor: str, journey_id: str, source: str, target: str,
                    action: str) -> dict:
        async with self.sessions() as session, session.begin():
            repo = JourneyRepository(session)
            row = await self._existing(repo, workspace_id, journey_id, lock=True)
            if row.status != source:
                raise FailedPrecondition(f"journey {journey_id!r} is {row.status}, not {source}", field="id")
            await repo.update_journey(workspace_id, journey_id, {"status": target, "updated_at": self.clock.now()})
            await audit_log.record(session, workspace_id, actor, action, journey_id)
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

    # -- reading runs and stats --------------------------------------------------------------
    async def runs_of(self, workspace_id: str, actor: str, profile_id: str, journey_id: str) -> list:
        if not profile_id:
            raise InvalidArgument("profile_id: required", field="profile_id")
        async with self.sessions() as session, session.begin():
            await audit_log.record(session, workspace_id, actor, "journey_runs.read", profile_id, profile_id,
                                   {"journey_id": journey_id} if journey_id else None)
            return await JourneyRepository(session).runs_of_profile(workspace_id, profile_id, journey_id)

    async def run(self, workspace_id: str, actor: str, run_id: str) -> tuple:
        async with self.sessions() as session, session.begin():
            repo = JourneyRepository(session)
            row = await repo.run(workspace_id, run_id)
            if row is None:
                raise NotFound(f"run {run_id!r} not found", field="id")
            await audit_log.record(session, workspace_id, actor, "journey_run.read", str(row.id), row.profile_id,
                                   {"journey_id": row.journey_id})
            return row, await repo.steps_of(row.id)

    async def export_profile(self, workspace_id: str, profile_ids: list[str]) -> dict:
        """What the journey service keeps about a person (GDPR export)."""
        async with self.sessions() as session:
            return await JourneyRepository(session).held_about(workspace_id, profile_ids)

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
        if until is not None and until - start_at > MAX_HORIZON:
            raise InvalidArgument(f"until: at most {MAX_HORIZON.days} days after start_at", field="until")

        async def dry_send(simulation_id, at, person, node, context):
            return await self.platform.dry_send(simulation_id, at, person, node, context, workspace_id)

        return await simulate(journey, journey_id, profile, timeline, start_at, until, dry_send)


def _journey_dict(row) -> dict:
    return {"id": row.id, "name": row.name, "description": row.description, "status": row.status,
            "version": row.version, "definition": row.definition, "created_at": row.created_at,
            "updated_at": row.updated_at}


def _journey_id(journey_id: str) -> str:
    if not journey_id:
        return f"jrn_{uuid.uuid4().hex[:16]}"
    if len(journey_id) > 64 or not journey_id.replace("-", "").replace("_", "").isalnum():
        raise InvalidArgument("id: 1 to 64 letters, digits, - or _", field="id")
    return journey_id
