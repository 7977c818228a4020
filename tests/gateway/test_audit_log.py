"""The audit log (`GET /v1/audit`) gathers every service's rows: each admin write and each
read of a person's data by an API key, with key, action, target and time; filtered and paged
newest first. Reads services make on their own account (a send reads the contact twice, an
inbox poll resolves the SDK's user) are not rows: they would bury the accesses worth reporting."""

import uuid

from tests.support.api import consent, person, signed_in
from tests.support.gateway import own_gateway
from tests.support.processes import free_port
from tests.support.waiting import eventually

JOURNEY = {"trigger": {"kind": "event", "event": "Signed Up"}, "start": "later",
           "nodes": {"later": {"kind": "wait", "duration": "P1D", "next": "done"}, "done": {"kind": "exit"}}}


async def audit(ws, **filters) -> list[dict]:
    r = await ws.admin.get("/v1/audit", params={"limit": 500, **filters})
    assert r.status_code == 200, r.text
    return r.json()["entries"]


def key_id(ws) -> str:
    return ws.admin_key.split("_")[2]


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


async def test_a_send_and_an_inbox_poll_write_no_audit_row_but_an_admin_read_does(workspace):
    profile = await person(workspace, "audited-reader", name="Kim")
    ok(await workspace.admin.put("/v1/templates/hello", json={
        "name": "hello", "channels": {"inapp": {"title": "Hi {{ profile.name }}", "body": "Your order shipped"}}}))
    sdk = await signed_in(workspace, "audited-reader")  # the identity secret: a row of its own, before
    mine = {"keyId": key_id(workspace)}
    before = await audit(workspace, **mine)
    assert {e["action"] for e in before} == {"profile.lookup", "template.save", "identity_secret.rotate"}

    sent = ok(await workspace.admin.post("/v1/messages", headers={"Idempotency-Key": str(uuid.uuid4())},
                                         json={"profileId": profile, "channels": ["inapp"], "templateId": "hello"}))
    assert sent["status"] == "sent", sent  # dispatch read the profile, on its own account
    inbox = ok(await workspace.tracking.get("/v1/inapp", **sdk))
    assert [m["title"] for m in inbox["messages"]] == ["Hi Kim"]
    after_send = await audit(workspace, **mine)
    assert after_send[1:] == before  # the send is the key's; neither read of the profile is a row
    assert (after_send[0]["service"], after_send[0]["action"], after_send[0]["target"]) == (
        "dispatch", "message.send", sent["id"])

    ok(await workspace.admin.get(f"/v1/profiles/{profile}"))
    after = await audit(workspace, **mine)
    assert after[1:] == after_send
    assert (after[0]["action"], after[0]["profileId"], after[0]["keyId"]) == (
        "profile.read", profile, key_id(workspace))


async def everything_once(ws, profile: str) -> dict:
    """An admin write and a read of the person's data in each service, in this order; the ids involved."""
    admin = ws.admin
    await consent(ws, profile, email=True)
    ok(await admin.get(f"/v1/profiles/{profile}"))
    segment = ok(await admin.post("/v1/segments", json={"name": "kims", "rules": {
        "trait": "name", "op": "eq", "value": "Kim"}}), 201)["id"]

    async def explained():  # once the segment service has seen the person
        return (await admin.get(f"/v1/segments/{segment}/explain/{profile}")).status_code == 200
    await eventually(explained, interval=0.1)
    journey = ok(await admin.post("/v1/journeys", json={"name": "later", "definition": JOURNEY}), 201)["id"]
    ok(await admin.post(f"/v1/journeys/{journey}/publish"))
    ok(await admin.get(f"/v1/profiles/{profile}/journey-runs"))
    ok(await admin.put("/v1/templates/hello", json={"name": "hello",
                                                     "channels": {"inapp": {"title": "t", "body": "b"}}}))
    delivery = ok(await admin.post("/v1/messages", headers={"Idempotency-Key": str(uuid.uuid4())},
                                   json={"profileId": profile, "channels": ["inapp"], "templateId": "hello"}))["id"]
    ok(await admin.get(f"/v1/deliveries/{delivery}"))
    ok(await admin.get(f"/v1/profiles/{profile}/deliveries"))
    ok(await admin.put("/v1/metrics/settings", json={"orderEvent": "Purchase", "revenueProperty": "total"}))
    ok(await admin.get(f"/v1/profiles/{profile}/value"))
    return {"segment": segment, "journey": journey, "delivery": delivery}


