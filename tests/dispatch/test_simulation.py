"""The journey simulator's dry run of a send: the real decisions (channel fallback, consent,
the night rule, fatigue, render) at a virtual moment for a synthetic person, with nothing
stored, no provider called and real fatigue counters neither read nor written."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import grpc
import orjson
import pytest
from sqlalchemy import Text, func, select

from kit.errors import field_of
from kit.payloads import DELIVERIES
from kit.transport import timestamp
from nudge.common.v1 import common_pb2
from nudge.dispatch.v1 import dispatch_pb2 as pb
from nudge.dispatch.v1 import dispatch_pb2_grpc
from services.dispatch.models import deliveries, inapp_messages, outbox
from tests.dispatch import provider_servers as fake
from tests.support.api import person, send, setup
from tests.support.channels import daytime, sms_config

KST = ZoneInfo("Asia/Seoul")
INAPP = {"inapp": {"title": "Sale", "body": "50% off"}}
AD_POLICY = {"sender_name": "Nudge Shop", "opt_out_phone": "080-000-0000"}
SIM_KEYS = "nudge:dispatch:simulation:{"


@pytest.fixture
async def dispatch(dispatch_platform):
    async with grpc.aio.insecure_channel(dispatch_platform.address) as channel:
        yield dispatch_pb2_grpc.DispatchServiceStub(channel)


def dry_run(ws, simulation: str, at: datetime | None, who: dict | str | None = None, channels=("inapp",),
            **fields) -> pb.SendRequest:
    """A simulated send of template "hello"; `who` is the person_json (an object, or raw text)."""
    run = pb.Simulation(id=simulation, person_json=who if isinstance(who, str) else orjson.dumps(who or {}).decode())
    if at is not None:
        run.at.CopyFrom(timestamp(at))
    return pb.SendRequest(context=common_pb2.RequestContext(workspace_id=ws.id), channels=list(channels),
                          template_id="hello", simulation=run, **fields)


def granted(*purposes: str) -> dict:
    return {"consents": {p: {"granted": True} for p in purposes}}


async def stored(platform, ws) -> dict:
    """What the dispatch service holds about a workspace: rows, pending events, published events."""
    async with platform.service.sessions() as session:
        counts = {table.name: await session.scalar(select(func.count()).select_from(table).where(
            table.c.workspace_id == ws.id)) for table in (deliveries, inapp_messages)}
        counts["outbox"] = await session.scalar(select(func.count()).select_from(outbox).where(
            outbox.c.entries.cast(Text).contains(ws.id)))
    published = await platform.service.redis.xrange(DELIVERIES)
    counts["events"] = sum(fields.get(b"workspace_id", b"").decode() == ws.id for _, fields in published)
    return counts


NOTHING = {"deliveries": 0, "inapp_messages": 0, "outbox": 0, "events": 0}


async def test_advertising_at_22_kst_without_night_consent_is_deferred_to_8_the_next_morning(
        workspace, dispatch, dispatch_platform):
    await setup(workspace, INAPP, policy=AD_POLICY)
    ten_pm = datetime(2026, 3, 10, 22, 0, tzinfo=KST)
    reply = await dispatch.Send(dry_run(workspace, "night", ten_pm, granted("channel:inapp", "advertising"),
                                        advertising=True))
    assert (reply.status, reply.channel, reply.rule, reply.id) == ("deferred", "inapp", "night_rule", "")
    assert reply.deferred_until.ToDatetime(tzinfo=KST) == datetime(2026, 3, 11, 8, 0, tzinfo=KST)
    assert "night_rule" in reply.reason and reply.template_version == 1 and reply.advertising

    owl = granted("channel:inapp", "advertising", "night_advertising")
    reply = await dispatch.Send(dry_run(workspace, "night", ten_pm, owl, advertising=True))
    assert (reply.status, reply.provider) == ("sent", "inapp")
    assert orjson.loads(reply.consent_json)["night_advertising"] == {
        "granted": True, "at": ten_pm.astimezone(ZoneInfo("UTC")).isoformat(), "source": "simulation"}
    assert await stored(dispatch_platform, workspace) == NOTHING


async def test_fatigue_counts_the_sends_of_the_same_simulation_only(workspace, dispatch, redis):
    profile = await person(workspace, "sim-tired")
    await setup(workspace, INAPP, policy={"fatigue": {"rules": [{"kind": "channel", "limit": 1, "window": "day"}]}})
    now = datetime.now(KST)  # the real day: counting in the real counters would show below
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), KST)

    first = await dispatch.Send(dry_run(workspace, "run-a", now, profile_id=profile))
    second = await dispatch.Send(dry_run(workspace, "run-a", now, profile_id=profile))
    assert first.status == "sent" and [a.outcome for a in first.attempts] == ["sent"]
    assert (second.status, second.channel) == ("suppressed", "inapp")
    assert second.rule == "fatigue:rules[0] at most 1 per channel per calendar day"
    assert second.next_allowed_at.ToDatetime(tzinfo=KST) == midnight
    assert (await dispatch.Send(dry_run(workspace, "run-b", now, profile_id=profile))).status == "sent"

    # Only scratch keys were written, and they go away on their own.
    keys = [key.decode() async for key in redis.scan_iter(match=f"nudge:dispatch:*{workspace.id}*")]
    assert keys and all(key.startswith(SIM_KEYS) for key in keys)
    assert all(0 < ttl <= 3_600_000 for ttl in [await redis.pttl(key) for key in keys])

    # The real counters never saw them: the person still gets today's one message, and
    # that one is not counted in any simulation.
    assert (await send(workspace, profile, ["inapp"], transactional=False))["status"] == "sent"
    assert (await send(workspace, profile, ["inapp"], transactional=False))["status"] == "suppressed"
    assert (await dispatch.Send(dry_run(workspace, "run-c", now, profile_id=profile))).status == "sent"


async def test_a_dry_run_stores_nothing_calls_no_provider_and_ignores_the_key(workspace, dispatch,
                                                                            dispatch_platform, redis):
    async with fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        await setup(workspace, {"sms": {"text": "{{ profile.name }}님, 배송이 시작되었습니다."}},
                    {"sms": sms_config(nhn)})
        who = {"traits": {"name": "김민수", "phone": "010-1234-5678"}}
        replies = [await dispatch.Send(dry_run(workspace, "quiet", daytime(), who, channels=["sms"],
                                               idempotency_key="order-1")) for _ in range(2)]
        batch = await dispatch.SendBatch(pb.SendBatchRequest(
            context=common_pb2.RequestContext(workspace_id=workspace.id),
            sends=[dry_run(workspace, "quiet", daytime(), who, channels=["sms"], idempotency_key="order-1")]))
        assert [(r.status, r.channel, r.provider, r.id) for r in [*replies, *batch.deliveries]] == [
            ("sent", "sms", "nhn_sms", "")] * 3
        assert nhn.received == []
        assert await stored(dispatch_platform, workspace) == NOTHING
        assert not await redis.exists(f"nudge:dispatch:rate:{workspace.id}:nhn_sms")

        # The key was never claimed: a real send with it is a new send.
        profile = await person(workspace, "sim-real", name="김민수", phone="010-1234-5678")
        real = await send(workspace, profile, ["sms"], key="order-1")
        assert real["status"] == "sent" and real["id"] and len(nhn.received) == 1


async def test_an_unreachable_first_channel_falls_back_to_the_second(workspace, dispatch):
    async with fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        await setup(workspace, {"sms": {"text": "hi"}, **INAPP}, {"sms": sms_config(nhn)})
        reply = await dispatch.Send(dry_run(workspace, "fallback", daytime(), {"traits": {}},
                                            channels=["sms", "inapp"]))
    assert (reply.status, reply.channel, reply.provider) == ("sent", "inapp", "inapp")
    assert [(a.channel, a.outcome) for a in reply.attempts] == [("sms", "unreachable"), ("inapp", "sent")]
    assert reply.attempts[0].at.ToDatetime(tzinfo=KST) == daytime()  # decided at the virtual moment
    assert nhn.received == []


async def test_a_template_that_cannot_render_for_the_person_fails_with_the_reason(workspace, dispatch):
    await setup(workspace, {"inapp": {"title": "Hi", "body": "{{ profile.nickname }}"}})
    reply = await dispatch.Send(dry_run(workspace, "render", daytime(), {"traits": {"name": "Kim"}}))
    assert reply.status == "failed" and "profile.nickname" in reply.reason


@pytest.mark.parametrize("who, at, simulation, field", [
    ("{not json", daytime(), "s", "simulation.person_json"),
    ([], daytime(), "s", "simulation.person_json"),
    ({"consent": {}}, daytime(), "s", "simulation.person_json.consent"),
    ({"traits": "Kim"}, daytime(), "s", "simulation.person_json.traits"),
    ({"consents": {"advertising": {"granted": "yes"}}}, daytime(), "s",
     "simulation.person_json.consents.advertising.granted"),
    ({"consents": {"advertising": {"granted": True, "at": "yesterday"}}}, daytime(), "s",
     "simulation.person_json.consents.advertising.at"),
    ({"consents": {"channel:alimtalk": {"granted": True}}}, daytime(), "s",
     "simulation.person_json.consents.channel:alimtalk"),
    ({"identities": {"phone": "010-1234-5678"}}, daytime(), "s", "simulation.person_json.identities.phone"),
    ({}, None, "s", "simulation.at"),
    ({}, daytime(), "", "simulation.id"),
])
async def test_a_bad_simulation_is_refused_naming_the_field(workspace, dispatch, who, at, simulation, field):
    await setup(workspace, INAPP)
    who = orjson.dumps(who).decode() if not isinstance(who, str) else who
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await dispatch.Send(dry_run(workspace, simulation, at, who))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(refused.value) == field and refused.value.details().startswith(field)
