"""GDPR with every service running, through the gateway: the export gathers what all five
services hold about a person, and after an erasure a replay of the person's own calls brings
nothing back (it is dropped, and counted in data quality)."""

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from kit.payloads import EVENTS
from services.metrics.models import facts
from tests.support.api import becomes, consent, create_segment, is_member, profile_of
from tests.support.gateway import own_gateway
from tests.support.journeys import publish, received, templates, welcome
from tests.support.processes import free_port
from tests.support.streams import consumed_past, last_entry
from tests.support.waiting import eventually


def _calls(user: str) -> tuple[dict, dict]:
    """A person's two batches as their SDK sent them an hour ago (each call dated, messageIds
    fixed): who they are, then their signup and a product view."""
    at = datetime.now(timezone.utc) - timedelta(hours=1)

    def call(kind: str, seconds: int, **fields) -> dict:
        return {"type": kind, "userId": user, "anonymousId": f"{user}-device", "messageId": str(uuid.uuid4()),
                "timestamp": (at + timedelta(seconds=seconds)).isoformat(), **fields}

    who = {"batch": [call("identify", 0, traits={"email": f"{user}@example.com", "phone": "010-2345-6789",
                                                 "plan": "gold", "name": "Kim"})],
           "sentAt": (at + timedelta(seconds=1)).isoformat()}
    did = {"batch": [call("track", 10, event="Signed Up", properties={"coupon": "WELCOME10"}),
                     call("track", 20, event="Product Viewed", properties={"sku": "RED-SHOES"})],
           "sentAt": (at + timedelta(seconds=21)).isoformat()}
    return who, did


async def _post(ws, batch: dict) -> dict:
    response = await ws.tracking.post("/v1/batch", json=batch)
    assert response.status_code == 200, response.text
    return response.json()


async def _held_everywhere(ws, hook, user: str) -> dict:
    """A person every service holds data about: a gold-plan segment they join, a journey that
    sends them a welcome on their signup (they gave consent for the channel first), the
    delivery, and the metrics facts of all of it. Their batches, ids and the segment."""
    await templates(ws, hook, "welcome", "coupon")
    journey = await publish(ws, welcome())
    segment = await create_segment(ws, "gold plan", {"trait": "plan", "op": "eq", "value": "gold"})
    who, did = _calls(user)
    await _post(ws, who)
    profile_id = await profile_of(ws, user)
    await consent(ws, profile_id, webhook=True)
    await _post(ws, did)
    await becomes(ws, segment, profile_id, True)
    await eventually(lambda: received(hook) == ["welcome"])
    return {"batches": (who, did), "profile_id": profile_id, "segment": segment, "journey": journey["id"]}


async def _export(ws, profile_id: str) -> dict | None:
    """The export, or None when a service was too slow to answer (a 503, asked again)."""
    response = await ws.admin.get(f"/v1/profiles/{profile_id}/export")
    assert response.status_code in (200, 503), response.text
    return response.json() if response.status_code == 200 else None


async def _export_once_metrics_counted_the_send(ws, profile_id: str) -> dict:
    async def complete():
        export = await _export(ws, profile_id)
        return export if export and "sent" in {f["kind"] for f in export["metrics"]["facts"]} else None
    return await eventually(complete, interval=0.2)


