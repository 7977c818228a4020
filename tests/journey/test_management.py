"""Saving journeys through the gateway: bad definitions named by field, references checked
against dispatch and segment, the lifecycle, versions that runs in flight keep, and the
refusal to delete a segment or template a live journey uses."""

from datetime import timedelta

import pytest

from tests.support.api import create_segment, person
from tests.support.journeys import publish, received, templates, track
from tests.support.streams import consumed
from tests.support.waiting import a_whole_pass, eventually
from tests.support.journeys import welcome


def _node(definition: dict, node_id: str, **changes) -> dict:
    return {**definition, "nodes": {**definition["nodes"], node_id: {**definition["nodes"][node_id], **changes}}}


BAD = [
    # a cycle that takes no time
    (_node(_node(welcome(), "welcome", kind="condition", rule={"trait": "vip", "op": "exists"}, then="coupon",
                 **{"else": "coupon"}), "coupon", next="welcome"), "nodes"),
    (_node(welcome(), "coupon", template="tpl-nobody-made"), "nodes.coupon.template"),
    (_node(welcome(), "coupon", channels=["pigeon"]), "nodes.coupon.channels[0]"),
    (_node(welcome(), "coupon", channels=[]), "nodes.coupon.channels"),
    (_node(welcome(), "later", duration="two days"), "nodes.later.duration"),
    ({**welcome(), "trigger": {"kind": "segment_entered", "segment": "seg-nobody-made"}}, "trigger.segment"),
]


@pytest.mark.parametrize("definition, field", BAD, ids=["cycle", "template", "channel", "no-channel", "duration",
                                                         "segment"])
async def test_bad_definitions_are_refused_on_save_naming_the_field(workspace, receiver, definition, field):
    await templates(workspace, receiver, "welcome", "coupon")
    response = await workspace.admin.post("/v1/journeys", json={"name": "bad", "definition": definition})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["field"].startswith(field), error
    listed = (await workspace.admin.get("/v1/journeys")).json()["journeys"]
    assert listed == []


UNKNOWN = [
    (_node(welcome(), "coupon", template="tpl-nobody-made"), "nodes.coupon.template", "tpl-nobody-made"),
    ({**welcome(), "trigger": {"kind": "broadcast", "segment": "seg-nobody-made", "cron": "0 9 * * 1"}},
     "trigger.segment", "seg-nobody-made"),
    ({**welcome(), "exit_criteria": {"segment_exited": ["seg-nobody-made"]}}, "exit_criteria.segment_exited[0]",
     "seg-nobody-made"),
    (_node(welcome(), "later", kind="condition", rule={"segment": "seg-nobody-made"}, then="coupon",
           **{"else": "coupon", "duration": None, "next": None}), "nodes.later.rule", "seg-nobody-made"),
]


@pytest.mark.parametrize("definition, field, ref", UNKNOWN, ids=["template", "trigger", "exit", "condition"])
async def test_an_unknown_template_or_segment_is_named_by_the_node_that_uses_it(workspace, receiver, definition,
                                                                                field, ref):
    await templates(workspace, receiver, "welcome", "coupon")
    definition = {**definition, "nodes": {k: {f: v for f, v in n.items() if v is not None}
                                          for k, n in definition["nodes"].items()}}
    response = await workspace.admin.post("/v1/journeys", json={"name": "bad", "definition": definition})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == field and ref in error["message"], error
    assert (await workspace.admin.get("/v1/journeys")).json()["journeys"] == []

    # an edit is checked the same way
    journey = await publish(workspace, welcome())
    response = await workspace.admin.patch(f"/v1/journeys/{journey['id']}", json={"definition": definition})
    assert response.status_code == 422 and response.json()["error"]["details"]["field"] == field, response.text
    assert (await workspace.admin.get(f"/v1/journeys/{journey['id']}")).json()["version"] == 1


