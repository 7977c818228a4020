"""A journey's transactional send (an order confirmation, a shipping notice) goes out where
fatigue holds back its ordinary sends; it is never advertising."""

from tests.support.api import person
from tests.support.journeys import publish, received, stats_once_ended, templates, track
from tests.support.waiting import eventually

ONE_A_DAY = {"fatigue": {"rules": [{"kind": "channel", "limit": 1, "window": "day"}]}}


def order_journey(**receipt) -> dict:
    send = lambda template, nxt=None, **more: {  # noqa: E731
        "kind": "send", "channels": ["webhook"], "template": template, "advertising": False,
        **({"next": nxt} if nxt else {}), **more}
    return {"trigger": {"kind": "event", "event": "Order Completed"}, "start": "news",
            "nodes": {"news": send("news", "tips"), "tips": send("tips", "receipt"),
                      "receipt": send("receipt", **receipt)}}


async def test_a_transactional_journey_send_goes_out_where_fatigue_suppresses_an_ordinary_one(
        workspace, receiver, journey_clock):
    await templates(workspace, receiver, "news", "tips", "receipt")
    assert (await workspace.admin.put("/v1/dispatch-policy", json=ONE_A_DAY)).status_code == 200
    journey = await publish(workspace, order_journey(transactional=True))
    profile_id = await person(workspace, "buyer")
    await track(workspace, "buyer", "Order Completed", order_id="o-1")
    await eventually(lambda: _ended(workspace, journey["id"]))
    # the day's one webhook message went to "news"; "tips" is held back by fatigue, the receipt is not
    assert received(receiver) == ["news", "receipt"]
    runs = (await workspace.admin.get(f"/v1/profiles/{profile_id}/journey-runs")).json()["runs"]
    steps = (await workspace.admin.get(f"/v1/journey-runs/{runs[0]['id']}")).json()["steps"]
    outcomes = {s["nodeId"]: s["outcome"] for s in steps if s["kind"] == "send"}
    assert outcomes == {"news": "sent", "tips": "suppressed", "receipt": "sent"}
    deliveries = (await workspace.admin.get(f"/v1/profiles/{profile_id}/deliveries")).json()["deliveries"]
    tips = next(d for d in deliveries if d["nodeId"] == "tips")
    assert tips["rule"].startswith("fatigue:")


async def test_a_send_node_cannot_be_both_advertising_and_transactional(workspace, receiver):
    await templates(workspace, receiver, "news", "tips", "receipt")
    definition = order_journey(transactional=True)
    definition["nodes"]["receipt"]["advertising"] = True
    response = await workspace.admin.post("/v1/journeys", json={"name": "bad", "definition": definition})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["field"] == "nodes.receipt.transactional"
    response = await workspace.admin.post("/v1/journeys", json={"name": "bad", "definition": order_journey(
        transactional="yes")})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == "nodes.receipt.transactional"


async def _ended(ws, journey_id: str) -> bool:
    stats = await stats_once_ended(ws, journey_id)
    return bool(stats and stats["completed"] == 1)
