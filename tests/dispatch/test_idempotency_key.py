"""`Idempotency-Key` on `POST /v1/messages`: the same key and body answer the first send's
result; the same key with another body is the caller's bug and answers 422 naming the key
(Stripe's rule), with nothing sent."""

import uuid

from tests.support.api import inbox, person, setup


async def post(ws, key: str, body: dict):
    return await ws.admin.post("/v1/messages", headers={"Idempotency-Key": key}, json=body)


async def test_a_key_reused_with_another_body_is_refused_naming_the_key(workspace):
    profile = await person(workspace, "keyed")
    other = await person(workspace, "keyed-other")
    await setup(workspace, {"inapp": {"title": "Order {{ event.order }}", "body": "shipped"}})
    key = f"order-{uuid.uuid4()}"
    body = {"profileId": profile, "channels": ["inapp"], "templateId": "hello",
            "variables": {"event": {"order": "A-1"}}}
    first = await post(workspace, key, body)
    assert first.status_code == 200 and first.json()["status"] == "sent"

    again = await post(workspace, key, body)  # the same send: its first result
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]

    for changed in ({**body, "variables": {"event": {"order": "A-2"}}}, {**body, "profileId": other},
                    {**body, "advertising": True}):
        refused = await post(workspace, key, changed)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["details"] == {"field": "Idempotency-Key"} and key in error["message"]

    # Only the first send reached anyone.
    assert [m["title"] for m in await inbox(workspace, "keyed")] == ["Order A-1"]
    assert await inbox(workspace, "keyed-other") == []
