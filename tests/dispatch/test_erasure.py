"""An erased person through the gateway: their deferred message is never sent (it fails, and
says why), and dispatch forgets their inbox, engagement evidence and send variables, also
those of a send asked for after the erasure."""

import uuid
from datetime import datetime, time, timedelta

from sqlalchemy import func, select

from kit.payloads import DELIVERIES
from kit.streams import StreamEvent
from services.dispatch.models import deliveries, engagements, forgotten_profiles, inapp_messages
from tests.support.api import consent, inbox, person, send, setup, signed_in
from tests.support.channels import KST
from tests.support.streams import delivery_events
from tests.support.waiting import a_whole_pass, eventually


async def _delivery(ws, delivery_id: str) -> dict:
    return (await ws.admin.get(f"/v1/deliveries/{delivery_id}")).json()


async def test_an_erased_person_gets_nothing_more_and_dispatch_forgets_them(workspace, dispatch_clock,
                                                                           dispatch_platform, redis):
    night = datetime.combine(datetime.now(KST).date(), time(22, 30), KST)
    dispatch_clock.set(night)
    await setup(workspace, {"inapp": {"title": "Hi {{ profile.name }}", "body": "{{ event.item }} is back"}},
                policy={"sender_name": "Nudge Shop", "opt_out_phone": "080-000-0000"})
    leaving = await person(workspace, "leaving", name="Kim")
    await consent(workspace, leaving, inapp=True, advertising=True)
    shown = await send(workspace, leaving, ["inapp"], variables={"event": {"item": "Red shoes"}})
    assert shown["status"] == "sent"
    seen = await workspace.tracking.post(f"/v1/inapp/{shown['id']}/impression", **await signed_in(workspace, "leaving"))
    assert seen.status_code == 200, seen.text
    deferred = await send(workspace, leaving, ["inapp"], advertising=True, variables={"event": {"item": "Red shoes"}})
    assert deferred["status"] == "deferred"
    await delivery_events(redis, workspace.id, deferred["id"], ["delivery.deferred"])  # published: before the tail
    stream_tail = (await redis.xrevrange(DELIVERIES, count=1) or [(b"0-0", None)])[0][0]

    erased = await workspace.admin.delete(f"/v1/profiles/{leaving}")
    assert erased.status_code == 200, erased.text
    async def decided():
        current = await _delivery(workspace, deferred["id"])
        return current if current["status"] != "deferred" else None
    current = await eventually(decided, interval=0.1)
    assert (current["status"], current["rule"]) == ("failed", "erased")
    async def announcements():  # the relay publishes it after the commit
        return [(e.type, e.payload["rule"]) for e in (
            StreamEvent.from_fields(fields) for _, fields in await redis.xrange(DELIVERIES, min=b"(" + stream_tail))
            if e.payload.get("delivery_id") == deferred["id"]]
    announced = await eventually(announcements, interval=0.1)
    assert announced == [("delivery.failed", "erased")]

    async with dispatch_platform.service.sessions() as session:
        for table in (inapp_messages, engagements):
            assert await session.scalar(select(func.count()).select_from(table).where(
                table.c.workspace_id == workspace.id, table.c.profile_id == leaving)) == 0
        kept = (await session.execute(select(deliveries.c.status, deliveries.c.request, deliveries.c.consent).where(
            deliveries.c.workspace_id == workspace.id, deliveries.c.profile_id == leaving)
            .order_by(deliveries.c.created_at))).all()
    assert [(status, request["variables"], evidence) for status, request, evidence in kept] == [
        ("sent", {}, {}), ("failed", {}, {})]  # what was sent stays on record, without their data

    # a report that still names them (an SDK with the old id) is answered but records nothing
    _, _, recorded = await dispatch_platform.service.record_inapp_engagement(
        workspace.id, shown["id"], leaving, "impression", "app/1.0", "10.1.2.3", str(uuid.uuid4()))
    assert recorded is False
    async with dispatch_platform.service.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(engagements).where(
            engagements.c.workspace_id == workspace.id, engagements.c.profile_id == leaving)) == 0

    dispatch_clock.set(datetime.combine(night.date() + timedelta(days=1), time(8), KST) + timedelta(seconds=1))
    await a_whole_pass(lambda: dispatch_platform.service.deferred_sweeps)  # the deferred runner's, at 8:00
    assert (await _delivery(workspace, deferred["id"]))["status"] == "failed"
    assert await inbox(workspace, "leaving") == []


async def test_a_send_for_someone_already_erased_keeps_none_of_their_data(workspace, dispatch_platform):
    await setup(workspace, {"inapp": {"title": "Hi", "body": "{{ event.item }} is back"}})
    gone = await person(workspace, "gone-already")
    assert (await workspace.admin.delete(f"/v1/profiles/{gone}")).status_code == 200

    async def forgotten():
        async with dispatch_platform.service.sessions() as session:
            return await session.scalar(select(forgotten_profiles.c.at).where(
                forgotten_profiles.c.workspace_id == workspace.id, forgotten_profiles.c.profile_id == gone))
    await eventually(forgotten)
    late = await send(workspace, gone, ["inapp"], variables={"event": {"item": "Red shoes"}})
    assert late["status"] in ("failed", "suppressed") and late["consent"] == {}
    async with dispatch_platform.service.sessions() as session:
        request = await session.scalar(select(deliveries.c.request).where(
            deliveries.c.workspace_id == workspace.id, deliveries.c.id == late["id"]))
    assert request["variables"] == {}
