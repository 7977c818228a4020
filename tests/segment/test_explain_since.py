"""Explain with events_since, as the journey service asks it at a condition node ("the
profile and the events since the run's entry"): only the events at or after the moment
count, while last seen and RFM stay the profile's whole story. Events go through the
gateway as in test_realtime_segments; Explain is called over gRPC, which carries events_since.
"""

from datetime import datetime, timedelta, timezone

import grpc
import orjson
import pytest

from kit.transport import timestamp
from nudge.common.v1 import common_pb2
from nudge.segment.v1 import segment_pb2, segment_pb2_grpc
from tests.support.api import profile_of, track
from tests.support.waiting import eventually

BOUGHT = {"event": "Order Completed", "count": {"op": "gte", "value": 1}}


@pytest.fixture
async def explain(workspace, segment_platform, segment_clock):
    """Explains an unsaved rule for a profile, with events_since when given; None while the
    segment service has no event of the profile yet."""
    async with grpc.aio.insecure_channel(segment_platform.address) as channel:
        stub = segment_pb2_grpc.SegmentServiceStub(channel)

        async def call(rules: dict, profile_id: str, since: datetime | None = None):
            request = segment_pb2.ExplainRequest(context=common_pb2.RequestContext(workspace_id=workspace.id),
                                                 rules_json=orjson.dumps(rules).decode(), profile_id=profile_id)
            if since:
                request.events_since.CopyFrom(timestamp(since))
            try:
                return await stub.Explain(request)
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.NOT_FOUND:
                    return None
                raise
        yield call


async def ordered_two_hours_ago(workspace, explain, user: str) -> str:
    """The user's profile, once the segment service has their order of two hours ago."""
    await track(workspace, user, "Order Completed", timedelta(hours=2), revenue=10)
    profile = await profile_of(workspace, user)

    async def bought():
        reply = await explain(BOUGHT, profile)
        return reply and reply.member
    await eventually(bought)
    return profile


async def test_an_order_counts_only_at_or_after_events_since(workspace, explain):
    now = datetime.now(timezone.utc)
    profile = await ordered_two_hours_ago(workspace, explain, "buyer")
    entry = now - timedelta(hours=1)  # a journey run entered an hour after the order
    assert not (await explain(BOUGHT, profile, entry)).member

    await track(workspace, "buyer", "Order Completed", timedelta(minutes=30), revenue=10)

    async def bought_since_entry():
        return (await explain(BOUGHT, profile, entry)).member
    await eventually(bought_since_entry)
    assert (await explain(BOUGHT, profile, entry)).conditions[0].value_json == "1"
    assert (await explain(BOUGHT, profile)).conditions[0].value_json == "2"


async def test_last_seen_and_rfm_count_every_event_whatever_events_since(workspace, explain):
    now = datetime.now(timezone.utc)
    profile = await ordered_two_hours_ago(workspace, explain, "regular")
    response = await workspace.admin.put("/v1/segment-settings/rfm",  # computes the workspace's RFM edges
                                         json={"orderEvent": "Order Completed", "revenueProperty": "revenue"})
    assert response.status_code == 200, response.text

    # The revenue sum counts the same events as RFM (one series), yet only it is cut at events_since.
    rules = {"all": [{"last_seen": {"op": "less_than", "ago": "P1D"}},
                     {"rfm": {"score": "f", "op": "gte", "value": 1}},
                     {"event": "Order Completed", "sum": "revenue", "op": "gte", "value": 10}]}
    whole = await explain(rules, profile)
    since = await explain(rules, profile, now - timedelta(hours=1))
    assert whole.member and not since.member
    (_, last_seen, rfm, revenue), (_, *cut) = whole.conditions, since.conditions
    assert last_seen.satisfied and rfm.satisfied and orjson.loads(rfm.value_json)["f"] == 1
    assert [(c.satisfied, c.value_json) for c in cut] == [(True, last_seen.value_json), (True, rfm.value_json),
                                                          (False, "0")]
    assert (revenue.satisfied, revenue.value_json) == (True, "10")
