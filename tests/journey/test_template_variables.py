"""A journey checks, when saved and when published, that each send's template reads only
what a send of that journey has: `event` (the entering event's properties) only when an
event enters its runs, `journey` with id, version, run_id and variant. Live and simulated
sends get exactly those."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.support.api import person
from tests.support.receiver import webhook_config
from tests.support.journeys import publish, track
from tests.support.waiting import eventually

KST = ZoneInfo("Asia/Seoul")


async def _template(ws, template_id: str, body: dict) -> None:
    response = await ws.admin.put(f"/v1/templates/{template_id}", json={"channels": {"webhook": {"body": body}}})
    assert response.status_code == 200, response.text


def _journey(trigger: dict, template: str = "note") -> dict:
    return {"trigger": trigger, "start": "note",
            "nodes": {"note": {"kind": "send", "channels": ["webhook"], "template": template, "advertising": False}}}


BIRTHDAY = {"kind": "date_trait", "trait": "birthday", "at": "09:00"}
ORDERED = {"kind": "event", "event": "Order Completed"}


async def test_a_send_reading_an_event_no_run_has_is_refused_naming_the_node(workspace, receiver):
    await workspace.admin.put("/v1/channels/webhook", json={"provider": "webhook", "config": webhook_config(receiver)})
    await _template(workspace, "note", {"seq": "{{ event.seq }}"})
    # a birthday enters runs without an event: every send would fail
    response = await workspace.admin.post("/v1/journeys", json={"name": "bday", "definition": _journey(BIRTHDAY)})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == "nodes.note.template" and "event.seq" in error["message"], error
    # a journey field journey sends do not have
    await _template(workspace, "coupon", {"code": "{{ journey.coupon }}"})
    response = await workspace.admin.post("/v1/journeys", json={"name": "c", "definition": _journey(ORDERED, "coupon")})
    assert response.status_code == 422 and response.json()["error"]["details"]["field"] == "nodes.note.template"
    # an order enters its runs with the order's properties: saved
    response = await workspace.admin.post("/v1/journeys", json={"name": "ok", "definition": _journey(ORDERED)})
    assert response.status_code == 201, response.text


async def test_publishing_checks_the_templates_as_they_are_now(workspace, receiver):
    await workspace.admin.put("/v1/channels/webhook", json={"provider": "webhook", "config": webhook_config(receiver)})
    await _template(workspace, "note", {"text": "happy birthday {{ profile.name }}"})
    response = await workspace.admin.post("/v1/journeys", json={"name": "bday", "definition": _journey(BIRTHDAY)})
    assert response.status_code == 201, response.text
    journey_id = response.json()["id"]
    await _template(workspace, "note", {"text": "happy birthday, order #{{ event.seq }}"})  # changed since
    response = await workspace.admin.post(f"/v1/journeys/{journey_id}/publish")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["field"] == "nodes.note.template"
    assert (await workspace.admin.get(f"/v1/journeys/{journey_id}")).json()["status"] == "draft"
    await _template(workspace, "note", {"text": "happy birthday, {{ event.seq | default('') }}"})
    assert (await workspace.admin.post(f"/v1/journeys/{journey_id}/publish")).status_code == 200


async def test_a_journey_send_renders_the_event_properties_and_journey_fields_as_documented(
        workspace, receiver, journey_clock):
    await workspace.admin.put("/v1/channels/webhook", json={"provider": "webhook", "config": webhook_config(receiver)})
    await _template(workspace, "note", {"seq": "{{ event.seq }}", "journey": "{{ journey.id }}/{{ journey.version }}",
                                        "run": "{{ journey.run_id }}", "name": "{{ profile.name }}"})
    journey = await publish(workspace, _journey(ORDERED))
    await person(workspace, "orderer", name="Kim")
    await track(workspace, "orderer", "Order Completed", seq=7)
    await eventually(lambda: receiver.requests)
    data = receiver.requests[0]["body"]["data"]
    assert (data["seq"], data["journey"], data["name"]) == ("7", f"{journey['id']}/1", "Kim") and data["run"]

    # the simulator renders with the same variables: the send would go out, not fail on journey.run_id
    t0 = datetime.now(KST).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=1)
    response = await workspace.admin.post(f"/v1/journeys/{journey['id']}/simulate", json={
        "profile": {"traits": {"name": "Lee"}}, "startAt": t0.isoformat(),
        "timeline": [{"event": "Order Completed", "at": t0.isoformat(), "properties": {"seq": 8}}]})
    assert response.status_code == 200, response.text
    assert [(s["templateId"], s["outcome"]) for s in response.json()["steps"] if s["kind"] == "send"] == [
        ("note", "sent")]
