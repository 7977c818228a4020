"""What the browser and mobile SDKs send, as they send it: analytics.js (analytics-next's
Segment.io plugin: one call per request on /v1/i|t|p|s|g|a, `text/plain`, the write key and
`sentAt` in the body; batching mode on /v1/b) and analytics-kotlin / analytics-swift (a file
of calls on /v1/b, gzip from Kotlin, the write key in the body). Pages of a workspace's
allowed origins may read the answers (CORS); other pages may not."""

import gzip
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import orjson
import pytest

from tests.support.api import events_of, inbox, person, send, setup, signed_in
from tests.support.waiting import eventually

ORIGIN = "https://shop.example"
METADATA = {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []}
# The device's clock runs a day fast: `sentAt` is how the server corrects it.
SKEW = timedelta(days=1)


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _device_now() -> datetime:
    return datetime.now(timezone.utc) + SKEW


def analytics_js(write_key: str, anonymous_id: str, call: dict) -> dict:
    """One call as analytics-next's Segment.io plugin posts it (its `normalize`): the page and
    library in the context, the write key, `sentAt` and `_metadata` in the body."""
    now = _device_now()
    return {"integrations": {}, "anonymousId": anonymous_id, "userId": None, "timestamp": _iso(now),
            "messageId": f"ajs-next-{int(now.timestamp() * 1000)}-{uuid.uuid4()}",
            "context": {"page": {"path": "/products/1", "referrer": "https://search.example/", "search": "",
                                 "title": "Red shoes", "url": f"{ORIGIN}/products/1"},
                        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
                                     "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                        "locale": "ko-KR", "library": {"name": "analytics.js", "version": "npm:next-1.81.0"}},
            **call, "writeKey": write_key, "sentAt": _iso(now), "_metadata": METADATA}


def mobile(library: str, version: str, anonymous_id: str, call: dict) -> dict:
    """One call as analytics-kotlin / analytics-swift store it in their batch file."""
    return {"anonymousId": anonymous_id, "userId": "", "messageId": str(uuid.uuid4()), "integrations": {},
            "timestamp": _iso(_device_now() - timedelta(minutes=1)),
            "context": {"app": {"name": "Shop", "version": "2.3.0", "build": "230", "namespace": "example.shop"},
                        "device": {"id": str(uuid.uuid4()), "manufacturer": "samsung", "model": "SM-S918N"},
                        "os": {"name": "Android" if library == "analytics-kotlin" else "iOS", "version": "14"},
                        "screen": {"width": 1080, "height": 2340, "density": 3.0},
                        "network": {"wifi": True, "cellular": False}, "locale": "ko-KR", "timezone": "Asia/Seoul",
                        "library": {"name": library, "version": version}, "instanceId": str(uuid.uuid4())},
            "_metadata": {"bundled": [], "unbundled": [], "bundledIds": []}, **call}


def _calls(user: str) -> list[tuple[str, dict]]:
    """A visit: an anonymous page view, sign-in, and what the person does then."""
    return [("page", {"type": "page", "name": "Red shoes", "properties": {"path": "/products/1",
                                                                       "url": f"{ORIGIN}/products/1"}}),
            ("screen", {"type": "screen", "name": "Cart", "properties": {}}),
            ("alias", {"type": "alias", "userId": user}),
            ("identify", {"type": "identify", "userId": user, "traits": {"name": "Kim"}}),
            ("track", {"type": "track", "userId": user, "event": "Product Added",
                       "properties": {"product_id": "p-1", "price": 39000}}),
            ("group", {"type": "group", "userId": user, "groupId": "company-9", "traits": {"plan": "team"}})]


async def _allow(ws, *origins: str) -> None:
    response = await ws.admin.put("/v1/settings/allowed-origins", json={"origins": list(origins)})
    assert response.status_code == 200, response.text


async def _landed(ws, user: str, library: str, count: int) -> list[dict]:
    """The person's events once all `count` are stored, checked to be the SDK's with the device clock corrected."""
    events = await eventually(lambda: _all(ws, user, count))
    for event in events:
        assert event["context"]["library"]["name"] == library
        # The device wrote a time a day ahead; with its sentAt the server moved it back.
        device_time = datetime.fromisoformat(event["originalTimestamp"].replace("Z", "+00:00"))
        stored = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        assert device_time - stored > SKEW - timedelta(hours=1), event
    return events


async def _all(ws, user: str, count: int) -> list[dict] | None:
    events = await events_of(ws, userId=user)
    return events if len(events) == count else None


async def test_analytics_js_calls_land_on_the_short_paths_and_its_pages_read_the_answers(workspace, gateway_url):
    await _allow(workspace, "http://localhost:3000", ORIGIN)
    anonymous_id = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=gateway_url) as page:  # no Authorization: the key is in the body
        for call_type, call in _calls("js-kim"):
            if call_type == "alias":  # analytics.alias(userId) of a visitor: previousId is its anonymousId
                call = {**call, "previousId": anonymous_id}
            body = analytics_js(workspace.write_key, anonymous_id, call)
            response = await page.post(f"/v1/{call_type[0]}", content=orjson.dumps(body),
                                       headers={"Content-Type": "text/plain", "Origin": ORIGIN})
            assert response.status_code == 200 and response.json() == {"success": True, "outcome": "stored"}, \
                response.text
            assert response.headers["access-control-allow-origin"] == ORIGIN
            assert "Origin" in response.headers["vary"] and "access-control-allow-credentials" not in response.headers
            assert "RateLimit-Remaining" in response.headers["access-control-expose-headers"]
        # Batching mode: the calls without their own sentAt, one sentAt for the request.
        batch = [analytics_js(workspace.write_key, anonymous_id, {"type": "track", "userId": "js-kim",
                                                                  "event": f"Viewed {i}"}) for i in range(2)]
        sent_at = batch[0]["sentAt"]
        response = await page.post("/v1/b", content=orjson.dumps({
            "writeKey": workspace.write_key, "sentAt": sent_at,
            "batch": [{k: v for k, v in call.items() if k != "sentAt"} for call in batch]}),
            headers={"Content-Type": "text/plain", "Origin": ORIGIN})
        assert response.status_code == 200 and response.json()["stored"] == 2, response.text
        assert response.headers["access-control-allow-origin"] == ORIGIN
        # A refused call from the page is readable too, so the SDK can tell why.
        refused = await page.post("/v1/t", content=orjson.dumps(analytics_js(workspace.write_key, anonymous_id,
                                                                             {"type": "track"})),
                                  headers={"Content-Type": "text/plain", "Origin": ORIGIN})
        assert refused.status_code == 422 and refused.headers["access-control-allow-origin"] == ORIGIN

    events = await _landed(workspace, "js-kim", "analytics.js", 8)
    assert sorted(e["type"] for e in events) == sorted(["page", "screen", "alias", "identify", "track", "group",
                                                        "track", "track"])
    assert {e["context"]["page"]["url"] for e in events} == {f"{ORIGIN}/products/1"}


