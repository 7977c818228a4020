"""Live runs through the real services: entries from tracked events, sends through dispatch
on durable timers, goals, versions, pause and resume."""

from datetime import timedelta

from tests.dispatch.test_send_pipeline import person, receiver  # noqa: F401 (fixture)
from tests.journey.live import publish, received, templates, track, until


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
    stats = (await workspace.admin.get(f"/v1/journeys/{journey['id']}/stats")).json()
    assert stats["entered"] == 1 and stats["completed"] == 1
