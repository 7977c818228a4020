"""Goals, exit criteria and waited events go by event time, live through the gateway: an
`Order Completed` that happened before the run entered (or before its wait began) and
arrives late converts, exits and satisfies nothing; a newer one still does."""

from datetime import datetime, timedelta

from tests.support.api import person
from tests.support.journeys import publish, received, templates
from tests.support.streams import consumed
from tests.support.waiting import eventually


def _held(**more) -> dict:
    """Signed up → a day's wait → a send; goal or exit criteria given by the caller."""
    return {"trigger": {"kind": "event", "event": "Signed Up"}, "start": "hold", **more,
            "nodes": {"hold": {"kind": "wait", "duration": "P1D", "next": "later"},
                      "later": {"kind": "send", "channels": ["webhook"], "template": "later", "advertising": False}}}


# Signed up → two seconds → wait a day for a purchase: "bought" at once, else nothing.
WAITER = {
    "trigger": {"kind": "event", "event": "Signed Up"},
    "start": "pause",
    "nodes": {
        "pause": {"kind": "wait", "duration": "PT2S", "next": "await"},
        "await": {"kind": "wait_for_event", "event": "Order Completed", "timeout": "P1D", "next": "bought",
                  "timeout_next": "gave_up"},
        "bought": {"kind": "send", "channels": ["webhook"], "template": "bought", "advertising": False},
        "gave_up": {"kind": "exit"},
    },
}


async def _order(ws, user: str, at: datetime | None = None) -> None:
    body = {"userId": user, "event": "Order Completed", "properties": {"revenue": 1000}}
    response = await ws.tracking.post("/v1/track", json=body | ({"timestamp": at.isoformat()} if at else {}))
    assert response.status_code == 200, response.text


async def test_a_late_purchase_dated_before_the_entry_or_the_wait_counts_for_nothing(
        workspace, receiver, journey_platform, redis):
    await templates(workspace, receiver, "later", "bought")
    goal = await publish(workspace, _held(goal={"event": "Order Completed"}))
    exits = await publish(workspace, _held(exit_criteria={"events": [{"event": "Order Completed"}]}))
    waiter = await publish(workspace, WAITER)
    profile_id = await person(workspace, "late-buyer")
    response = await workspace.tracking.post("/v1/track", json={"userId": "late-buyer", "event": "Signed Up"})
    assert response.status_code == 200, response.text

    async def waiting() -> dict | None:
        runs = {r["journeyId"]: r for r in (await workspace.admin.get(
            f"/v1/profiles/{profile_id}/journey-runs")).json()["runs"]}
        return runs if len(runs) == 3 and runs[waiter["id"]]["nodeId"] == "await" else None
    runs = await eventually(waiting)
    entered = datetime.fromisoformat(runs[waiter["id"]]["enteredAt"])
    steps = (await workspace.admin.get(f"/v1/journey-runs/{runs[waiter['id']]['id']}")).json()["steps"]
    wait_began = next(datetime.fromisoformat(s["at"]) for s in steps if s["nodeId"] == "await" and s["kind"] == "wait")
    assert wait_began - entered >= timedelta(seconds=2)

    async def state() -> dict:
        return {r["journeyId"]: (r["status"], r["nodeId"]) for r in (await workspace.admin.get(
            f"/v1/profiles/{profile_id}/journey-runs")).json()["runs"]}

    await _order(workspace, "late-buyer", entered - timedelta(hours=1))  # before every run entered
    await consumed(redis, journey_platform.settings.consumer_group, workspace, "Order Completed", 1)
    assert await state() == {goal["id"]: ("active", "hold"), exits["id"]: ("active", "hold"),
                             waiter["id"]: ("active", "await")}

    await _order(workspace, "late-buyer", entered + (wait_began - entered) / 2)  # after entering, before the wait
    await consumed(redis, journey_platform.settings.consumer_group, workspace, "Order Completed", 2)
    assert await state() == {goal["id"]: ("converted", "hold"), exits["id"]: ("exited", "hold"),
                             waiter["id"]: ("active", "await")}
    assert received(receiver) == []

    await _order(workspace, "late-buyer")  # now: after the wait began
    await eventually(lambda: received(receiver) == ["bought"])

    async def completed() -> bool:
        return (await state())[waiter["id"]][0] == "completed"
    await eventually(completed)
