"""Workspace A of the isolation matrix (tests/gateway/test_tenant_isolation.py): one of
everything the API can create, every value A wrote carrying a marker of its own (so any
response can be searched for any byte of A's data), and A's objects as A's admin key reads
them (to find them unchanged after another tenant's calls)."""

import re
import secrets
import uuid
from dataclasses import dataclass, field

from tests.support.api import create_segment, person
from tests.support.channels import AD_POLICY
from tests.support.receiver import Receiver, webhook_config
from tests.support.waiting import eventually


@dataclass
class Markers:
    """Distinctive values A wrote, and A's ids, by label."""
    values: dict[str, str] = field(default_factory=dict)

    def new(self, label: str) -> str:
        self.values[label] = f"zq{secrets.token_hex(6)}"
        return self.values[label]

    def found(self, text: str, sent: str) -> list[str]:
        """The labels of A's values in `text` that the caller did not send itself (`sent`:
        an error may name the id a caller asked for; that is the caller's byte, not A's)."""
        return sorted(label for label, value in self.values.items() if value in text and value not in sent)


@dataclass
class TenantA:
    ws: object                  # the `workspace` fixture
    marks: Markers
    ids: dict[str, str]         # A's ids by the name the routes' path parameters give them
    admin_key_id: str


def _key_id(key: str) -> str:
    return key.split("_")[2]  # nk_<kind>_<id>_<secret>


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


async def build(ws, hook: Receiver) -> TenantA:
    """A profile with traits, events and consent; a segment it belongs to; a template; a
    webhook channel; a policy; a journey published that ran for the person (its send
    delivered); an in-app delivery; metrics, RFM and identity settings; audit entries."""
    m = Markers()
    admin = ws.admin
    template_id = f"tpl-{secrets.token_hex(4)}"
    _ok(await admin.put("/v1/channels/webhook", json={"provider": "webhook", "config": {
        **webhook_config(hook), "secret": m.new("channel secret")}}))
    _ok(await admin.put(f"/v1/templates/{template_id}", json={"name": m.new("template name"), "channels": {
        "webhook": {"body": {"note": m.new("webhook body")}},
        "inapp": {"title": m.new("in-app title"), "body": m.new("in-app body"),
                  "url": f"https://shop.example/{m.new('in-app link')}"}}}))
    _ok(await admin.put("/v1/dispatch-policy", json={**AD_POLICY, "sender_name": m.new("sender name")}))
    _ok(await admin.put("/v1/metrics/settings", json={"orderEvent": m.new("metrics order event"),
                                                        "revenueProperty": m.new("metrics revenue property")}))
    _ok(await admin.put("/v1/segment-settings/rfm", json={"orderEvent": m.new("rfm order event"),
                                                            "revenueProperty": "revenue"}))
    _ok(await admin.put("/v1/identity-policy", json={"uniqueIdentifiers": ["email"]}))

    user = f"user-{m.new('user id')}"
    profile_id = await person(ws, user, {"name": m.new("name trait"), "email": f"{m.new('email')}@example.com"})
    _ok(await admin.put(f"/v1/profiles/{profile_id}/consent", json={
        "channels": {"email": {"granted": True, "source": m.new("consent source")}}}))
    segment_id = await create_segment(ws, m.new("segment name"), {
        "trait": "name", "op": "eq", "value": m.values["name trait"]})

    trigger = f"Started {m.new('trigger event')}"
    journey = _ok(await admin.post("/v1/journeys", json={
        "name": m.new("journey name"), "description": m.new("journey description"), "definition": {
            "trigger": {"kind": "event", "event": trigger}, "start": "hello",
            "nodes": {"hello": {"kind": "send", "channels": ["webhook"], "template": template_id,
                                "advertising": False}}}}), 201)
    _ok(await admin.post(f"/v1/journeys/{journey['id']}/publish"))
    _ok(await ws.tracking.post("/v1/track", json={"userId": user, "event": trigger,
                                                   "properties": {"note": m.new("event property")}}))

    async def run_completed():
        runs = (await admin.get(f"/v1/profiles/{profile_id}/journey-runs")).json()["runs"]
        return runs[0] if runs and runs[0]["status"] == "completed" else None
    run = await eventually(run_completed)
    inapp = _ok(await admin.post("/v1/messages", headers={"Idempotency-Key": str(uuid.uuid4())}, json={
        "profileId": profile_id, "channels": ["inapp"], "templateId": template_id}))
    assert inapp["status"] == "sent", inapp
    deliveries = _ok(await admin.get(f"/v1/profiles/{profile_id}/deliveries"))["deliveries"]
    journey_delivery = next(d for d in deliveries if d["journeyId"] == journey["id"])
    await eventually(lambda: any(r["body"]["data"]["note"] == m.values["webhook body"] for r in hook.requests))

    ids = {"workspace_id": ws.id, "profile_id": profile_id, "user_id": user, "segment_id": segment_id,
           "template_id": template_id, "journey_id": journey["id"], "run_id": run["id"],
           "delivery_id": journey_delivery["id"], "inapp_id": inapp["id"]}
    for name, value in ids.items():
        m.values[f"A's {name}"] = value
    return TenantA(ws, m, {**ids, "email": f"{m.values['email']}@example.com"}, _key_id(ws.admin_key))


