from datetime import datetime, timedelta, timezone

import pytest

from kit import db, migrations
from kit.outbox import Outbox
from services.segment.__main__ import MIGRATIONS
from services.segment.clients import JourneyUsages
from services.segment.models import outbox
from services.segment.service import SegmentService

# Far from real time, so nothing here is ever due for the real timers of another test.
NOW = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=400)


class FixedClock:
    def __init__(self) -> None:
        self.at = NOW

    def now(self) -> datetime:
        return self.at


@pytest.fixture(scope="module")
async def isolated(fresh_database, redis, journey_usages_server):
    """A segment service on a database of its own, with no background loops: the test
    decides when events arrive and when backfills and timers run."""
    url = await fresh_database("segment_iso")
    await migrations.upgrade(url, MIGRATIONS)
    engine = db.create_engine(url, pool_size=4)
    journeys = JourneyUsages(journey_usages_server, "service:segment")
    yield SegmentService(db.session_factory(engine), redis, Outbox(outbox), FixedClock(), journeys, backfill_batch=3)
    await journeys.close()
    await engine.dispose()
