"""Journey service processes for the claim and crash tests: a database seeded with a
published journey and runs that are due, and `python -m services.journey` children."""

import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, insert, select

from kit import db, migrations
from services.journey.__main__ import MIGRATIONS
from services.journey.models import journey_versions, journeys, runs, steps, timers
from tests.support.processes import Component, service, stop


async def seeded(url: str, workspace_id: str, definition: dict, profile_ids: list[str], due: datetime,
                 node_id: str, waiting: bool) -> str:
    """A published journey and one run per profile standing at `node_id`, its timer due at
    `due` (`waiting`: the run waits there until `due`, else it is about to execute it)."""
    await migrations.upgrade(url, MIGRATIONS)
    journey_id = f"jrn_{uuid.uuid4().hex[:8]}"
    engine = db.create_engine(url, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(insert(journeys).values(
            workspace_id=workspace_id, id=journey_id, name="due", description="", status="published", version=1,
            definition=definition, created_at=due, updated_at=due))
        await conn.execute(insert(journey_versions).values(
            workspace_id=workspace_id, journey_id=journey_id, version=1, definition=definition, published_at=due))
        ids = [uuid.uuid4() for _ in profile_ids]
        for start in range(0, len(ids), 2000):
            chunk = list(zip(ids, profile_ids))[start:start + 2000]
            await conn.execute(insert(runs), [dict(
                id=run_id, workspace_id=workspace_id, journey_id=journey_id, version=1, profile_id=profile_id,
                status="active", node_id=node_id, seq=1, context={}, entered_at=due,
                wait={"until": due.isoformat()} if waiting else None) for run_id, profile_id in chunk])
            await conn.execute(insert(timers), [dict(run_id=run_id, workspace_id=workspace_id, journey_id=journey_id,
                                                     due_at=due) for run_id, _ in chunk])
    await engine.dispose()
    return journey_id


class Processes:
    """`python -m services.journey` children on one database, sharing one consumer group,
    which is removed when they are all stopped; each logs to a file under `log_dir`."""

    def __init__(self, url: str, redis, redis_url: str, log_dir: Path, **settings) -> None:
        self.redis, self.log_dir = redis, log_dir
        self.group = f"journey-process-{uuid.uuid4().hex[:8]}"
        self.settings = {"database_url": url, "redis_url": redis_url, "migrate_on_start": "false",
                         "log_level": "WARNING", "timer_poll_seconds": 0.1, "consumer_group": self.group, **settings}
        self.children: list[Component] = []

    async def start(self, count: int = 1) -> list[Component]:
        """`count` more children, started together, once each answers."""
        started = [service("journey", self.log_dir, **self.settings).start() for _ in range(count)]
        self.children.extend(started)
        for child in started:
            await child.serving()
        return started

    def check_running(self) -> None:
        """Fails, quoting its log, if a child the test did not stop itself has exited."""
        for child in self.children:
            if child.proc.returncode is None:
                child.check_running()

    async def __aenter__(self) -> "Processes":
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            stop(self.children, grace=60)  # a drain on a loaded machine; the shutdown test checks the grace itself
        finally:
            for stream in ("nudge.events.v1", "nudge.segments.v1"):
                await self.redis.xgroup_destroy(stream, self.group)


async def step_counts(url: str) -> dict[tuple[str, str], list[int]]:
    """(node, kind) → how many times each run took that step, for every run that took it."""
    engine = db.create_engine(url, pool_size=1)
    async with engine.connect() as conn:
        rows = await conn.execute(select(steps.c.node_id, steps.c.kind, func.count()).group_by(
            steps.c.run_id, steps.c.node_id, steps.c.kind))
        found: dict[tuple[str, str], list[int]] = {}
        for node_id, kind, count in rows:
            found.setdefault((node_id, kind), []).append(count)
    await engine.dispose()
    return found
