"""The segment routes of the gateway: documented, admin-key only, and bodies checked before
any call to the segment service (so none of these needs it to answer)."""

import httpx

from tests.support.api import fields_of

SEGMENT_ROUTES = {
    "/v1/segments": {"get", "post"},
    "/v1/segments/preview": {"post"},
    "/v1/segments/explain": {"post"},
    "/v1/segments/{segment_id}": {"get", "patch", "delete"},
    "/v1/segments/{segment_id}/count": {"get"},
    "/v1/segments/{segment_id}/members": {"get"},
    "/v1/segments/{segment_id}/members/{profile_id}": {"get"},
    "/v1/segments/{segment_id}/explain/{profile_id}": {"get"},
    "/v1/segment-settings/rfm": {"get", "put"},
}


async def test_api_docs_list_every_segment_route_and_method(workspace):
    paths = (await workspace.admin.get("/openapi.json")).json()["paths"]
    assert {path: set(paths.get(path, {})) for path in SEGMENT_ROUTES} == SEGMENT_ROUTES


async def test_segments_need_the_admin_key(workspace, gateway_url):
    r = await workspace.tracking.get("/v1/segments")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as anonymous:
        r = await anonymous.post("/v1/segments", json={"name": "x", "rules": {"trait": "plan", "op": "exists"}})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


async def test_bad_bodies_and_parameters_name_the_field(workspace):
    assert fields_of(await workspace.admin.post("/v1/segments", json={"name": "no rules"})) == {"rules"}
    # Preview and explain are their own routes, not a segment id: their bodies are what is checked.
    assert fields_of(await workspace.admin.post("/v1/segments/preview",
                                                json={"rules": {}, "sampleSize": 0})) == {"sampleSize"}
    assert fields_of(await workspace.admin.post("/v1/segments/explain", json={"rules": {}})) == {"profileId"}
    assert fields_of(await workspace.admin.get("/v1/segments", params={"limit": 0})) == {"limit"}
    assert fields_of(await workspace.admin.get("/v1/segments/s-1/members", params={"limit": 1001})) == {"limit"}
    assert fields_of(await workspace.admin.put("/v1/segment-settings/rfm",
                                               json={"orderEvent": "Order Completed"})) == {"revenueProperty"}


async def test_a_patch_that_changes_nothing_is_refused(workspace):
    r = await workspace.admin.patch("/v1/segments/s-1", json={})
    assert r.status_code == 422
    assert r.json()["error"]["details"] == {"field": "body"} and r.json()["error"]["code"] == "invalid_argument"