def ghost_ids(ids: dict[str, str]) -> dict[str, str]:
    """Ids of the same shapes that name nothing anywhere: what B gets for A's ids must be
    what it gets for these (no answer tells B that A's object exists)."""
    def ghost(value: str) -> str:
        try:
            uuid.UUID(value)
            return str(uuid.uuid4())
        except ValueError:
            return re.sub(r"[0-9a-f]{6,}", lambda hit: secrets.token_hex(len(hit.group()))[:len(hit.group())], value)
    ghosts = {name: ghost(value) for name, value in ids.items()}
    assert not set(ghosts.values()) & set(ids.values()), ghosts
    return ghosts


async def snapshot(a: TenantA, client) -> dict:
    """A's objects as A's admin key reads them through `client` (a gateway), and A's audit
    log without A's own reads."""
    admin = {"Authorization": f"Bearer {a.ws.admin_key}"}
    i = a.ids
    paths = [f"/v1/profiles/{i['profile_id']}", f"/v1/profiles/{i['profile_id']}/events",
             f"/v1/profiles/{i['profile_id']}/export", f"/v1/profiles/{i['profile_id']}/deliveries",
             f"/v1/profiles/{i['profile_id']}/journey-runs", f"/v1/journey-runs/{i['run_id']}",
             f"/v1/segments/{i['segment_id']}", f"/v1/segments/{i['segment_id']}/members", "/v1/segments",
             f"/v1/templates/{i['template_id']}", "/v1/templates", "/v1/channels", "/v1/dispatch-policy",
             f"/v1/journeys/{i['journey_id']}", f"/v1/journeys/{i['journey_id']}/versions",
             f"/v1/journeys/{i['journey_id']}/stats", "/v1/journeys",
             f"/v1/deliveries/{i['delivery_id']}", f"/v1/deliveries/{i['inapp_id']}",
             "/v1/metrics/settings", "/v1/segment-settings/rfm", "/v1/identity-policy"]
    seen = {path: _ok(await client.get(path, headers=admin)) for path in paths}
    # A's own reads (these included) are logged as they happen: every other entry stays the same.
    export = seen[f"/v1/profiles/{i['profile_id']}/export"]
    export["profile"]["access_log"] = [entry for entry in export["profile"]["access_log"]
                                       if entry["actor"] != a.admin_key_id]
    seen["audit"] = [entry for entry in await _audit(client, admin) if entry["keyId"] != a.admin_key_id]
    return seen


async def _audit(client, admin: dict) -> list[dict]:
    entries, cursor = [], ""
    while True:
        page = _ok(await client.get("/v1/audit", params={"limit": 500, "cursor": cursor}, headers=admin))
        entries += page["entries"]
        if not (cursor := page["nextCursor"]):
            return entries
