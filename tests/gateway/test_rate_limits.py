"""Request limits: a bucket per workspace and kind of key, shared by every gateway replica,
announced on every answer and refused with 429 and Retry-After once spent. The limits are per
day here so no window boundary falls inside the test (a sliding window weighs the last one)."""

import pytest

from tests.support.gateway import own_gateway

WRITE_LIMIT, ADMIN_LIMIT = 4, 3


@pytest.fixture
def limited(gateway_settings):
    return gateway_settings.model_copy(update={"rate_limit_write": f"{WRITE_LIMIT}/day",
                                               "rate_limit_admin": f"{ADMIN_LIMIT} per day"})


async def keys_of(workspace_store, name: str) -> tuple[str, str]:
    _, new = await workspace_store.create(name)
    return next(k.secret for k in new if k.kind == "write"), next(k.secret for k in new if k.kind == "admin")


async def test_the_write_key_spends_its_own_bucket_and_is_then_refused(limited, workspace_store):
    write, admin = await keys_of(workspace_store, "busy shop")
    other_write, _ = await keys_of(workspace_store, "quiet shop")
    async with own_gateway(limited) as client, own_gateway(limited) as second_replica:
        answers = [await (client if n % 2 else second_replica).post(
            "/v1/track", json={"userId": "u", "event": "E"}, auth=(write, "")) for n in range(WRITE_LIMIT)]
        assert [a.status_code for a in answers] == [200] * WRITE_LIMIT
        assert {a.headers["RateLimit-Limit"] for a in answers} == {str(WRITE_LIMIT)}
        assert [int(a.headers["RateLimit-Remaining"]) for a in answers] == list(range(WRITE_LIMIT - 1, -1, -1))

        refused = await client.post("/v1/track", json={"userId": "u", "event": "E"}, auth=(write, ""))
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1 and refused.headers["RateLimit-Remaining"] == "0"

        # the admin key of the same workspace and another workspace's write key are not held up
        listed = await client.get("/v1/segments", headers={"Authorization": f"Bearer {admin}"})
        assert listed.status_code == 200 and listed.headers["RateLimit-Limit"] == str(ADMIN_LIMIT)
        other = await client.post("/v1/track", json={"userId": "u", "event": "E"}, auth=(other_write, ""))
        assert other.status_code == 200 and other.headers["RateLimit-Remaining"] == str(WRITE_LIMIT - 1)


async def test_the_admin_key_is_refused_once_its_bucket_is_spent_and_tracking_goes_on(limited, workspace_store):
    write, admin = await keys_of(workspace_store, "busy admins")
    bearer = {"Authorization": f"Bearer {admin}"}
    async with own_gateway(limited) as client:
        answers = [await client.get("/v1/segments", headers=bearer) for _ in range(ADMIN_LIMIT + 1)]
        assert [a.status_code for a in answers] == [200] * ADMIN_LIMIT + [429]
        assert "Retry-After" in answers[-1].headers and "Retry-After" not in answers[0].headers
        tracked = await client.post("/v1/track", json={"userId": "u", "event": "E"}, auth=(write, ""))
        assert tracked.status_code == 200