@pytest.mark.parametrize("library,version", [("analytics-kotlin", "1.16.3"), ("analytics-swift", "1.7.1")])
async def test_a_mobile_sdks_batch_file_lands_on_the_short_batch_path(workspace, gateway_url, library, version):
    user, anonymous_id = f"{library}-kim", str(uuid.uuid4())
    calls = []
    for call_type, call in _calls(user):
        if call_type == "alias":
            call = {**call, "previousId": anonymous_id}
        calls.append(mobile(library, version, anonymous_id, call))
    tail = f'],"sentAt":"{_iso(_device_now())}","writeKey":"{workspace.write_key}"}}'
    if library == "analytics-kotlin":  # EventsFileManager: one line, gzip, text/plain, chunked
        file = ('{"batch":[' + ",".join(orjson.dumps(c).decode() for c in calls) + tail).encode()
        headers = {"Content-Type": "text/plain", "Content-Encoding": "gzip", "User-Agent": f"{library}/{version}"}
        body = gzip.compress(file)

        async def chunks():
            for start in range(0, len(body), 512):
                yield body[start:start + 512]
        content = chunks()
    else:  # DirectoryStore: one call a line, commas leading, application/json
        lines = ["{ \"batch\": ["] + [("" if i == 0 else ",") + orjson.dumps(c).decode() for i, c in enumerate(calls)]
        content = ("\n".join(lines) + "\n" + tail + "\n").encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": f"analytics-ios/{version}"}
    async with httpx.AsyncClient(base_url=gateway_url) as app:
        response = await app.post("/v1/b", content=content, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "stored": 6, "duplicates": 0, "rejected": []}
    assert "access-control-allow-origin" not in response.headers  # an app sends no Origin
    events = await _landed(workspace, user, library, 6)
    assert {e["messageId"] for e in events} == {c["messageId"] for c in calls}


