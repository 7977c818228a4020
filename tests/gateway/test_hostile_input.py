"""Hostile input at the gateway and at a service's own edge: NUL, lone surrogates, numbers no
column holds, deep nesting, huge bodies. Each is a 4xx in the error envelope naming the field
(down to the key that holds it); nothing reaches PostgreSQL or protobuf, nothing is stored."""

import grpc
import pytest

from kit.errors import field_of
from nudge.common.v1 import common_pb2
from nudge.segment.v1 import segment_pb2, segment_pb2_grpc

RULES = '"rules": {"trait": "plan", "op": "eq", "value": "pro"}'


def _raw(text: str) -> dict:
    return {"content": text.encode(), "headers": {"Content-Type": "application/json"}}


def _refused(response, field: str, status: int = 422) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["details"] == {"field": field}, error
    assert error["message"].startswith(f"{field}: "), error


@pytest.mark.parametrize("body, field", [
    ('{"name": "a\\u0000b", %s}' % RULES, "name"),
    ('{"name": "s", "rules": {"trait": "pl\\ud800an", "op": "exists"}}', "rules.trait"),
    ('{"name": "s", "rules": {"all": [{"tr\\udfffait": 1}]}}', "rules.all[0].tr\\udfffait"),
    ('{"name": "s", "rules": {"trait": "n", "op": "gt", "value": 9223372036854775808}}', "rules.value"),
    ('{"name": "s", "rules": {"trait": "n", "op": "gt", "value": 1e400}}', "rules.value"),
    ('{"name": "s", "description": "%s", %s}' % ("x" * 100_001, RULES), "description"),
])
async def test_what_no_column_holds_is_refused_naming_the_field(workspace, body, field):
    _refused(await workspace.admin.post("/v1/segments", **_raw(body)), field)
    assert (await workspace.admin.get("/v1/segments")).json()["segments"] == []


async def test_nesting_beyond_32_levels_is_refused_where_it_goes_too_deep(workspace):
    deep = "[" * 40 + "]" * 40
    r = await workspace.admin.put("/v1/templates/t1", **_raw('{"channels": {"webhook": {"json": {"a": %s}}}}' % deep))
    assert r.status_code == 422 and r.json()["error"]["details"]["field"].startswith("channels.webhook.json.a[0]")
    very_deep = "[" * 5000 + "]" * 5000  # beyond what the JSON parser itself recurses into
    _refused(await workspace.admin.put("/v1/templates/t1", **_raw('{"channels": %s}' % very_deep)), "body")


async def test_a_body_over_a_megabyte_is_refused_before_it_is_read_whole(workspace):
    r = await workspace.admin.put("/v1/dispatch-policy", json={"sender_name": "x" * (1024 * 1024)})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


async def test_bad_json_and_bad_utf8_are_422_not_400_without_a_field(workspace):
    _refused(await workspace.admin.post("/v1/segments", **_raw('{"name": ')), "body")
    r = await workspace.admin.post("/v1/segments", content=b'{"name": "\xff"}',
                                   headers={"Content-Type": "application/json"})
    _refused(r, "body")


async def test_path_and_query_parameters_are_checked_too(workspace):
    _refused(await workspace.admin.get("/v1/segments/a%00b"), "segment_id")
    _refused(await workspace.admin.get("/v1/profiles", params={"userId": "a\x00"}), "userId")
    _refused(await workspace.admin.get("/v1/segments/" + "x" * 201), "segment_id")
    r = await workspace.admin.get("/v1/templates/t1", params={"version": 2**40})
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"][0]["field"] == "version"


async def test_tracking_properties_are_held_to_the_same_limits(workspace):
    r = await workspace.tracking.post("/v1/track", **_raw(
        '{"userId": "u", "event": "E", "properties": {"n": 18446744073709551615}}'))
    _refused(r, "properties.n")


async def test_a_service_checks_the_same_at_its_own_edge(segment_platform):
    channel = grpc.aio.insecure_channel(segment_platform.address)
    stub = segment_pb2_grpc.SegmentServiceStub(channel)
    context = common_pb2.RequestContext(workspace_id="ws-edge")
    try:
        for request, field in [
            (segment_pb2.CreateSegmentRequest(context=context, name="a\x00", rules_json='{"trait": "p", "op": "exists"}'),
             "name"),
            (segment_pb2.CreateSegmentRequest(context=context, name="s", rules_json='{"trait": "p\\u0000", "op": "exists"}'),
             "rules.trait"),
            (segment_pb2.CreateSegmentRequest(context=context, name="s", rules_json='{"trait": "n", "op": "gt", '
                                                                                    '"value": 9223372036854775808}'),
             "rules.value"),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.CreateSegment(request)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert field_of(raised.value) == field
    finally:
        await channel.close()


async def test_a_field_naming_a_non_ascii_key_reaches_the_caller(workspace):
    r = await workspace.admin.put("/v1/templates/t1", json={"channels": {"이메일": {"text": "x"}}})
    _refused(r, "channels.이메일")
