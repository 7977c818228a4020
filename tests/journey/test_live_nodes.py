"""Node kinds and entry rules live, through the gateway and the real services on the
journey's clock: a trait update (the birthday seed journey's mark), a condition that asks
segment Explain, a holdout, the entry cap, exit on leaving a segment, a paced broadcast,
and a merge of two people who both have a live run."""

import copy
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.journey.engine import next_date_occurrence
from services.journey.repository import JourneyRepository
from tests.dispatch.test_send_pipeline import person
from tests.journey.live import consumed, publish, received, stats_once_ended, templates, track, until
from tests.journey.test_definition import BIRTHDAY
from tests.segment.test_realtime_segments import create_segment

KST = ZoneInfo("Asia/Seoul")


async def _profile_id(ws, user: str) -> str:
    return (await ws.admin.get("/v1/profiles", params={"userId": user})).json()["profiles"][0]["id"]


async def _runs(ws, profile_id: str) -> list[dict]:
    return (await ws.admin.get(f"/v1/profiles/{profile_id}/journey-runs")).json()["runs"]


async def _steps(ws, run_id: str) -> list[tuple]:
    steps = (await ws.admin.get(f"/v1/journey-runs/{run_id}")).json()["steps"]
    return [(s["nodeId"], s["kind"], s["outcome"]) for s in steps]


def _on_webhook(definition: dict) -> dict:
    """A seed journey on the test's webhook receiver (no Kakao or SMS provider here), informational."""
    tree = copy.deepcopy(definition)
    for node in tree["nodes"].values():
        if node["kind"] == "send":
            node |= {"channels": ["webhook"], "advertising": False}
    return tree


async def test_birthday_mark_sets_the_trait_on_the_profile_and_the_reminder_follows(
        workspace, receiver, journey_clock, journey_platform):
    await templates(workspace, receiver, "tpl-birthday", "tpl-birthday-expiring")
    await publish(workspace, _on_webhook(BIRTHDAY))
    birthday = (datetime.now(KST) + timedelta(days=3)).date().replace(year=1990).isoformat()
    profile_id = await person(workspace, "birthday-girl", birthday=birthday, timezone="Asia/Seoul")
    await until(lambda: _date_entry_planned(journey_platform, workspace.id, profile_id))
    nine = next_date_occurrence(birthday, time(9), 0, True, {"timezone": "Asia/Seoul"}, datetime.now(KST))

    journey_clock.set(nine + timedelta(seconds=1))
    await until(lambda: received(receiver) == ["tpl-birthday"])

    async def marked():
        traits = (await workspace.admin.get(f"/v1/profiles/{profile_id}")).json()["traits"]
        return traits.get("birthday_coupon_year_sent") is True
    await until(marked)  # the update_trait step's identify call reached the profile
    [run] = await until(lambda: _runs_at(workspace, profile_id, "in_7d"))
    assert datetime.fromisoformat(run["nextAt"]) == nine + timedelta(days=7)
    assert ("mark", "update_trait", "set") in await _steps(workspace, run["id"])

    journey_clock.set(nine + timedelta(days=7, seconds=1))
    await until(lambda: received(receiver) == ["tpl-birthday", "tpl-birthday-expiring"])
    [run] = await until(lambda: _runs_with(workspace, profile_id, "completed"))
    assert [s[:2] for s in await _steps(workspace, run["id"])] == [
        (None, "entered"), ("coupon", "send"), ("mark", "update_trait"), ("in_7d", "wait"), ("in_7d", "waited"),
        ("reminder", "send"), (None, "completed")]


async def _date_entry_planned(journey_platform, workspace_id: str, profile_id: str) -> bool:
    async with journey_platform.sessions() as session:
        found = await JourneyRepository(session).traits_of(workspace_id, [profile_id])
    return "birthday" in found.get(profile_id, {})


async def _runs_at(ws, profile_id: str, node_id: str) -> list[dict] | None:
    runs = await _runs(ws, profile_id)
    return runs if runs and all(r["nodeId"] == node_id and r["nextAt"] for r in runs) else None


async def _runs_with(ws, profile_id: str, status: str) -> list[dict] | None:
    runs = await _runs(ws, profile_id)
    return runs if runs and all(r["status"] == status for r in runs) else None
