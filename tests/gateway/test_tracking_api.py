"""The Segment tracking endpoints: auth, limits, bad input; nothing half-written."""

import gzip

import httpx
import orjson
import pytest

from tests.support.api import events_of


@pytest.mark.parametrize("kind,body", [
    ("identify", {"userId": "u1", "traits": {"name": "Kim"}}),
    ("track", {"userId": "u1", "event": "Order Completed", "properties": {"revenue": 39000}}),
    ("page", {"userId": "u1", "name": "Home", "properties": {"path": "/"}}),
    ("screen", {"userId": "u1", "name": "Cart"}),
    ("group", {"userId": "u1", "groupId": "company-9", "traits": {"plan": "team"}}),
    ("alias", {"userId": "u1", "previousId": "anon-77"}),
])
async def test_every_call_type_lands(workspace, kind, body):
    r = await workspace.tracking.post(f"/v1/{kind}", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "outcome": "stored"}
    events = await events_of(workspace, userId="u1")
    assert [e["type"] for e in events] == [kind]


async def test_write_key_in_body_and_gzip_body_are_accepted(workspace, gateway_url):
    payload = {"writeKey": workspace.write_key, "batch": [{"type": "track", "anonymousId": "g1", "event": "Zipped"}]}
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        r = await client.post("/v1/batch", content=gzip.compress(orjson.dumps(payload)),
                              headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1
    assert [e["event"] for e in await events_of(workspace, anonymousId="g1")] == ["Zipped"]


async def test_context_is_kept_with_the_event(workspace):
    context = {"library": {"name": "analytics-ios", "version": "4.1"}, "locale": "ko-KR", "ip": "203.0.113.9"}
    await workspace.tracking.post("/v1/track", json={"userId": "c1", "event": "Opened", "context": context})
    assert (await events_of(workspace, userId="c1"))[0]["context"] == context


async def test_batch_with_bad_calls_stores_the_good_ones_and_names_the_bad(workspace):
    batch = [
        {"type": "track", "userId": "b1", "event": "Good 1", "messageId": "b-1"},
        {"type": "track", "userId": "b1"},                                   # no event name
        {"type": "track", "event": "Orphan"},                                # neither id
        {"type": "identify", "userId": "b1", "traits": "not an object"},    # wrong type
        {"type": "identify", "userId": "b1", "traits": {"phone": "123"}},    # not a phone number
        {"type": "teleport", "userId": "b1"},                                # unknown type
        {"type": "track", "userId": "b1", "event": "Late", "timestamp": "yesterday"},
        {"type": "track", "userId": "b1", "event": "Good 2", "messageId": "b-2"},
    ]
    r = await workspace.tracking.post("/v1/batch", json={"batch": batch})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stored"] == 2
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [
        (1, "event"), (2, "userId"), (3, "traits"), (4, "traits.phone"), (5, "type"), (6, "timestamp")]
    assert all(x["reason"] for x in body["rejected"])
    assert sorted(e["event"] for e in await events_of(workspace, userId="b1")) == ["Good 1", "Good 2"]


async def test_resent_batch_is_stored_once(workspace):
    batch = {"batch": [{"type": "track", "userId": "r1", "event": f"E{i}", "messageId": f"r1-{i}"} for i in range(20)]}
    first = (await workspace.tracking.post("/v1/batch", json=batch)).json()
    second = (await workspace.tracking.post("/v1/batch", json=batch)).json()
    assert (first["stored"], first["duplicates"]) == (20, 0)
    assert (second["stored"], second["duplicates"]) == (0, 20)
    assert len(await events_of(workspace, userId="r1")) == 20


async def test_malformed_json_is_400_and_stores_nothing(workspace):
    r = await workspace.tracking.post("/v1/track", content=b'{"userId": "m1", "event": ')
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "malformed_json"
    assert await events_of(workspace, userId="m1") == []


async def test_missing_both_ids_names_the_field(workspace):
    r = await workspace.tracking.post("/v1/track", json={"event": "Nobody"})
    assert r.status_code == 422
    assert r.json()["error"]["details"] == {"field": "userId"}


async def test_wrong_types_name_the_field(workspace):
    r = await workspace.tracking.post("/v1/identify", json={"userId": {"nested": 1}})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["field"] == "userId"
    r = await workspace.tracking.post("/v1/track", json={"userId": "w1", "event": "X", "properties": [1, 2]})
    assert r.json()["error"]["details"]["field"] == "properties"
    assert await events_of(workspace, userId="w1") == []


async def test_oversized_event_is_413(workspace):
    r = await workspace.tracking.post("/v1/track", json={"userId": "big", "event": "Huge",
                                                         "properties": {"blob": "x" * 40_000}})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert await events_of(workspace, userId="big") == []


async def test_oversized_event_inside_a_batch_is_rejected_by_index(workspace):
    batch = [{"type": "track", "userId": "big2", "event": "Small"},
             {"type": "track", "userId": "big2", "event": "Huge", "properties": {"blob": "x" * 40_000}}]
    body = (await workspace.tracking.post("/v1/batch", json={"batch": batch})).json()
    assert body["stored"] == 1 and [x["index"] for x in body["rejected"]] == [1]


async def test_oversized_batch_is_413_and_stores_nothing(workspace):
    batch = [{"type": "track", "userId": "huge", "event": "E", "properties": {"pad": "y" * 20_000}}
             for _ in range(30)]  # ~600 KB
    r = await workspace.tracking.post("/v1/batch", json={"batch": batch})
    assert r.status_code == 413
    assert await events_of(workspace, userId="huge") == []


async def test_gzip_bomb_is_413(workspace):
    bomb = gzip.compress(b'{"batch": [' + b" " * 5_000_000 + b"]}")
    r = await workspace.tracking.post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413


async def test_unknown_key_is_401(gateway_url):
    async with httpx.AsyncClient(base_url=gateway_url, auth=("nk_w_nope_nope", "")) as client:
        r = await client.post("/v1/track", json={"userId": "x", "event": "E"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


async def test_missing_key_is_401(gateway_url):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        r = await client.post("/v1/track", json={"userId": "x", "event": "E"})
    assert r.status_code == 401


async def test_admin_key_cannot_track(workspace, gateway_url):
    async with httpx.AsyncClient(base_url=gateway_url, auth=(workspace.admin_key, "")) as client:
        r = await client.post("/v1/track", json={"userId": "x", "event": "E"})
    assert r.status_code == 403


async def test_errors_never_leak_a_stack_trace(workspace):
    r = await workspace.tracking.post("/v1/batch", json={"batch": "nope"})
    assert r.status_code == 422
    assert set(r.json()) == {"error"} and set(r.json()["error"]) == {"code", "message", "details"}
    assert "Traceback" not in r.text



async def test_nul_characters_are_rejected_by_field_and_the_rest_of_the_batch_lands(workspace):
    r = await workspace.tracking.post("/v1/track", json={"userId": "nul", "event": "E", "properties": {"a": "x\u0000y"}})
    assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "properties.a"}
    batch = [{"type": "track", "userId": "nul", "event": "Fine"},
             {"type": "track", "userId": "nul", "event": "E", "messageId": "m\u0000"}]
    body = (await workspace.tracking.post("/v1/batch", json={"batch": batch})).json()
    assert body["stored"] == 1 and [(x["index"], x["field"]) for x in body["rejected"]] == [(1, "messageId")]


async def test_timestamps_outside_1970_to_2099_name_the_field(workspace):
    for stamp in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z"):
        r = await workspace.tracking.post("/v1/track", json={"userId": "t", "event": "E", "timestamp": stamp})
        assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "timestamp"}, stamp
    assert await events_of(workspace, userId="t") == []


async def test_a_device_clock_in_the_future_is_taken_as_the_receipt_time(workspace):
    r = await workspace.tracking.post("/v1/identify", json={"userId": "fast-clock", "traits": {"plan": "free"},
                                                            "timestamp": "2099-01-01T00:00:00Z"})
    assert r.status_code == 200
    (event,) = await events_of(workspace, userId="fast-clock")
    assert event["timestamp"] < "2099" and event["originalTimestamp"].startswith("2099")
    # so a later change of the trait is not ignored
    await workspace.tracking.post("/v1/identify", json={"userId": "fast-clock", "traits": {"plan": "pro"}})
    profile = (await workspace.admin.get("/v1/profiles", params={"userId": "fast-clock"})).json()["profiles"][0]
    assert profile["traits"] == {"plan": "pro"}


async def test_a_resent_message_id_changes_nothing_even_with_other_content(workspace):
    await workspace.tracking.post("/v1/identify", json={"userId": "dup", "traits": {"plan": "free"}, "messageId": "d1"})
    r = await workspace.tracking.post("/v1/identify", json={"userId": "dup", "traits": {"plan": "pro"},
                                                            "messageId": "d1"})
    assert r.json()["outcome"] == "duplicate"
    r = await workspace.tracking.post("/v1/identify", json={"userId": "someone-else", "messageId": "d1"})
    assert r.json()["outcome"] == "duplicate"
    profile = (await workspace.admin.get("/v1/profiles", params={"userId": "dup"})).json()["profiles"][0]
    assert profile["traits"] == {"plan": "free"}
    assert (await workspace.admin.get("/v1/profiles", params={"userId": "someone-else"})).json()["profiles"] == []


async def test_truncated_gzip_is_400_and_stores_nothing(workspace):
    whole = gzip.compress(orjson.dumps({"batch": [{"type": "track", "userId": "cut", "event": "E"}]}))
    r = await workspace.tracking.post("/v1/batch", content=whole[:-12], headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_body"
    assert await events_of(workspace, userId="cut") == []
