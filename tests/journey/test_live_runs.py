"""Live runs through the real services: entries from tracked events, sends through dispatch
on durable timers, goals, versions, pause and resume."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.dispatch.test_channels_through_the_pipeline import AD_POLICY
from tests.dispatch.test_send_pipeline import consent, person
from tests.journey.live import publish, received, stats_once_ended, templates, track, until

KST = ZoneInfo("Asia/Seoul")


def welcome(next_days: int = 2) -> dict:
    return {
        "trigger": {"kind": "event", "event": "Signed Up"},
        "goal": {"event": "Order Completed"},
        "start": "welcome",
        "nodes": {
            "welcome": {"kind": "send", "channels": ["webhook"], "template": "welcome", "advertising": False,
                        "next": "later"},
            "later": {"kind": "wait", "duration": f"P{next_days}D", "next": "coupon"},
            "coupon": {"kind": "send", "channels": ["webhook"], "template": "coupon", "advertising": False},
        },
    }


async def test_signup_sends_now_then_on_day_two_on_the_timer(workspace, receiver, journey_clock):
    await templates(workspace, receiver, "welcome", "coupon")
    journey = await publish(workspace, welcome())
    await person(workspace, "u-welcome")
    await track(workspace, "u-welcome", "Signed Up")
    await until(lambda: received(receiver) == ["welcome"])
    journey_clock.advance(timedelta(days=1, hours=23))
    await track(workspace, "u-other", "Page Viewed")  # time passes; nothing due yet
    assert received(receiver) == ["welcome"]
    journey_clock.advance(timedelta(hours=1, seconds=1))
    await until(lambda: received(receiver) == ["welcome", "coupon"])
    stats = await until(lambda: stats_once_ended(workspace, journey["id"]))  # the end commits after the send
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
    run = await until(lambda: _run_at(workspace, profile_id, "welcome"))
    morning = (evening + timedelta(days=1)).replace(hour=8)
    assert datetime.fromisoformat(run["nextAt"]) == morning and received(receiver) == []

    for clock in (journey_clock, dispatch_clock):
        clock.set(morning + timedelta(seconds=1))
    await until(lambda: received(receiver) == ["night-ad"])
    run = await until(lambda: _run_at(workspace, profile_id, "later"))
    steps = (await workspace.admin.get(f"/v1/journey-runs/{run['id']}")).json()["steps"]
    assert [(s["kind"], s["outcome"]) for s in steps if s["nodeId"] == "welcome"] == [
        ("deferred", "night_rule"), ("send", "sent")]
    # the day-two wait counts from the morning send, not from the evening signup
    assert datetime.fromisoformat(run["nextAt"]) == morning + timedelta(days=2)


async def _run_at(ws, profile_id: str, node_id: str) -> dict | None:
    runs = (await ws.admin.get(f"/v1/profiles/{profile_id}/journey-runs")).json()["runs"]
    return next((r for r in runs if r["nodeId"] == node_id and r["nextAt"]), None)
