"""What the profile service announces on nudge.events.v1, through the outbox and its relay."""

from kit.payloads import EVENTS
from kit.streams import StreamEvent
from tests.support.waiting import eventually


async def published(redis, workspace_id: str, expected: int) -> list[StreamEvent]:
    async def enough():
        mine = [e for e in (StreamEvent.from_fields(f) for _, f in await redis.xrange(EVENTS))
                if e.workspace_id == workspace_id]
        return mine if len(mine) >= expected else None
    return await eventually(enough)


async def test_events_trait_changes_and_merges_are_published_with_the_canonical_profile(workspace, redis):
    await workspace.tracking.post("/v1/track", json={"anonymousId": "pub-a", "event": "Viewed", "messageId": "p1"})
    await workspace.tracking.post("/v1/identify", json={"userId": "pub-u", "traits": {"plan": "pro"}, "messageId": "p2"})
    await workspace.tracking.post("/v1/identify", json={"userId": "pub-u", "anonymousId": "pub-a", "messageId": "p3"})
    survivor = (await workspace.admin.get("/v1/profiles", params={"userId": "pub-u"})).json()["profiles"][0]

    events = await published(redis, workspace.id, 5)
    by_type = {}
    for event in events:
        by_type.setdefault(event.type, []).append(event)
    assert sorted(by_type) == ["event.identify", "event.track", "profile.merged", "profile.traits_changed"]
    assert [e.payload["messageId"] for e in by_type["event.identify"]] == ["p2", "p3"]
    assert by_type["profile.traits_changed"][0].payload == {"traits": {"plan": "pro"}}
    (merge,) = by_type["profile.merged"]
    assert merge.payload == {"survivor_id": survivor["id"], "merged_id": survivor["mergedIds"][0]}
    # the merge event and everything after it carry the survivor's id
    assert merge.profile_id == by_type["event.identify"][1].profile_id == survivor["id"]
    assert len({e.id for e in events}) == len(events)


async def test_consent_changes_and_erasures_are_published(workspace, redis):
    await workspace.tracking.post("/v1/identify", json={"userId": "pub-c"})
    profile_id = (await workspace.admin.get("/v1/profiles", params={"userId": "pub-c"})).json()["profiles"][0]["id"]
    await workspace.admin.put(f"/v1/profiles/{profile_id}/consent",
                              json={"channels": {"email": {"granted": False, "source": "unsubscribe_link"}}})
    await workspace.admin.delete(f"/v1/profiles/{profile_id}")
    events = await published(redis, workspace.id, 3)
    assert [e.type for e in events] == ["event.identify", "profile.consent_changed", "profile.deleted"]
    assert events[1].payload["consent"]["channel:email"]["granted"] is False
    assert {e.profile_id for e in events} == {profile_id}


async def test_duplicates_and_rejected_calls_are_announced_for_data_quality(workspace, redis):
    call = {"userId": "pub-d", "event": "Viewed", "messageId": "dup-1"}
    for _ in range(2):
        assert (await workspace.tracking.post("/v1/track", json=call)).status_code == 200
    response = await workspace.tracking.post("/v1/batch", json={"batch": [
        {"type": "track", "event": "Viewed", "messageId": "no-user"},  # neither userId nor anonymousId
        {"type": "track", "userId": "pub-d", "event": "Viewed", "messageId": "fine"}]})
    assert response.status_code == 200, response.text
    assert (await workspace.tracking.post("/v1/track", json={"event": "Viewed"})).status_code == 422
    events = await published(redis, workspace.id, 5)
    dropped = [e.payload for e in events if e.type == "ingest.dropped"]
    assert sum(d["duplicates"] for d in dropped) == 1
    assert sum(d["rejected"].get("userId", 0) for d in dropped) == 2  # one refused by the gateway, one here