async def test_export_lists_what_every_service_holds(workspace, receiver):
    person = await _held_everywhere(workspace, receiver, "gdpr-export")
    profile_id = person["profile_id"]
    export = await _export_once_metrics_counted_the_send(workspace, profile_id)
    assert (export["profileId"], export["mergedIds"]) == (profile_id, [])

    held = export["profile"]  # profile service: profile, identities, events, consent history, access log
    assert held["profile"]["traits"]["plan"] == "gold"
    assert {("email", "gdpr-export@example.com"), ("phone", "+821023456789")} <= {
        (i["type"], i["value"]) for i in held["identities"]}
    assert {e.get("event", e["type"]) for e in held["events"]} == {"identify", "Signed Up", "Product Viewed"}
    assert [(c["purpose"], c["granted"], c["source"]) for c in held["consent_history"]] == [
        ("channel:webhook", True, "test")]
    assert "profile.export" in {a["action"] for a in held["access_log"]}

    segment = export["segment"]  # traits and consent as the segment service keeps them, events, memberships
    assert [(p["profile_id"], p["traits"]["plan"]) for p in segment["profiles"]] == [(profile_id, "gold")]
    assert segment["profiles"][0]["consent"]["channel:webhook"]["granted"] is True
    assert [(m["segment_id"], m["version"]) for m in segment["memberships"]] == [(person["segment"], 1)]
    assert {e["name"] for e in segment["events"]} == {"identify", "Signed Up", "Product Viewed"}

    (run,) = export["journey"]["runs"]  # the run with its context and every step
    assert (run["journey_id"], run["profile_id"], run["status"]) == (person["journey"], profile_id, "active")
    assert run["context"]["event"]["properties"] == {"coupon": "WELCOME10"}
    send = next(s for s in run["steps"] if s["kind"] == "send")
    assert send["outcome"] == "sent" and send["detail"]["delivery_id"]

    (delivery,) = export["dispatch"]["deliveries"]  # with its variables and the consent it rested on
    assert delivery["id"] == send["detail"]["delivery_id"] and delivery["status"] in ("sent", "delivered")
    assert delivery["request"]["variables"]["event"] == {"coupon": "WELCOME10"}
    assert delivery["consent"]["channel:webhook"]["granted"] is True

    kinds = {f["kind"] for f in export["metrics"]["facts"]}  # their facts
    assert {"event", "entered", "sent"} <= kinds
    assert {f["profile_id"] for f in export["metrics"]["facts"]} == {profile_id}


async def test_export_includes_the_profiles_merged_into_the_person(workspace):
    who, _ = _calls("gdpr-merged")
    await _post(workspace, who)
    profile_id = await profile_of(workspace, "gdpr-merged")
    await _post(workspace, {"batch": [{"type": "track", "anonymousId": "laptop-1", "event": "Price Checked"}]})
    await _post(workspace, {"batch": [{"type": "identify", "userId": "gdpr-merged", "anonymousId": "laptop-1"}]})

    async def merged():
        export = await _export(workspace, profile_id)
        return export if export and export["mergedIds"] and export["metrics"]["facts"] else None
    export = await eventually(merged, interval=0.2)
    assert export["profileId"] == profile_id and len(export["mergedIds"]) == 1
    assert "Price Checked" in {e.get("event") for e in export["profile"]["events"]}
    by_merged_id = await workspace.admin.get(f"/v1/profiles/{export['mergedIds'][0]}/export")
    assert by_merged_id.json()["profileId"] == profile_id  # the merged id leads to the same person


async def test_an_export_missing_a_service_fails_whole(workspace, gateway_settings):
    who, _ = _calls("gdpr-partial")
    await _post(workspace, who)
    profile_id = await profile_of(workspace, "gdpr-partial")
    settings = gateway_settings.model_copy(update={"metrics_addr": f"127.0.0.1:{free_port()}",
                                                   "rpc_timeout_seconds": 2.0})
    async with own_gateway(settings) as client:
        r = await client.get(f"/v1/profiles/{profile_id}/export",
                             headers={"Authorization": f"Bearer {workspace.admin_key}"})
    assert r.status_code == 503, r.text
    assert set(r.json()) == {"error"} and r.json()["error"]["code"] == "unavailable"


async def _seen_by_every_consumer(redis, platforms, workspace_id: str, event_type: bytes) -> None:
    """Until segment, journey, dispatch and metrics have consumed the workspace's last
    `event_type` entry on the events stream (and so everything before it)."""
    def match(fields):
        return fields[b"workspace_id"].decode() == workspace_id and fields[b"type"] == event_type
    entry = await eventually(lambda: last_entry(redis, EVENTS, match))
    for group in platforms:
        await consumed_past(redis, EVENTS, group, entry)


