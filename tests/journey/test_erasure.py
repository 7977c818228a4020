"""An erased person in the journey service: their runs stay for the journey's counts but name
no one and keep no context or step detail, and an event or trait change of theirs that
arrives late starts nothing and is not kept."""

import uuid
from datetime import datetime, timezone

from sqlalchemy import func, select

from kit.payloads import EVENTS, TraitsChanged, Tracked
from kit.streams import StreamEvent
from services.journey.models import profiles, runs
from tests.support.api import person
from tests.support.journeys import publish, received, templates, track, welcome
from tests.support.streams import consumed_past, last_entry
from tests.support.waiting import eventually


async def _consumed(redis, journey_platform, workspace_id: str, event_type: bytes) -> None:
    def match(fields):
        return fields[b"workspace_id"].decode() == workspace_id and fields[b"type"] == event_type
    entry = await eventually(lambda: last_entry(redis, EVENTS, match))
    await consumed_past(redis, EVENTS, journey_platform.settings.consumer_group, entry)


async def test_an_erased_persons_runs_name_no_one_and_late_news_of_them_starts_nothing(
        workspace, receiver, redis, journey_platform):
    await templates(workspace, receiver, "welcome", "coupon")
    journey = await publish(workspace, welcome())
    profile_id = await person(workspace, "leaving", timezone="Asia/Seoul")
    await track(workspace, "leaving", "Signed Up", coupon="WELCOME10")
    await eventually(lambda: received(receiver) == ["welcome"])
    (run,) = (await workspace.admin.get(f"/v1/profiles/{profile_id}/journey-runs")).json()["runs"]

    assert (await workspace.admin.delete(f"/v1/profiles/{profile_id}")).status_code == 200
    await _consumed(redis, journey_platform, workspace.id, b"profile.deleted")
    erased = (await workspace.admin.get(f"/v1/journey-runs/{run['id']}")).json()
    assert (erased["profileId"], erased["status"], erased["endReason"]) == ("", "exited", "profile erased")
    assert [s["kind"] for s in erased["steps"]][-1] == "exited"
    assert all(s["detail"] in (None, {}) for s in erased["steps"])  # the entry's event, the send's delivery: gone
    async with journey_platform.sessions() as session:
        context = await session.scalar(select(runs.c.context).where(runs.c.id == uuid.UUID(run["id"])))
    assert context == {}

    # What was on its way when they were erased: their signup again, a trait change.
    now = datetime.now(timezone.utc)
    for payload in (Tracked(str(uuid.uuid4()), "Signed Up", {"type": "track", "event": "Signed Up"}),
                    TraitsChanged({"timezone": "Europe/Paris"})):
        await redis.xadd(EVENTS, StreamEvent(uuid.uuid4(), payload.event_type, workspace.id, profile_id, now,
                                             payload.body()).to_fields())
    await _consumed(redis, journey_platform, workspace.id, b"profile.traits_changed")
    stats = (await workspace.admin.get(f"/v1/journeys/{journey['id']}/stats")).json()
    assert (stats["entered"], stats["active"]) == (1, 0)
    async with journey_platform.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(runs).where(
            runs.c.workspace_id == workspace.id, runs.c.profile_id == profile_id)) == 0
        assert await session.scalar(select(func.count()).select_from(profiles).where(
            profiles.c.workspace_id == workspace.id, profiles.c.profile_id == profile_id)) == 0
    assert received(receiver) == ["welcome"]