async def test_every_service_logs_an_admin_write_and_a_read_of_a_persons_data_by_the_key(workspace):
    profile = await person(workspace, "audited-everywhere", name="Kim")
    ids = await everything_once(workspace, profile)
    segment, journey, delivery = ids["segment"], ids["journey"], ids["delivery"]

    entries = [e for e in await audit(workspace, keyId=key_id(workspace)) if e["action"] != "profile.lookup"]
    assert [(e["service"], e["action"], e["target"], e["profileId"]) for e in reversed(entries)] == [
        ("profile", "consent.update", profile, profile),
        ("profile", "profile.read", profile, profile),
        ("segment", "segment.create", segment, None),
        ("segment", "segment.explain", segment, profile),
        ("journey", "journey.create", journey, None),
        ("journey", "journey.publish", journey, None),
        ("journey", "journey_runs.read", profile, profile),
        ("dispatch", "template.save", "hello", None),
        ("dispatch", "message.send", delivery, profile),
        ("dispatch", "delivery.read", delivery, profile),
        ("dispatch", "deliveries.read", profile, profile),
        ("metrics", "metrics_settings.update", None, None),
        ("metrics", "customer_value.read", profile, profile),
    ]
    assert all(e["keyId"] == key_id(workspace) and e["at"] for e in entries)
    assert entries[-1]["detail"] == {"purposes": ["channel:email"]}
    # the calls services made to each other (journey checking its segment and template, dispatch
    # reading the contact) are no one's rows
    assert {e["keyId"] for e in await audit(workspace)} == {key_id(workspace), "operator"}


async def test_the_log_filters_by_action_target_person_and_time_and_pages_across_services(workspace):
    profile = await person(workspace, "audited-filters", name="Kim")
    ids = await everything_once(workspace, profile)

    assert [e["action"] for e in await audit(workspace, action="journey.")] == ["journey.publish", "journey.create"]
    assert [e["action"] for e in await audit(workspace, action="journey_run")] == ["journey_runs.read"]
    assert [e["action"] for e in await audit(workspace, target=ids["segment"])] == [
        "segment.explain", "segment.create"]
    about = {(e["service"], e["action"]) for e in await audit(workspace, profileId=profile)}
    assert about == {("profile", "profile.lookup"), ("profile", "consent.update"), ("profile", "profile.read"),
                     ("segment", "segment.explain"), ("journey", "journey_runs.read"),
                     ("dispatch", "message.send"), ("dispatch", "delivery.read"), ("dispatch", "deliveries.read"),
                     ("metrics", "customer_value.read")}

    everything = await audit(workspace)
    sent = next(e for e in everything if e["action"] == "message.send")
    read = next(e for e in everything if e["action"] == "deliveries.read")
    between = await audit(workspace, **{"from": sent["at"], "until": read["at"]})  # until is exclusive
    assert [e["action"] for e in between] == ["delivery.read", "message.send"]

    paged, cursor = [], None
    while True:
        r = await workspace.admin.get("/v1/audit", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        page = ok(r)
        assert len(page["entries"]) <= 3
        paged += page["entries"]
        if not (cursor := page["nextCursor"]):
            break
    assert paged == everything and len({e["service"] for e in paged}) == 6


async def test_key_rotation_and_revocation_are_rows_of_the_operator(workspace, workspace_store):
    new = await workspace_store.rotate(workspace.id, "write")
    await workspace_store.revoke(new.id)
    entries = await audit(workspace, keyId="operator")
    assert [(e["service"], e["action"], e["target"], e["detail"]) for e in entries] == [
        ("gateway", "key.revoke", new.id, {"kind": "write"}),
        ("gateway", "key.rotate", new.id, {"kind": "write"}),
        ("gateway", "workspace.create", workspace.id, {"keys": {"write": workspace.write_key.split("_")[2],
                                                               "admin": key_id(workspace)}}),
    ]


async def test_the_sdk_access_settings_are_rows_of_the_key_that_changed_them(workspace):
    ok(await workspace.admin.post("/v1/settings/identity-secret"), 201)
    ok(await workspace.admin.post("/v1/settings/identity-secret"), 201)
    assert (await workspace.admin.delete("/v1/settings/identity-secret/previous")).status_code == 204
    ok(await workspace.admin.put("/v1/settings/allowed-origins", json={"origins": ["https://shop.example"]}))
    entries = await audit(workspace, keyId=key_id(workspace), action="")
    assert [(e["service"], e["action"]) for e in entries if e["service"] == "gateway"] == [
        ("gateway", "allowed_origins.update"), ("gateway", "identity_secret.revoke"),
        ("gateway", "identity_secret.rotate"), ("gateway", "identity_secret.rotate")]
    assert all("secret" not in str(e["detail"]) for e in entries)  # the secret itself is never logged


async def test_the_log_is_never_shown_incomplete_when_a_service_does_not_answer(gateway_settings, workspace):
    settings = gateway_settings.model_copy(update={"metrics_addr": f"127.0.0.1:{free_port()}",
                                                   "rpc_timeout_seconds": 2.0})
    async with own_gateway(settings) as client:
        r = await client.get("/v1/audit", headers={"Authorization": f"Bearer {workspace.admin_key}"})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable"


async def test_filters_and_cursors_that_are_not_ours_name_the_field(workspace):
    r = await workspace.admin.get("/v1/audit", params={"cursor": "1.nowhere.2"})
    assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "cursor"}
    r = await workspace.admin.get("/v1/audit", params={"from": "yesterday"})
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"][0]["field"] == "from"