async def test_erase_then_replay_the_persons_batches_recreates_nothing(
        workspace, receiver, redis, segment_platform, journey_platform, dispatch_platform, metrics_platform):
    groups = [segment_platform.consumer.group, journey_platform.settings.consumer_group,
              dispatch_platform.settings.consumer_group, metrics_platform.consumer.group]
    person = await _held_everywhere(workspace, receiver, "gdpr-erased")
    profile_id, admin = person["profile_id"], workspace.admin
    await _export_once_metrics_counted_the_send(workspace, profile_id)
    (run,) = (await admin.get(f"/v1/profiles/{profile_id}/journey-runs")).json()["runs"]

    erased = await admin.delete(f"/v1/profiles/{profile_id}")
    assert erased.status_code == 200, erased.text
    await _seen_by_every_consumer(redis, groups, workspace.id, b"profile.deleted")
    await _assert_forgotten(workspace, person, run["id"], metrics_platform)

    for batch in person["batches"]:  # the SDK sends the same calls again: answered, not stored
        assert (await _post(workspace, batch))["stored"] == len(batch["batch"])
    assert (await admin.get("/v1/profiles", params={"userId": "gdpr-erased"})).json()["profiles"] == []
    await _seen_by_every_consumer(redis, groups, workspace.id, b"ingest.dropped")
    await _assert_forgotten(workspace, person, run["id"], metrics_platform)
    await eventually(lambda: _erased_dropped(workspace, 3))  # the two batches' drops may be counted apart
    stream = [(f[b"type"], f[b"profile_id"]) for _, f in await redis.xrange(EVENTS)
              if f[b"workspace_id"].decode() == workspace.id]
    after_erasure = stream[stream.index((b"profile.deleted", profile_id.encode())) + 1:]
    assert {kind for kind, _ in after_erasure} == {b"ingest.dropped"}  # nothing else was announced
    stats = (await admin.get(f"/v1/journeys/{person['journey']}/stats")).json()
    assert (stats["entered"], stats["active"], stats["exited"]) == (1, 0, 1)  # the erased run still counts
    assert received(receiver) == ["welcome"]


async def _assert_forgotten(ws, person: dict, run_id: str, metrics_platform) -> None:
    profile_id, admin = person["profile_id"], ws.admin
    assert (await admin.get(f"/v1/profiles/{profile_id}")).status_code == 404
    assert (await admin.get(f"/v1/profiles/{profile_id}/export")).status_code == 404
    for identifier in ({"userId": "gdpr-erased"}, {"anonymousId": "gdpr-erased-device"},
                       {"email": "gdpr-erased@example.com"}, {"phone": "010-2345-6789"}):
        assert (await admin.get("/v1/profiles", params=identifier)).json()["profiles"] == [], identifier
    assert not await is_member(ws, person["segment"], profile_id)
    assert (await admin.get(f"/v1/segments/{person['segment']}/count")).json()["count"] == 0
    assert (await admin.get(f"/v1/profiles/{profile_id}/journey-runs")).json()["runs"] == []
    run = (await admin.get(f"/v1/journey-runs/{run_id}")).json()  # kept for the counts, naming no one
    assert (run["profileId"], run["status"], run["endReason"]) == ("", "exited", "profile erased")
    assert all(step["detail"] in (None, {}) for step in run["steps"])
    (delivery,) = (await admin.get(f"/v1/profiles/{profile_id}/deliveries")).json()["deliveries"]
    assert delivery["consent"] == {}  # what was sent stays on record, without their data
    async with metrics_platform.sessions() as session:
        theirs = await session.scalar(select(facts.c.id).where(facts.c.workspace_id == ws.id,
                                                               facts.c.profile_id == profile_id).limit(1))
    assert theirs is None


async def _erased_dropped(ws, expected: int) -> bool:
    days = (await ws.admin.get("/v1/metrics/data-quality")).json()["days"]
    return sum(day["erasedDropped"] for day in days) == expected


async def test_the_person_signing_up_again_after_the_erasure_is_a_new_person(workspace):
    who, _ = _calls("gdpr-returning")
    await _post(workspace, who)
    first = await profile_of(workspace, "gdpr-returning")
    assert (await workspace.admin.delete(f"/v1/profiles/{first}")).status_code == 200
    await _post(workspace, who)  # a replay: dropped
    await _post(workspace, {"batch": [{"type": "identify", "userId": "gdpr-returning",
                                       "traits": {"email": "gdpr-returning@example.com"}}]})  # made now
    second = await profile_of(workspace, "gdpr-returning")
    assert second != first
    events = (await workspace.admin.get(f"/v1/profiles/{second}/events")).json()["events"]
    assert len(events) == 1 and "plan" not in events[0]["traits"]  # only what they sent after the erasure
