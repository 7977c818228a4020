"""A journey process killed (SIGKILL) in the middle of a burst of due sends, then started
again: every run's message reaches the provider exactly once — none twice, none missing.
A run whose send went out but whose new state never committed is replayed with the same
idempotency key, and dispatch answers from its record instead of calling the provider."""

import asyncio
import signal
import uuid
from collections import Counter
from datetime import datetime, timezone

from tests.support.journeys import templates
from tests.support.waiting import eventually
from tests.journey.processes import Processes, seeded, step_counts

RUNS = 120
SEND_THEN_WAIT = {"trigger": {"kind": "event", "event": "Burst"}, "start": "a",
                  "nodes": {"a": {"kind": "send", "channels": ["webhook"], "template": "burst", "advertising": False,
                                  "next": "b"},
                            "b": {"kind": "wait", "duration": "P1D", "next": "c"}, "c": {"kind": "exit"}}}


async def test_killed_mid_burst_then_restarted_sends_each_message_once(
        workspace, receiver, fresh_database, redis, redis_url, dispatch_platform, journey_platform):
    await templates(workspace, receiver, "burst")
    users = [f"burst-{n}" for n in range(RUNS)]
    response = await workspace.tracking.post("/v1/batch", json={"batch": [
        {"type": "identify", "userId": user, "messageId": str(uuid.uuid4())} for user in users]})
    assert response.status_code == 200, response.text
    profiles = []
    for user in users:
        found = await eventually(lambda: _profiles_of(workspace, user))
        profiles.append(found[0]["id"])

    url = await fresh_database("journey_crash")
    await seeded(url, workspace.id, SEND_THEN_WAIT, profiles, datetime.now(timezone.utc), "a", waiting=False)
    async with Processes(url, redis, redis_url, dispatch_addr=dispatch_platform.address, timer_batch=20,
                         step_concurrency=4, timer_lease_seconds=2) as processes:
        first = processes.start()
        await eventually(lambda: len(receiver.requests) >= 20, timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert len(receiver.requests) < RUNS, "killed too late to prove anything"
        processes.start()
        await eventually(lambda: len(receiver.requests) >= RUNS, timeout=120)
        await eventually(lambda: _all_waiting(url), timeout=60)
        await asyncio.sleep(1)  # room for a duplicate to show up, if one were coming
    sent = Counter(r["body"]["data"]["run"] for r in receiver.requests)
    assert len(sent) == RUNS and set(sent.values()) == {1}, "a message went out twice or not at all"


async def _profiles_of(ws, user: str) -> list:
    return (await ws.admin.get("/v1/profiles", params={"userId": user})).json()["profiles"]


async def _all_waiting(url: str) -> bool:
    counts = await step_counts(url)
    return len(counts.get(("b", "wait"), [])) == RUNS and set(counts[("a", "send")]) == {1}
