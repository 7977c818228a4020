"""Two people merged into one (identify linking an anonymous visitor to a known user): the
survivor's inbox holds the merged person's in-app messages, and fatigue counts the merged
person's sends against the survivor, also for sends still addressed to the merged id."""

from kit.payloads import EVENTS
from kit.streams import StreamEvent
from tests.support.api import inbox, person, send, setup, signed_in
from tests.support.receiver import webhook_config
from tests.support.streams import consumed_past, last_entry
from tests.support.waiting import eventually

ONE_PER_CHANNEL_A_DAY = {"fatigue": {"rules": [{"kind": "channel", "limit": 1, "window": "day"}]}}


async def anonymous(ws, anonymous_id: str) -> str:
    response = await ws.tracking.post("/v1/identify", json={"anonymousId": anonymous_id, "traits": {"name": "Lee"}})
    assert response.status_code == 200, response.text
    async def stored():
        found = (await ws.admin.get("/v1/profiles", params={"anonymousId": anonymous_id})).json()["profiles"]
        return found[0]["id"] if found else None
    return await eventually(stored)


async def merge_consumed(redis, group: str, workspace_id: str, merged_id: str) -> None:
    """Once the merge is on nudge.events.v1 and dispatch's group has read and acknowledged it."""
    def is_the_merge(fields) -> bool:
        event = StreamEvent.from_fields(fields)
        return (event.type == "profile.merged" and event.workspace_id == workspace_id
                and event.payload.get("merged_id") == merged_id)
    merge = await eventually(lambda: last_entry(redis, EVENTS, is_the_merge))
    await consumed_past(redis, EVENTS, group, merge)


async def test_after_a_merge_the_survivor_has_the_merged_persons_inbox_and_fatigue(workspace, receiver, redis,
                                                                                 dispatch_platform):
    await setup(workspace, {"inapp": {"title": "Hi {{ profile.name }}", "body": "Your cart"},
                            "webhook": {"body": {"text": "hello"}}},
                {"webhook": ("webhook", webhook_config(receiver))}, policy=ONE_PER_CHANNEL_A_DAY)
    visitor = await anonymous(workspace, "anon-merge")
    buyer = await person(workspace, "buyer-merge")
    to_visitor = await send(workspace, visitor, ["inapp"], transactional=False)
    to_buyer = await send(workspace, buyer, ["webhook"], transactional=False)
    assert (to_visitor["status"], to_buyer["status"]) == ("sent", "sent")

    # The visitor signs in: identify links the anonymous id to the user, and the profiles merge.
    response = await workspace.tracking.post("/v1/identify", json={"userId": "buyer-merge",
                                                                    "anonymousId": "anon-merge"})
    assert response.status_code == 200, response.text
    await merge_consumed(redis, dispatch_platform.settings.consumer_group, workspace.id, visitor)

    # The visitor's in-app message of today counts against the survivor's one in-app a day…
    again = await send(workspace, buyer, ["inapp"], transactional=False)
    assert again["status"] == "suppressed" and again["rule"].startswith("fatigue:"), again
    # … and the survivor's inbox shows it, and takes the SDK's impression of it.
    assert [(m["deliveryId"], m["title"]) for m in await inbox(workspace, "buyer-merge")] == [
        (to_visitor["id"], "Hi Lee")]
    seen = await workspace.tracking.post(f"/v1/inapp/{to_visitor['id']}/impression",
                                         **await signed_in(workspace, "buyer-merge"))
    assert seen.status_code == 200 and seen.json()["recorded"], seen.text
    # A send still addressed to the merged id is the survivor's: its webhook message of today counts.
    late = await send(workspace, visitor, ["webhook"], transactional=False)
    assert late["status"] == "suppressed" and late["rule"].startswith("fatigue:"), late
    assert len(receiver.requests) == 1
    history = (await workspace.admin.get(f"/v1/profiles/{buyer}/deliveries")).json()["deliveries"]
    assert to_visitor["id"] in {d["id"] for d in history}  # the "why" of the survivor includes them
