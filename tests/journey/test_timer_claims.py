"""Durable timers shared by replicas: two journey processes claim the same 10,000 due
timers (FOR UPDATE SKIP LOCKED under a lease) and every run takes its step exactly once."""

import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import orjson
from sqlalchemy import func, select

from kit import db
from kit.payloads import JOURNEYS
from services.journey.models import outbox, runs, timers
from tests.journey.processes import Processes, seeded, step_counts
from tests.support.waiting import eventually

RUNS = 10_000
# Firing a run here takes no remote call: the wait at `a` ends and it starts the day-long wait at `b`.
TWO_WAITS = {"trigger": {"kind": "event", "event": "Claimed"}, "start": "a",
             "nodes": {"a": {"kind": "wait", "duration": "PT1S", "next": "b"},
                       "b": {"kind": "wait", "duration": "P1D", "next": "c"}, "c": {"kind": "exit"}}}


async def test_two_processes_fire_ten_thousand_due_timers_each_once(fresh_database, redis, redis_url, tmp_path):
    url = await fresh_database("journey_claims")
    due = datetime.now(timezone.utc) - timedelta(seconds=1)
    workspace_id = f"ws_{uuid.uuid4().hex[:8]}"
    await seeded(url, workspace_id, TWO_WAITS, [f"p{n}" for n in range(RUNS)], due, "a", waiting=True)
    engine = db.create_engine(url, pool_size=1)
    try:
        async with Processes(url, redis, redis_url, tmp_path, timer_batch=200) as processes:
            await processes.start(2)
            moved = 0

            async def all_fired() -> bool:
                nonlocal moved
                processes.check_running()  # a journey process died: its log
                async with engine.connect() as conn:
                    moved = await conn.scalar(select(func.count()).select_from(timers).where(
                        timers.c.due_at > due + timedelta(hours=12)))
                return moved == RUNS
            await eventually(all_fired, timeout=180, interval=0.2, show=lambda: f"only {moved} of {RUNS} fired")
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(runs).where(
                runs.c.node_id == "b", runs.c.seq == 3, runs.c.status == "active")) == RUNS
            # A run fired twice would write the same steps again (the step rows cannot show it:
            # their key drops the copy) but announce them twice: count what was announced,
            # published or still in the outbox.
            unpublished = [entry for row in await conn.execute(select(outbox.c.entries)) for entry in row.entries]
        published = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in await redis.xrange(JOURNEYS)
                     if fields[b"workspace_id"].decode() == workspace_id]
        steps = Counter((f["profile_id"], orjson.loads(f["payload"])["seq"])
                        for f in published + [e["fields"] for e in unpublished])
        assert len(steps) == 2 * RUNS and set(steps.values()) == {1}  # both steps of every run, once
    finally:
        await engine.dispose()
    counts = await step_counts(url)
    assert set(counts) == {("a", "waited"), ("b", "wait")}
    for key, per_run in counts.items():
        assert len(per_run) == RUNS and set(per_run) == {1}, key  # every run, once