async def test_pages_of_other_origins_cannot_read_the_answers(workspace, gateway_url):
    body = orjson.dumps(analytics_js(workspace.write_key, str(uuid.uuid4()), {"type": "track", "userId": "o-1",
                                                                              "event": "Seen"}))
    async with httpx.AsyncClient(base_url=gateway_url) as page:
        # No allowed origin yet: the call is stored (the write key is public), its answer unreadable.
        before = await page.post("/v1/t", content=body, headers={"Origin": ORIGIN, "Content-Type": "text/plain"})
        await _allow(workspace, ORIGIN)
        other = await page.post("/v1/t", content=body, headers={"Origin": "https://evil.example"})
        lookalike = await page.post("/v1/t", content=body, headers={"Origin": f"{ORIGIN}.evil.example"})
        unknown_key = await page.post("/v1/t", content=orjson.dumps({**orjson.loads(body), "writeKey": "nk_w_x_y"}),
                                      headers={"Origin": ORIGIN})
        admin = await page.get("/v1/settings/allowed-origins",
                               headers={"Origin": ORIGIN, "Authorization": f"Bearer {workspace.admin_key}"})
    assert [r.status_code for r in (before, other, lookalike, unknown_key, admin)] == [200, 200, 200, 401, 200]
    for response in (before, other, lookalike, unknown_key, admin):
        assert "access-control-allow-origin" not in response.headers
    assert admin.json() == {"origins": [ORIGIN]}


async def test_preflights_are_answered_on_the_sdk_paths_only(gateway_url):
    asks = {"Origin": "https://anywhere.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization,x-nudge-user-token"}
    async with httpx.AsyncClient(base_url=gateway_url) as page:
        answers = {path: await page.options(path, headers=asks)
                   for path in ("/v1/inapp", "/v1/inapp/seen", "/v1/inapp/d-1/click", "/v1/b", "/v1/track",
                                "/v1/profiles", "/v1/settings/allowed-origins")}
    for path in ("/v1/inapp", "/v1/inapp/seen", "/v1/inapp/d-1/click", "/v1/b", "/v1/track"):
        headers = answers[path].headers
        assert answers[path].status_code == 204, path
        assert headers["access-control-allow-origin"] == "https://anywhere.example"
        assert {"GET", "POST"} <= {m.strip() for m in headers["access-control-allow-methods"].split(",")}
        assert {"authorization", "x-nudge-user-token"} <= {
            h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    for path in ("/v1/profiles", "/v1/settings/allowed-origins"):  # admin routes: no CORS at all
        assert answers[path].status_code == 405 and "access-control-allow-origin" not in answers[path].headers


async def test_the_inbox_answers_pages_of_allowed_origins_also_when_it_refuses(workspace):
    await setup(workspace, {"inapp": {"title": "Hi", "body": "New arrivals"}})
    delivery = await send(workspace, await person(workspace, "web-kim"), ["inapp"])
    await _allow(workspace, ORIGIN)
    kim = await signed_in(workspace, "web-kim")
    read = await workspace.tracking.get("/v1/inapp", params=kim["params"], headers={**kim["headers"], "Origin": ORIGIN})
    assert read.status_code == 200 and read.headers["access-control-allow-origin"] == ORIGIN
    assert [m["deliveryId"] for m in read.json()["messages"]] == [delivery["id"]]
    forged = await workspace.tracking.get("/v1/inapp", params=kim["params"],
                                          headers={"X-Nudge-User-Token": "0" * 64, "Origin": ORIGIN})
    assert forged.status_code == 401 and forged.headers["access-control-allow-origin"] == ORIGIN
    assert len(await inbox(workspace, "web-kim")) == 1


async def test_allowed_origins_are_checked_and_kept_as_browsers_write_them(workspace):
    kept = await workspace.admin.put("/v1/settings/allowed-origins", json={"origins": [
        "HTTPS://Shop.Example:443", "http://localhost:3000/", "https://shop.example", "http://[::1]:8080"]})
    assert kept.status_code == 200, kept.text
    assert kept.json() == {"origins": ["https://shop.example", "http://localhost:3000", "http://[::1]:8080"]}
    assert (await workspace.admin.get("/v1/settings/allowed-origins")).json() == kept.json()
    for bad in ("https://shop.example/path", "ftp://shop.example", "*", "shop.example", "https://shop.example?q=1",
                "https://user@shop.example", "https://shop.example:99999", "https://상점.example"):
        response = await workspace.admin.put("/v1/settings/allowed-origins", json={"origins": ["https://ok.example",
                                                                                                bad]})
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["details"]["fields"][0]["field"] == "origins.1", bad
    too_many = await workspace.admin.put("/v1/settings/allowed-origins",
                                         json={"origins": [f"https://s{i}.example" for i in range(101)]})
    assert too_many.status_code == 422
    assert (await workspace.tracking.put("/v1/settings/allowed-origins", json={"origins": []})).status_code == 403
    assert (await workspace.admin.get("/v1/settings/allowed-origins")).json() == kept.json()
