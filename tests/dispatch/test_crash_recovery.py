"""Sends whose runner died: before the provider call they are run again, once; during it,
they are reported failed with an unknown outcome and never sent again."""

import asyncio
import uuid
from dataclasses import asdict
from datetime import timedelta

from sqlalchemy import update

from services.dispatch.models import deliveries
from services.dispatch.repository import DispatchRepository
from services.dispatch.service import SendSpec
from tests.dispatch.test_send_pipeline import inbox, person, setup


async def orphan(service, workspace_id: str, spec: SendSpec, status: str, age: timedelta) -> str:
    """A delivery as a runner that died left it: claimed, maybe marked sending, then silence."""
    delivery_id = str(uuid.uuid4())
    async with service.sessions() as session, session.begin():
        await DispatchRepository(session).claim(workspace_id, delivery_id, spec.idempotency_key, spec.profile_id,
                                                asdict(spec), "dead-runner", service.clock.now())
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
    results = await asyncio.gather(service.send(workspace.id, spec), service.send(workspace.id, spec),
                                   service.run_deferred_once())
    for _ in range(50):
        current = await service.delivery(workspace.id, delivery_id)
        if current["status"] == "sent":
            break
        await asyncio.sleep(0.1)
    assert current["status"] == "sent" and {r["id"] for r in results[:2]} == {delivery_id}
    assert len(await inbox(workspace, "orphan")) == 1


async def test_a_send_cut_off_during_the_provider_call_is_never_sent_again(workspace, dispatch_platform):
    service = dispatch_platform.service
    profile = await person(workspace, "cut-off")
    await setup(workspace, {"inapp": {"title": "t", "body": "b"}})
    spec = SendSpec(f"k-{uuid.uuid4()}", profile, ["inapp"], "hello")
    delivery_id = await orphan(service, workspace.id, spec, "sending", timedelta(minutes=5))
    answer = await service.send(workspace.id, spec)
    assert answer["id"] == delivery_id and answer["status"] == "failed" and answer["rule"] == "unknown_outcome"
    assert await inbox(workspace, "cut-off") == []
    # The dead runner, should it come back, can record nothing any more.
    async with service.sessions() as session, session.begin():
        assert not await DispatchRepository(session).mark_sending(workspace.id, delivery_id, "dead-runner",
                                                                  "inapp", "inapp", service.clock.now())
