"""Many batches racing on the same people (on different replicas) converge to one profile
per person, with every event kept once and attached to a live profile."""

import asyncio
import random
import secrets

from sqlalchemy import text

from services.profile.service import STORED
from tests.support.calls import call


async def test_racing_batches_of_anonymous_events_and_merges_lose_nothing(profile_service, profile_replicas,
                                                                           profile_runtime):
    ws = "race-" + secrets.token_hex(4)
    rng = random.Random(7)
    people = 6
    batches = []
    for b in range(16):
        batch = []
        for _ in range(12):
            person = rng.randrange(people)
            device = f"dev-{person}-{rng.randrange(2)}"  # two devices each
            if rng.random() < 0.3:
                batch.append(call("identify", user_id=f"user-{person}", anonymous_id=device, traits={"b": b}))
            else:
                batch.append(call("track", anonymous_id=device, event="Viewed"))
        batches.append(batch)
    # the final identify of each device, so every device is known at the end
    batches.append([call("identify", user_id=f"user-{p}", anonymous_id=f"dev-{p}-{d}")
                    for p in range(people) for d in range(2)])
    results = await asyncio.gather(*(profile_replicas[i % 4].ingest(ws, b) for i, b in enumerate(batches)))
    sent = sum(len(b) for b in batches)
    assert [r.outcome for batch in results for r in batch] == [STORED] * sent

    async with profile_runtime.engine.connect() as conn:
        live = (await conn.execute(text(
            "SELECT count(*) FROM profiles WHERE workspace_id = :ws AND merged_into IS NULL"), {"ws": ws})).scalar()
        events = (await conn.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE p.merged_into IS NOT NULL) FROM events e "
            "JOIN profiles p ON p.id = e.profile_id WHERE e.workspace_id = :ws"), {"ws": ws})).one()
        owners = (await conn.execute(text(
            "SELECT count(DISTINCT i.profile_id) FROM identities i JOIN profiles p ON p.id = i.profile_id "
            "WHERE i.workspace_id = :ws AND p.merged_into IS NOT NULL"), {"ws": ws})).scalar()
    assert live == people
    assert tuple(events) == (sent, 0)  # every event stored once, none left on a merged profile
    assert owners == 0                  # no identity points at a merged profile
    for person in range(people):
        (view,) = await profile_service.lookup(ws, "test", "user_id", f"user-{person}")
        assert {v for t, v, _ in view.identities if t == "anonymous_id"} == {f"dev-{person}-0", f"dev-{person}-1"}


async def test_requests_arriving_together_share_a_commit_and_keep_their_own_answers(profile_service):
    ws = "group-" + secrets.token_hex(4)
    requests = [[call("track", user_id=f"g{i}", event="E", message_id=f"m{i}"),
                 call("track", user_id=f"g{i}", event="E", message_id="shared")] for i in range(5)]
    answers = await asyncio.gather(*(profile_service.ingest(ws, r) for r in requests))
    assert [a[0].outcome for a in answers] == [STORED] * 5
    # the same messageId sent by five concurrent requests is stored once
    assert sorted(a[1].outcome for a in answers) == ["duplicate"] * 4 + [STORED]
    for i, answer in enumerate(answers):
        (view,) = await profile_service.lookup(ws, "test", "user_id", f"g{i}")
        assert answer[0].profile_id == str(view.row["id"])


async def test_two_users_signing_in_on_one_anonymous_device_at_once_stay_two_people(profile_service,
                                                                                   profile_replicas):
    for attempt in range(10):
        ws = f"shared-device-{attempt}-" + secrets.token_hex(3)
        await profile_service.ingest(ws, [call("track", anonymous_id="tablet", event="Opened")])
        await asyncio.gather(profile_replicas[0].ingest(ws, [call("identify", anonymous_id="tablet", user_id="alice")]),
                             profile_replicas[1].ingest(ws, [call("identify", anonymous_id="tablet", user_id="bob")]))
        (alice,) = await profile_service.lookup(ws, "test", "user_id", "alice")
        (bob,) = await profile_service.lookup(ws, "test", "user_id", "bob")
        assert alice.row["id"] != bob.row["id"]
        (device,) = await profile_service.lookup(ws, "test", "anonymous_id", "tablet")
        assert device.row["id"] in (alice.row["id"], bob.row["id"])


async def test_a_request_that_fails_in_a_shared_commit_does_not_fail_the_others(profile_service):
    ws = "isolate-" + secrets.token_hex(4)
    good = [[call("track", user_id=f"ok{i}", event="E")] for i in range(5)]
    bad = [call("track", user_id="bad", event="E", properties={"v": "nul\x00"})]  # PostgreSQL refuses NUL
    answers = await asyncio.gather(*(profile_service.ingest(ws, r) for r in [*good, bad]), return_exceptions=True)
    assert [a[0].outcome for a in answers[:5]] == [STORED] * 5
    assert isinstance(answers[5], Exception)
    for i in range(5):
        assert len(await profile_service.lookup(ws, "test", "user_id", f"ok{i}")) == 1
