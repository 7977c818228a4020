"""Sends whose runner died: before the provider call they are run again, once; during it,
they are reported failed with an unknown outcome and never sent again. An in-app message
and its delivery's outcome commit together. A replica that is stopping starts no provider call."""

import asyncio
import uuid
from dataclasses import asdict
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from kit.outbox import Outbox
from services.dispatch.models import deliveries, inapp_messages
from services.dispatch.models import outbox as dispatch_outbox
from services.dispatch.repository import DispatchRepository
from services.dispatch.service import DispatchService, SendSpec, request_hash
from tests.support.api import inbox, person, setup
from tests.support.receiver import webhook_config
from tests.support.streams import delivery_events
from tests.support.waiting import eventually


async def orphan(service, workspace_id: str, spec: SendSpec, status: str, age: timedelta) -> str:
    """A delivery as a runner that died left it: claimed, maybe marked sending, then silence."""
    delivery_id = str(uuid.uuid4())
    async with service.sessions() as session, session.begin():
        await DispatchRepository(session).claim(workspace_id, delivery_id, spec.idempotency_key, spec.profile_id,
                                                asdict(spec), request_hash(spec), "dead-runner", service.clock.now())
        await session.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(
            status=status, channel="inapp", provider="inapp", updated_at=service.clock.now() - age))
    return delivery_id


async def test_a_send_orphaned_before_the_provider_call_is_sent_once(workspace, dispatch_platform):
    service = dispatch_platform.service
    profile = await person(workspace, "orphan")
    await setup(workspace, {"inapp": {"title": "t", "body": "b"}})
    spec = SendSpec(f"k-{uuid.uuid4()}", profile, ["inapp"], "hello")
    delivery_id = await orphan(service, workspace.id, spec, "pending", timedelta(minutes=5))
    # Two callers retry the key at once while the sweeper also runs: one of them runs it.
    results = await asyncio.gather(service.send(workspace.id, "test-key", spec),
                                   service.send(workspace.id, "test-key", spec), service.run_deferred_once())
    async def sent():
        current = await service.delivery(workspace.id, delivery_id)
        return current if current["status"] == "sent" else None
    current = await eventually(sent, interval=0.1)
    assert current["status"] == "sent" and {r["id"] for r in results[:2]} == {delivery_id}
    assert len(await inbox(workspace, "orphan")) == 1


async def test_a_send_cut_off_during_the_provider_call_is_never_sent_again(workspace, dispatch_platform):
    service = dispatch_platform.service
    profile = await person(workspace, "cut-off")
    await setup(workspace, {"inapp": {"title": "t", "body": "b"}})
    spec = SendSpec(f"k-{uuid.uuid4()}", profile, ["inapp"], "hello")
    delivery_id = await orphan(service, workspace.id, spec, "sending", timedelta(minutes=5))
    answer = await service.send(workspace.id, "test-key", spec)
    assert answer["id"] == delivery_id and answer["status"] == "failed" and answer["rule"] == "unknown_outcome"
    assert await inbox(workspace, "cut-off") == []
    # The dead runner, should it come back, can record nothing any more.
    async with service.sessions() as session, session.begin():
        assert not await DispatchRepository(session).mark_sending(workspace.id, delivery_id, "dead-runner",
                                                                  "inapp", "inapp", service.clock.now())


async def test_an_in_app_message_and_its_sent_status_commit_together(workspace, dispatch_platform, dispatch_clock,
                                                                     monkeypatch):
    """A crash at the commit of the outcome leaves neither the message nor a `sending` row that
    would later read as an unknown outcome; the send is then taken over and shown once."""
    service = dispatch_platform.service
    profile = await person(workspace, "atomic")
    await setup(workspace, {"inapp": {"title": "t", "body": "b"}})
    spec = SendSpec(f"k-{uuid.uuid4()}", profile, ["inapp"], "hello")
    finish = DispatchRepository.finish

    async def crash_on_sent(self, *args, **values):
        if values.get("status") == "sent":
            raise RuntimeError("the process died here")
        return await finish(self, *args, **values)
    monkeypatch.setattr(DispatchRepository, "finish", crash_on_sent)
    with pytest.raises(RuntimeError):
        await service.send(workspace.id, "test-key", spec)
    async with service.sessions() as session:
        row = (await session.execute(select(deliveries).where(
            deliveries.c.workspace_id == workspace.id, deliveries.c.idempotency_key == spec.idempotency_key))).one()
        shown = (await session.execute(select(inapp_messages).where(
            inapp_messages.c.workspace_id == workspace.id, inapp_messages.c.delivery_id == row.id))).all()
    assert shown == [] and row.status == "pending"  # neither the message nor a `sending` mark

    monkeypatch.setattr(DispatchRepository, "finish", finish)
    dispatch_clock.advance(timedelta(seconds=dispatch_platform.settings.sending_lease_seconds + 1))
    answer = await service.send(workspace.id, "test-key", spec)  # the key again, after the runner's lease
    if answer["status"] != "sent":
        async def sent():
            current = await service.delivery(workspace.id, row.id)
            return current if current["status"] == "sent" else None
        answer = await eventually(sent, interval=0.1)
    assert answer["id"] == row.id and answer["status"] == "sent" and answer["rule"] == ""
    assert len(await inbox(workspace, "atomic")) == 1


async def test_a_replica_that_is_stopping_hands_a_send_to_another_before_the_provider_call(workspace, receiver,
                                                                                          dispatch_platform):
    """Once a replica drains, a send that has not reached its provider is deferred to now (never
    started and then cut off); another replica's deferred runner sends it once."""
    platform = dispatch_platform
    stopping = DispatchService(platform.service.sessions, platform.service.redis, Outbox(dispatch_outbox),
                               platform.clock, platform.service.profiles, platform.service.http, platform.settings)
    await stopping.drain(1)  # nothing in flight: it only stops starting provider calls
    profile = await person(workspace, "handed-over")
    await setup(workspace, {"webhook": {"body": {"text": "hello"}}}, {"webhook": ("webhook", webhook_config(receiver))})
    answer = await stopping.send(workspace.id, "test-key", SendSpec(f"k-{uuid.uuid4()}", profile, ["webhook"], "hello"))
    # Deferred to now, so the platform's own replica may already have taken it when the answer is read.
    assert answer["status"] in ("deferred", "pending", "sent")
    async def sent():  # the platform's own replica takes it from the deferred queue
        current = await platform.service.delivery(workspace.id, answer["id"])
        return current if current["status"] == "sent" else None
    current = await eventually(sent, interval=0.1)
    assert current["status"] == "sent" and len(receiver.requests) == 1
    # The stopping replica announced its hand-over, and only that.
    announced = await delivery_events(platform.service.redis, workspace.id, answer["id"],
                                      ["delivery.deferred", "delivery.sent"])
    assert [(e.type, e.payload["rule"]) for e in announced] == [("delivery.deferred", "retry"), ("delivery.sent", "")]
