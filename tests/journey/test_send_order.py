"""A journey send node's `order` reaches dispatch: in the simulator (journey service → dispatch
dry run, through the gateway) a FriendTalk-then-SMS advertisement at 20:30 KST goes by SMS at
once by default, and waits for FriendTalk at 08:00 with `"order": "strict"`."""

from datetime import datetime

from tests.support.channels import KST
from tests.support.journeys import send, sends, simulate, workspace_ready

EVENING = datetime(2026, 3, 2, 20, 30, tzinfo=KST)  # Kakao's ad window closed; the night rule not begun


def evening_ad(**order) -> dict:
    return {"trigger": {"kind": "event", "event": "Signed Up"}, "start": "ad",
            "nodes": {"ad": send("cart-d3", "friendtalk", "sms") | order}}


async def test_a_journey_send_takes_the_first_channel_allowed_now_unless_strict(workspace):
    await workspace_ready(workspace)
    timeline = [("Signed Up", EVENING, {})]
    first_allowed = await simulate(workspace, evening_ad(), timeline, start=EVENING)
    assert sends(first_allowed, EVENING) == [(0, "20:30", "cart-d3", "sms", "sent")]
    strict = await simulate(workspace, evening_ad(order="strict"), timeline, start=EVENING)
    assert [s["kind"] for s in strict["steps"] if s["kind"] in ("send", "deferred")] == ["deferred", "send"]
    assert sends(strict, EVENING) == [(1, "08:00", "cart-d3", "friendtalk", "sent")]


async def test_an_unknown_order_names_the_node(workspace):
    response = await workspace.admin.post("/v1/journeys", json={"name": "bad", "definition": evening_ad(
        order="random")})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["field"] == "nodes.ad.order"
