"""The audit log reports what people and API keys read, not the reads services make of a
profile on their own account (a send reads the contact twice, an inbox poll resolves the
SDK's user): those would bury the accesses worth reporting."""

import uuid

from tests.support.api import signed_in
from tests.support.waiting import eventually


async def audit(ws) -> list[dict]:
    r = await ws.admin.get("/v1/audit", params={"limit": 500})
    assert r.status_code == 200, r.text
    return r.json()["entries"]


async def profile_of(ws, user: str) -> str:
    """An identify through the tracking API; the profile id once stored (an audited admin lookup)."""
    r = await ws.tracking.post("/v1/identify", json={"userId": user, "traits": {"name": "Kim"}})
    assert r.status_code == 200, r.text
    async def stored():
        found = (await ws.admin.get("/v1/profiles", params={"userId": user})).json()["profiles"]
        return found[0]["id"] if found else None
    return await eventually(stored)


async def test_a_send_and_an_inbox_poll_write_no_audit_row_but_an_admin_read_does(workspace):
    profile = await profile_of(workspace, "audited-reader")
    r = await workspace.admin.put("/v1/templates/hello", json={
        "name": "hello", "channels": {"inapp": {"title": "Hi {{ profile.name }}", "body": "Your order shipped"}}})
    assert r.status_code == 200, r.text
    before = await audit(workspace)
    assert before and all(e["action"] == "profile.lookup" for e in before)  # the polls above, by the admin key

    sent = await workspace.admin.post("/v1/messages", headers={"Idempotency-Key": str(uuid.uuid4())},
                                      json={"profileId": profile, "channels": ["inapp"], "templateId": "hello"})
    assert sent.status_code == 200 and sent.json()["status"] == "sent", sent.text  # dispatch read the profile
    inbox = await workspace.tracking.get("/v1/inapp", **await signed_in(workspace, "audited-reader"))
    assert inbox.status_code == 200 and [m["title"] for m in inbox.json()["messages"]] == ["Hi Kim"], inbox.text
    assert await audit(workspace) == before

    assert (await workspace.admin.get(f"/v1/profiles/{profile}")).status_code == 200
    after = await audit(workspace)
    assert after[1:] == before
    assert (after[0]["action"], after[0]["profileId"], after[0]["keyId"]) == (
        "profile.read", profile, workspace.admin_key.split("_")[2])
