"""A journey process killed (SIGKILL) in the middle of a burst of due sends, then started
again: every run's message reaches the provider exactly once — none twice, none missing.
A run whose send went out but whose new state never committed is replayed with the same
idempotency key, and dispatch answers from its record instead of calling the provider."""

import uuid
from collections import Counter
from datetime import datetime, timezone

from sqlalchemy import select

from services.dispatch.models import deliveries
from services.dispatch.service import FINAL
from tests.support.journeys import templates
from tests.support.waiting import eventually
from tests.journey.processes import Processes, seeded, step_counts

RUNS = 120
SEND_THEN_WAIT = {"trigger": {"kind": "event", "event": "Burst"}, "start": "a",
                  "nodes": {"a": {"kind": "send", "channels": ["webhook"], "template": "burst", "advertising": False,
                                  "next": "b"},
                            "b": {"kind": "wait", "duration": "P1D", "next": "c"}, "c": {"kind": "exit"}}}


async def test_killed_mid_burst_then_restarted_sends_each_message_once(
        workspace, receiver, fresh_database, redis, redis_url, dispatch_platform, journey_platform, tmp_path):
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
    async with Processes(url, redis, redis_url, tmp_path, dispatch_addr=dispatch_platform.address, timer_batch=20,
                         step_concurrency=4, timer_lease_seconds=2) as processes:
        first, = await processes.start()
        await eventually(lambda: len(receiver.requests) >= 20, timeout=60)
        first.kill()
        assert len(receiver.requests) < RUNS, "killed too late to prove anything"
        await processes.start()
        await eventually(lambda: len(receiver.requests) >= RUNS, timeout=120)
        await eventually(lambda: _all_waiting(url), timeout=60)
        # A duplicate, if one were coming, would be a provider call still under way: every run
        # is past its send, and dispatch has recorded how each send ended.
        await eventually(lambda: _sends_settled(dispatch_platform, workspace.id), timeout=60)
    sent = Counter(r["body"]["data"]["run"] for r in receiver.requests)
    assert len(sent) == RUNS and set(sent.values()) == {1}, "a message went out twice or not at all"


async def _profiles_of(ws, user: str) -> list:
    return (await ws.admin.get("/v1/profiles", params={"userId": user})).json()["profiles"]


async def _all_waiting(url: str) -> bool:
    counts = await step_counts(url)
    return len(counts.get(("b", "wait"), [])) == RUNS and set(counts[("a", "send")]) == {1}


async def _sends_settled(dispatch, workspace_id: str) -> bool:
    """Every send of the workspace has its outcome recorded: none is pending or at a provider."""
    async with dispatch.service.sessions() as session:
        statuses = (await session.scalars(select(deliveries.c.status).where(
            deliveries.c.workspace_id == workspace_id))).all()
    return len(statuses) >= RUNS and set(statuses) <= set(FINAL)
