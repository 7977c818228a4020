"""Templates (versioned), channel configuration (credentials masked), the sending policy,
and SendBatch over gRPC."""

import grpc
import orjson

from nudge.common.v1 import common_pb2
from nudge.dispatch.v1 import dispatch_pb2, dispatch_pb2_grpc
from tests.support.api import inbox, person


async def test_templates_are_versioned_and_the_latest_is_used(workspace):
    for text in ("first", "second"):
        response = await workspace.admin.put("/v1/templates/news", json={"name": "News", "channels": {
            "inapp": {"title": "t", "body": text}}})
        assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    latest = (await workspace.admin.get("/v1/templates/news")).json()
    first = (await workspace.admin.get("/v1/templates/news", params={"version": 1})).json()
    assert latest["channels"]["inapp"]["body"] == "second" and first["channels"]["inapp"]["body"] == "first"
    listed = (await workspace.admin.get("/v1/templates")).json()["templates"]
    assert [(t["id"], t["version"]) for t in listed] == [("news", 2)]
    assert (await workspace.admin.get("/v1/templates/missing")).status_code == 404


async def test_channel_credentials_are_masked_and_the_policy_round_trips(workspace):
    config = {"host": "127.0.0.1", "port": 2525, "sender": "shop@example.kr", "password": "hunter2",
              "username": "shop"}
    assert (await workspace.admin.put("/v1/channels/email", json={"provider": "smtp", "config": config})
            ).status_code == 200
    shown = (await workspace.admin.get("/v1/channels")).json()["channels"]
    assert [(c["channel"], c["provider"], c["config"]["password"], c["config"]["host"]) for c in shown] == [
        ("email", "smtp", "••••", "127.0.0.1")]
    policy = {"fatigue": {"rules": [{"kind": "template", "limit": 1, "window": "P7D"}]},
              "quiet_hours": {"start": "22:00", "end": "08:00"}, "sender_name": "Shop",
              "opt_out_phone": "080-000-0000"}
    assert (await workspace.admin.put("/v1/dispatch-policy", json=policy)).status_code == 200
    assert (await workspace.admin.get("/v1/dispatch-policy")).json() == policy
    response = await workspace.admin.put("/v1/channels/email", json={"provider": "carrier-pigeon", "config": {}})
    assert response.status_code == 422 and response.json()["error"]["details"]["field"] == "config.provider"


async def test_send_batch_answers_each_send_in_order(workspace, dispatch_platform):
    first, second = await person(workspace, "batch-1"), await person(workspace, "batch-2")
    await workspace.admin.put("/v1/templates/hello", json={"channels": {"inapp": {"title": "t", "body": "b"}}})
    context = common_pb2.RequestContext(workspace_id=workspace.id)
    sends = [dispatch_pb2.SendRequest(idempotency_key=f"batch-{p}", profile_id=p, channels=["inapp"],
                                      template_id="hello") for p in (first, second)]
    async with grpc.aio.insecure_channel(dispatch_platform.address) as channel:
        client = dispatch_pb2_grpc.DispatchServiceStub(channel)
        reply = await client.SendBatch(dispatch_pb2.SendBatchRequest(context=context, sends=sends))
        again = await client.SendBatch(dispatch_pb2.SendBatchRequest(context=context, sends=sends[:1]))
    assert [(d.profile_id, d.status) for d in reply.deliveries] == [(first, "sent"), (second, "sent")]
    assert again.deliveries[0].id == reply.deliveries[0].id
    assert len(await inbox(workspace, "batch-1")) == 1
    assert orjson.loads(reply.deliveries[0].consent_json) == {}
