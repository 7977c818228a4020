"""The in-app inbox and in-app engagement with the public write key: only for a userId whose
user token (HMAC of the userId under the workspace's identity secret) the customer's backend
computed; reading changes nothing, a POST marks what the app showed; the secret rotates
without breaking apps until the previous one is revoked."""

import secrets

import orjson
from sqlalchemy import select

from services.dispatch.models import inapp_messages
from tests.support.api import identity_secret, inbox, mark_seen, person, send, setup, signed_in, user_token

TOKEN = "X-Nudge-User-Token"


async def _message_for(ws, user: str) -> dict:
    """An in-app message sent to `user`: the delivery."""
    await setup(ws, {"inapp": {"title": "Hi {{ profile.name }}", "body": "Your order shipped"}})
    return await send(ws, await person(ws, user, name="Kim"), ["inapp"])


def _as(user: str, token: str | bytes | None) -> dict:
    return {"params": {"userId": user}, "headers": {TOKEN: token} if token is not None else {}}


def _refused(response, reason: str) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthorized" and reason in error["message"], error
    assert error["details"] == {"field": TOKEN}


async def test_a_workspace_without_an_identity_secret_serves_no_inbox(workspace):
    delivery = await _message_for(workspace, "kim")
    for call in (workspace.tracking.get("/v1/inapp", **_as("kim", "0" * 64)),
                 workspace.tracking.post(f"/v1/inapp/{delivery['id']}/impression", **_as("kim", "0" * 64))):
        _refused(await call, "identity verification is not configured")
    state = await workspace.admin.get("/v1/settings/identity-secret")
    assert state.json() == {"configured": False, "createdAt": None, "previousAccepted": False,
                            "previousCreatedAt": None}


async def test_the_inbox_and_engagement_need_the_users_own_token(workspace):
    delivery = await _message_for(workspace, "kim")
    await person(workspace, "lee")
    secret = await identity_secret(workspace)
    forged = user_token(f"nk_i_{secrets.token_urlsafe(32)}", "kim")  # right userId, some other secret
    for path in ("/v1/inapp", f"/v1/inapp/{delivery['id']}/impression", f"/v1/inapp/{delivery['id']}/click"):
        call = workspace.tracking.get if path == "/v1/inapp" else workspace.tracking.post
        _refused(await call(path, **_as("kim", None)), "missing user token")
        _refused(await call(path, **_as("kim", user_token(secret, "lee"))), "does not match this userId")
        _refused(await call(path, **_as("kim", forged)), "does not match this userId")
        _refused(await call(path, **_as("kim", ("ü" * 32).encode())), "does not match this userId")  # not ASCII
    seen = await workspace.tracking.post("/v1/inapp/seen", json={"ids": ["x"]}, **_as("kim", user_token(secret, "lee")))
    _refused(seen, "does not match this userId")
    # An anonymous visitor has no user token: the inbox is a signed-in person's.
    anonymous = await workspace.tracking.get("/v1/inapp", params={"anonymousId": "a-1"})
    assert anonymous.status_code == 422 and anonymous.json()["error"]["details"] == {"field": "userId"}

    # The right token, in the header or (where an SDK cannot set one) as `userToken`.
    by_header = await workspace.tracking.get("/v1/inapp", **_as("kim", user_token(secret, "kim")))
    by_query = await workspace.tracking.get("/v1/inapp", params={"userId": "kim",
                                                                  "userToken": user_token(secret, "kim").upper()})
    for answer in (by_header, by_query):
        assert answer.status_code == 200, answer.text
        assert [m["deliveryId"] for m in answer.json()["messages"]] == [delivery["id"]]
        assert answer.headers["cache-control"] == "no-store"
    assert (await workspace.tracking.get("/v1/inapp", **await signed_in(workspace, "lee"))).json() == {"messages": []}
    shown = await workspace.tracking.post(f"/v1/inapp/{delivery['id']}/impression", **await signed_in(workspace, "kim"))
    assert shown.status_code == 200 and shown.json() == {"recorded": True}
    # The write key is still needed beside the token.
    no_key = await workspace.admin.get("/v1/inapp", **await signed_in(workspace, "kim"))
    assert no_key.status_code == 401