async def test_runs_in_flight_keep_their_version_after_an_edit(workspace, receiver, journey_clock):
    await templates(workspace, receiver, "welcome", "coupon", "coupon-v2")
    journey = await publish(workspace, welcome())
    await person(workspace, "u-v1")
    await track(workspace, "u-v1", "Signed Up")
    await eventually(lambda: received(receiver) == ["welcome"])

    edited = _node(welcome(), "coupon", template="coupon-v2")
    response = await workspace.admin.patch(f"/v1/journeys/{journey['id']}", json={"definition": edited})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2 and response.json()["status"] == "published"
    versions = (await workspace.admin.get(f"/v1/journeys/{journey['id']}/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]

    await person(workspace, "u-v2")
    await track(workspace, "u-v2", "Signed Up")
    await eventually(lambda: received(receiver) == ["welcome", "welcome"])
    journey_clock.advance(timedelta(days=2, seconds=1))
    await eventually(lambda: sorted(received(receiver)) == ["coupon", "coupon-v2", "welcome", "welcome"])
    by_user = {}
    for user in ("u-v1", "u-v2"):
        profile_id = (await workspace.admin.get("/v1/profiles", params={"userId": user})).json()["profiles"][0]["id"]
        runs = (await workspace.admin.get(f"/v1/profiles/{profile_id}/journey-runs")).json()["runs"]
        by_user[user] = [(r["version"], r["status"]) for r in runs]
    assert by_user == {"u-v1": [(1, "completed")], "u-v2": [(2, "completed")]}


async def test_pause_holds_timers_and_entries_resume_continues(workspace, receiver, journey_clock, journey_platform,
                                                               redis):
    await templates(workspace, receiver, "welcome", "coupon")
    journey = await publish(workspace, welcome())
    await person(workspace, "u-pause")
    await track(workspace, "u-pause", "Signed Up")
    await eventually(lambda: received(receiver) == ["welcome"])
    assert (await workspace.admin.post(f"/v1/journeys/{journey['id']}/pause")).json()["status"] == "paused"

    journey_clock.advance(timedelta(days=3))
    await person(workspace, "u-late")
    await track(workspace, "u-late", "Signed Up")  # no entry while paused
    await track(workspace, "u-pause", "Page Viewed")
    await consumed(redis, journey_platform.settings.consumer_group, workspace, "Signed Up", 2)
    await a_whole_pass(lambda: journey_platform.service.timer_sweeps)  # the paused timer's moment has passed
    assert received(receiver) == ["welcome"]
    stats = (await workspace.admin.get(f"/v1/journeys/{journey['id']}/stats")).json()
    assert stats["entered"] == 1 and stats["active"] == 1

    assert (await workspace.admin.post(f"/v1/journeys/{journey['id']}/resume")).json()["status"] == "published"
    await eventually(lambda: received(receiver) == ["welcome", "coupon"])

    response = await workspace.admin.delete(f"/v1/journeys/{journey['id']}")
    assert response.status_code == 409  # archive first
    assert (await workspace.admin.post(f"/v1/journeys/{journey['id']}/archive")).json()["status"] == "archived"
    assert (await workspace.admin.delete(f"/v1/journeys/{journey['id']}")).status_code == 204


async def test_a_segment_or_template_a_live_journey_uses_cannot_be_deleted(workspace, receiver):
    await templates(workspace, receiver, "welcome", "coupon")
    segment_id = await create_segment(workspace, "vip", {"trait": "vip", "op": "eq", "value": True})
    definition = {**welcome(), "trigger": {"kind": "segment_entered", "segment": segment_id}}
    journey = await publish(workspace, definition)

    for path in (f"/v1/segments/{segment_id}", "/v1/templates/coupon"):
        response = await workspace.admin.delete(path)
        assert response.status_code == 409, response.text
        assert journey["id"] in response.json()["error"]["message"]

    await workspace.admin.post(f"/v1/journeys/{journey['id']}/archive")
    assert (await workspace.admin.delete("/v1/templates/coupon")).status_code == 204
    assert (await workspace.admin.delete(f"/v1/segments/{segment_id}")).status_code == 204
