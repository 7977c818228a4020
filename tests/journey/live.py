"""Helpers of the live journey tests: templates on a local webhook receiver, journeys saved
and published through the gateway, events tracked, and waiting for what arrives."""

import asyncio

import orjson

from kit.streams import EVENTS
from tests.dispatch.test_send_pipeline import Receiver, webhook_config


async def templates(ws, hook: Receiver, *names: str) -> None:
    """One webhook template per name; each message's body says which template it was."""
    response = await ws.admin.put("/v1/channels/webhook", json={"provider": "webhook",
                                                                 "config": webhook_config(hook)})
    assert response.status_code == 200, response.text
    for name in names:
        response = await ws.admin.put(f"/v1/templates/{name}", json={
            "name": name, "channels": {"webhook": {"body": {"template": name, "run": "{{ journey.run_id }}",
                                                         "variant": "{{ journey.variant }}"}}}})
        assert response.status_code == 200, response.text


async def publish(ws, definition: dict, journey_id: str = "") -> dict:
    response = await ws.admin.post("/v1/journeys", json={"name": "test journey", "definition": definition,
                                                         **({"id": journey_id} if journey_id else {})})
    assert response.status_code == 201, response.text
    journey = response.json()
    response = await ws.admin.post(f"/v1/journeys/{journey['id']}/publish")
    assert response.status_code == 200, response.text
    return response.json()


async def track(ws, user: str, event: str, **properties) -> None:
    response = await ws.tracking.post("/v1/track", json={"userId": user, "event": event, "properties": properties})
    assert response.status_code == 200, response.text


def received(hook: Receiver) -> list[str]:
    return [r["body"]["data"]["template"] for r in hook.requests]


async def until(check, seconds: float = 20, every: float = 0.05):
    """Polls `check` (sync or async) until it returns something truthy; that value."""
    for _ in range(int(seconds / every)):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(every)
    raise AssertionError("condition not reached in time")


async def stats_once_ended(ws, journey_id: str) -> dict | None:
    """The journey's stats once no run is active (a run's last send goes out just before
    its end commits)."""
    stats = (await ws.admin.get(f"/v1/journeys/{journey_id}/stats")).json()
    return stats if stats["active"] == 0 else None


async def consumed(redis, group: str, ws, event: str, count: int) -> None:
    """Once `count` `event` calls of the workspace are on nudge.events.v1, until the journey
    service's group has read and acknowledged them: what they could cause has happened."""
    async def published():
        found = [entry_id for entry_id, fields in await redis.xrange(EVENTS)
                 if fields[b"workspace_id"].decode() == ws.id
                 and orjson.loads(fields[b"payload"]).get("event") == event]
        return found[-1] if len(found) >= count else None
    last = await until(published)

    async def acknowledged():
        info = next(g for g in await redis.xinfo_groups(EVENTS) if g["name"].decode() == group)
        done = tuple(map(int, info["last-delivered-id"].split(b"-"))) >= tuple(map(int, last.split(b"-")))
        return done and info["pending"] == 0
    await until(acknowledged)