async def test_reading_the_inbox_changes_nothing_and_the_app_marks_what_it_showed(workspace, dispatch_platform):
    first = await _message_for(workspace, "kim")
    second = await send(workspace, first["profileId"], ["inapp"])
    await person(workspace, "lee")

    async def rows():
        async with dispatch_platform.service.sessions() as session:
            return (await session.execute(select(inapp_messages).where(
                inapp_messages.c.workspace_id == workspace.id).order_by(inapp_messages.c.created_at))).all()

    before = await rows()
    messages = await inbox(workspace, "kim")
    assert [m["deliveryId"] for m in messages] == [first["id"], second["id"]]
    assert await inbox(workspace, "kim") == messages
    assert await rows() == before and not any(row.seen for row in before)

    # Someone else's ids, or ones that do not exist, mark nothing.
    assert await mark_seen(workspace, "lee", messages) == 0
    assert await mark_seen(workspace, "kim", [{"id": "no-such-message"}]) == 0
    assert await inbox(workspace, "kim") == messages
    assert await mark_seen(workspace, "kim", messages[:1]) == 1
    assert await inbox(workspace, "kim") == messages[1:]
    assert await mark_seen(workspace, "kim", messages) == 1  # the first one was seen already
    assert await inbox(workspace, "kim") == []
    kim = await signed_in(workspace, "kim")
    for bad in ({"ids": []}, {"ids": ["x"] * 101}, {"ids": [""]}, {"ids": ["a\x00b"]}, {}, '{"ids": ["\\ud800"]}'):
        body = bad.encode() if isinstance(bad, str) else orjson.dumps(bad)  # a lone surrogate only as JSON text
        refused = await workspace.tracking.post("/v1/inapp/seen", content=body, params=kim["params"],
                                                headers={**kim["headers"], "Content-Type": "application/json"})
        details = refused.json()["error"]["details"]  # the edge names one field, the body model several
        named = details.get("field") or details["fields"][0]["field"]
        assert refused.status_code == 422 and named.startswith("ids"), (bad, refused.text)


async def test_a_rotated_secret_keeps_the_previous_one_until_the_admin_revokes_it(workspace):
    await _message_for(workspace, "kim")
    first = await workspace.admin.post("/v1/settings/identity-secret")
    assert first.status_code == 201, first.text
    assert first.json()["configured"] and not first.json()["previousAccepted"]
    old = user_token(first.json()["secret"], "kim")

    second = (await workspace.admin.post("/v1/settings/identity-secret")).json()
    new = user_token(second["secret"], "kim")
    assert second["secret"] != first.json()["secret"] and second["previousAccepted"]
    state = (await workspace.admin.get("/v1/settings/identity-secret")).json()
    assert state["previousAccepted"] and first.json()["secret"] not in str(state) and second["secret"] not in str(state)
    for token in (old, new):  # apps still holding a token from before the rotation keep working
        assert (await workspace.tracking.get("/v1/inapp", **_as("kim", token))).status_code == 200

    assert (await workspace.admin.delete("/v1/settings/identity-secret/previous")).status_code == 204
    _refused(await workspace.tracking.get("/v1/inapp", **_as("kim", old)), "does not match")
    assert (await workspace.tracking.get("/v1/inapp", **_as("kim", new))).status_code == 200
    again = await workspace.admin.delete("/v1/settings/identity-secret/previous")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
    assert not (await workspace.admin.get("/v1/settings/identity-secret")).json()["previousAccepted"]

    # Only the admin key manages it.
    assert (await workspace.tracking.post("/v1/settings/identity-secret")).status_code == 403
    assert (await workspace.tracking.get("/v1/settings/identity-secret")).status_code == 403
