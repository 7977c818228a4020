"""The calls tests make through the gateway (`ws` is the `workspace` fixture: its tracking and
admin clients), each asserting the call succeeded."""

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta, timezone

import httpx

from tests.support.waiting import eventually


# ---- profiles and events ----------------------------------------------------------------------

async def person(ws, user: str, traits: dict | None = None, context: dict | None = None, **more_traits) -> str:
    """An identify call through the tracking API; the profile id once the profile service has it."""
    body = {"userId": user, "traits": {**(traits or {}), **more_traits}, **({"context": context} if context else {})}
    response = await ws.tracking.post("/v1/identify", json=body)
    assert response.status_code == 200, response.text
    return await profile_of(ws, user)


async def profile_of(ws, user: str) -> str:
    """The profile id of a user once the profile service has stored it."""
    async def lookup():
        response = await ws.admin.get("/v1/profiles", params={"userId": user})
        found = response.json().get("profiles") if response.status_code == 200 else None
        return found[0]["id"] if found else None
    return await eventually(lookup)


async def events_of(ws, **identifier) -> list[dict]:
    """The events of the one profile with this identifier (userId=…, anonymousId=…), newest first."""
    found = (await ws.admin.get("/v1/profiles", params=identifier)).json()["profiles"]
    if not found:
        return []
    assert len(found) == 1
    return (await ws.admin.get(f"/v1/profiles/{found[0]['id']}/events", params={"limit": 500})).json()["events"]


async def track(ws, user: str, event: str, ago: timedelta = timedelta(0), message_id: str | None = None,
                **properties) -> datetime:
    """A track call dated `ago` before now (as an SDK replaying a backlog would); the event's time, as sent."""
    at = datetime.now(timezone.utc) - ago
    response = await ws.tracking.post("/v1/track", json={
        "userId": user, "event": event, "properties": properties, "timestamp": at.isoformat(),
        "messageId": message_id or str(uuid.uuid4())})
    assert response.status_code == 200, response.text
    return at


async def consent(ws, profile_id: str, **purposes) -> None:
    """consent(ws, p, sms=True, ads_sms=True, advertising=True): channels, advertising per
    channel (ads_<channel>), on every channel (advertising), night_advertising; granted or withdrawn."""
    body: dict = {"channels": {}, "ads": {}}
    for purpose, granted in purposes.items():
        entry = {"granted": granted, "source": "test"}
        if purpose in ("advertising", "night_advertising"):
            body[purpose] = entry
        elif purpose.startswith("ads_"):
            body["ads"][purpose.removeprefix("ads_")] = entry
        else:
            body["channels"][purpose] = entry
    response = await ws.admin.put(f"/v1/profiles/{profile_id}/consent", json=body)
    assert response.status_code == 200, response.text


# ---- dispatch ---------------------------------------------------------------------------------

async def setup(ws, channels: dict, configs: dict | None = None, policy: dict | None = None) -> None:
    """The template "hello" with `channels`, channel configs {channel: (provider, config)}, a policy."""
    response = await ws.admin.put("/v1/templates/hello", json={"name": "hello", "channels": channels})
    assert response.status_code == 200, response.text
    for channel, (provider, config) in (configs or {}).items():
        response = await ws.admin.put(f"/v1/channels/{channel}", json={"provider": provider, "config": config})
        assert response.status_code == 200, response.text
    if policy is not None:
        response = await ws.admin.put("/v1/dispatch-policy", json=policy)
        assert response.status_code == 200, response.text


async def send(ws, profile_id: str, channels: list[str], key: str | None = None, **extra) -> dict:
    """A send of the template "hello"; the delivery as the API answered."""
    response = await ws.admin.post("/v1/messages", headers={"Idempotency-Key": key or str(uuid.uuid4())},
                                   json={"profileId": profile_id, "channels": channels, "templateId": "hello",
                                         **extra})
    assert response.status_code == 200, response.text
    return response.json()


def user_token(secret: str, user: str) -> str:
    """What the customer's backend computes for a signed-in user: the hex HMAC-SHA256 of the
    userId under the workspace's identity secret."""
    return hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()


async def identity_secret(ws) -> str:
    """The workspace's identity secret, created on first use."""
    if ws.identity_secret is None:
        response = await ws.admin.post("/v1/settings/identity-secret")
        assert response.status_code == 201, response.text
        ws.identity_secret = response.json()["secret"]
    return ws.identity_secret


async def signed_in(ws, user: str) -> dict:
    """The request arguments of an SDK call for a signed-in user: the userId and its user token."""
    return {"params": {"userId": user}, "headers": {"X-Nudge-User-Token": user_token(await identity_secret(ws), user)}}


async def inbox(ws, user: str) -> list[dict]:
    """The user's in-app messages not marked seen, as the SDK fetches them (which changes nothing)."""
    response = await ws.tracking.get("/v1/inapp", **await signed_in(ws, user))
    assert response.status_code == 200, response.text
    return response.json()["messages"]


async def mark_seen(ws, user: str, messages: list[dict]) -> int:
    """The SDK showed these inbox messages: they leave the inbox. How many were marked now."""
    response = await ws.tracking.post("/v1/inapp/seen", json={"ids": [m["id"] for m in messages]},
                                      **await signed_in(ws, user))
    assert response.status_code == 200, response.text
    return response.json()["marked"]


async def delivery(ws, delivery_id: str) -> dict:
    return (await ws.admin.get(f"/v1/deliveries/{delivery_id}")).json()


async def wait_for_status(ws, delivery_id: str, status: str) -> dict:
    """The delivery once it has `status`."""
    async def reached():
        current = await delivery(ws, delivery_id)
        return current if current["status"] == status else None
    return await eventually(reached, interval=0.1)


# ---- segments -----------------------------------------------------------------------------------

async def create_segment(ws, name: str, rules: dict) -> str:
    """A segment, once its backfill is done; its id."""
    response = await ws.admin.post("/v1/segments", json={"name": name, "rules": rules})
    assert response.status_code == 201, response.text
    segment_id = response.json()["id"]

    async def backfilled():
        return (await ws.admin.get(f"/v1/segments/{segment_id}")).json()["backfill"]["state"] == "done"
    await eventually(backfilled, interval=0.1)
    return segment_id


async def is_member(ws, segment_id: str, profile_id: str) -> bool:
    response = await ws.admin.get(f"/v1/segments/{segment_id}/members/{profile_id}")
    assert response.status_code == 200, response.text
    return response.json()["member"]


async def becomes(ws, segment_id: str, profile_id: str, member: bool) -> None:
    async def check():
        return await is_member(ws, segment_id, profile_id) == member
    await eventually(check, interval=0.1)


# ---- errors -----------------------------------------------------------------------------------

def fields_of(response: httpx.Response) -> set[str]:
    """The fields a 422 error envelope names."""
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_argument"
    return {f["field"] for f in error["details"]["fields"]}
