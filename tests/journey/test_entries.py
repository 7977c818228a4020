"""Entries other than a plain event, live: a birthday (date-trait trigger at 09:00 in the
profile's zone, for people known before and after publishing), a broadcast to a segment,
exit criteria, and a merge that moves a run to the surviving profile."""

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.journey.engine import next_date_occurrence
from services.journey.repository import JourneyRepository
from tests.support.api import create_segment, person
from tests.support.journeys import publish, received, templates, track
from tests.support.waiting import eventually

KST = ZoneInfo("Asia/Seoul")


def one_send(trigger: dict, **more) -> dict:
    return {"trigger": trigger, "start": "send", **more,
            "nodes": {"send": {"kind": "send", "channels": ["webhook"], "template": "hello", "advertising": False,
                               "next": "hold"},
                      "hold": {"kind": "wait", "duration": "P30D", "next": "done"}, "done": {"kind": "exit"}}}


async def _runs(ws, user: str) -> list[dict]:
    profile_id = (await ws.admin.get("/v1/profiles", params={"userId": user})).json()["profiles"][0]["id"]
    return (await ws.admin.get(f"/v1/profiles/{profile_id}/journey-runs")).json()["runs"]


async def test_birthday_enters_at_nine_in_the_profiles_zone(workspace, receiver, journey_clock, journey_platform):
    await templates(workspace, receiver, "hello")
    birthday = (datetime.now(KST) + timedelta(days=3)).date().replace(year=1990).isoformat()
    await person(workspace, "known-before", birthday=birthday, timezone="Asia/Seoul")
    known = (await workspace.admin.get("/v1/profiles", params={"userId": "known-before"})).json()["profiles"][0]
    await eventually(lambda: _traits_seen(journey_platform, workspace.id, known["id"]))
    journey = await publish(workspace, one_send({"kind": "date_trait", "trait": "birthday", "at": "09:00"}))
    await person(workspace, "known-after", birthday=birthday, timezone="America/New_York")

    seoul_nine = next_date_occurrence(birthday, time(9), 0, True, {"timezone": "Asia/Seoul"}, datetime.now(KST))
    new_york_nine = next_date_occurrence(birthday, time(9), 0, True, {"timezone": "America/New_York"},
                                         datetime.now(KST))
    assert new_york_nine - seoul_nine == timedelta(hours=14)  # the same day, later on the clock of New York
    journey_clock.set(seoul_nine - timedelta(minutes=1))
    await track(workspace, "known-after", "Page Viewed")
    assert received(receiver) == []
    journey_clock.set(seoul_nine + timedelta(seconds=1))
    await eventually(lambda: len(received(receiver)) == 1)
    journey_clock.set(new_york_nine + timedelta(seconds=1))
    await eventually(lambda: len(received(receiver)) == 2)
    for user, moment in (("known-before", seoul_nine), ("known-after", new_york_nine)):
        [run] = await _runs(workspace, user)
        assert run["journeyId"] == journey["id"] and datetime.fromisoformat(run["enteredAt"]) == moment


async def _traits_seen(journey_platform, workspace_id: str, profile_id: str) -> bool:
    """The journey service learns traits from the stream: publishing plans the birthdays it knows."""
    async with journey_platform.sessions() as session:
        found = await JourneyRepository(session).traits_of(workspace_id, [profile_id])
    return "birthday" in found.get(profile_id, {})


async def test_a_broadcast_enters_every_member_of_its_segment_once(workspace, receiver, journey_clock):
    await templates(workspace, receiver, "hello")
    users = [f"gold-{n}" for n in range(25)]
    response = await workspace.tracking.post("/v1/batch", json={"batch": [
        {"type": "identify", "userId": u, "messageId": str(uuid.uuid4()), "traits": {"plan": "gold"}} for u in users]})
    assert response.status_code == 200, response.text
    segment_id = await create_segment(workspace, "gold", {"trait": "plan", "op": "eq", "value": "gold"})
    await eventually(lambda: _count_is(workspace, segment_id, len(users)))
    at = datetime.now(KST) + timedelta(hours=1)
    await publish(workspace, one_send({"kind": "broadcast", "segment": segment_id, "at": at.isoformat(),
                                       "rate_per_second": 10}))
    assert received(receiver) == []
    journey_clock.set(at + timedelta(seconds=1))
    await eventually(lambda: len(received(receiver)) == len(users), timeout=90)  # paced at 10 a second
    assert len({r["body"]["data"]["run"] for r in receiver.requests}) == len(users)


async def _count_is(ws, segment_id: str, count: int) -> bool:
    return (await ws.admin.get(f"/v1/segments/{segment_id}/count")).json()["count"] == count


async def test_exit_criteria_end_the_run_and_a_merge_moves_it_to_the_survivor(workspace, receiver, journey_clock):
    await templates(workspace, receiver, "hello")
    journey = await publish(workspace, one_send({"kind": "event", "event": "Signed Up"},
                                                exit_criteria={"events": [{"event": "Unsubscribed"}]}))
    await person(workspace, "leaver")
    await track(workspace, "leaver", "Signed Up")
    await eventually(lambda: len(received(receiver)) == 1)
    await track(workspace, "leaver", "Unsubscribed")
    await eventually(lambda: _first_status(workspace, "leaver", "exited"))

    response = await workspace.tracking.post("/v1/track", json={"anonymousId": "anon-merge", "event": "Signed Up"})
    assert response.status_code == 200
    await person(workspace, "merger")
    await eventually(lambda: len(received(receiver)) == 2)  # the anonymous visitor's welcome
    response = await workspace.tracking.post("/v1/identify", json={"userId": "merger", "anonymousId": "anon-merge"})
    assert response.status_code == 200
    runs = await eventually(lambda: _moved(workspace, "merger"))
    assert [(r["journeyId"], r["status"]) for r in runs] == [(journey["id"], "active")]


async def _first_status(ws, user: str, status: str) -> bool:
    runs = await _runs(ws, user)
    return bool(runs) and runs[0]["status"] == status


async def _moved(ws, user: str) -> list | None:
    survivor = (await ws.admin.get("/v1/profiles", params={"userId": user})).json()["profiles"][0]
    runs = (await ws.admin.get(f"/v1/profiles/{survivor['id']}/journey-runs")).json()["runs"]
    return runs if survivor["mergedIds"] and runs else None
