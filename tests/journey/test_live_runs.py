"""Live runs through the real services: entries from tracked events, sends through dispatch
on durable timers, goals, versions, pause and resume."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.support.api import consent, person
from tests.support.channels import AD_POLICY
from tests.support.journeys import publish, received, stats_once_ended, templates, track, welcome
from tests.support.waiting import eventually

KST = ZoneInfo("Asia/Seoul")


async def test_signup_sends_now_then_on_day_two_on_the_timer(workspace, receiver, journey_clock):
    await templates(workspace, receiver, "welcome", "coupon")
    journey = await publish(workspace, welcome())
    await person(workspace, "u-welcome")
    await track(workspace, "u-welcome", "Signed Up")
    await eventually(lambda: received(receiver) == ["welcome"])
    journey_clock.advance(timedelta(days=1, hours=23))
    await track(workspace, "u-other", "Page Viewed")  # time passes; nothing due yet
    assert received(receiver) == ["welcome"]
    journey_clock.advance(timedelta(hours=1, seconds=1))
    await eventually(lambda: received(receiver) == ["welcome", "coupon"])
    stats = await eventually(lambda: stats_once_ended(workspace, journey["id"]))  # the end commits after the send
    assert stats["entered"] == 1 and stats["completed"] == 1


async def test_a_send_dispatch_defers_parks_the_run_until_the_moment_dispatch_names(
        workspace, receiver, journey_clock, dispatch_clock):
    await templates(workspace, receiver, "night-ad", "coupon")
    response = await workspace.admin.put("/v1/dispatch-policy", json=AD_POLICY)
    assert response.status_code == 200, response.text
    evening = (datetime.now(KST) + timedelta(days=1)).replace(hour=22, minute=0, second=0, microsecond=0)
    for clock in (journey_clock, dispatch_clock):
        clock.set(evening)
    profile_id = await person(workspace, "night-owl")
    await consent(workspace, profile_id, webhook=True, advertising=True)
    definition = welcome()
    definition["nodes"]["welcome"] |= {"template": "night-ad", "advertising": True}
    await publish(workspace, definition)
    await track(workspace, "night-owl", "Signed Up")
    run = await eventually(lambda: _run_at(workspace, profile_id, "welcome"))
    morning = (evening + timedelta(days=1)).replace(hour=8)
    assert datetime.fromisoformat(run["nextAt"]) == morning and received(receiver) == []

    for clock in (journey_clock, dispatch_clock):
        clock.set(morning + timedelta(seconds=1))
    await eventually(lambda: received(receiver) == ["night-ad"])
    run = await eventually(lambda: _run_at(workspace, profile_id, "later"))
    steps = (await workspace.admin.get(f"/v1/journey-runs/{run['id']}")).json()["steps"]
    assert [(s["kind"], s["outcome"]) for s in steps if s["nodeId"] == "welcome"] == [
        ("deferred", "night_rule"), ("send", "sent")]
    # the day-two wait counts from the morning send, not from the evening signup
    assert datetime.fromisoformat(run["nextAt"]) == morning + timedelta(days=2)


async def _run_at(ws, profile_id: str, node_id: str) -> dict | None:
    runs = (await ws.admin.get(f"/v1/profiles/{profile_id}/journey-runs")).json()["runs"]
    return next((r for r in runs if r["nodeId"] == node_id and r["nextAt"]), None)
