"""The starter library through the gateway and the real journey service: listing the starters
with what each needs, creating a draft from one with the workspace's templates and segments
mapped in (or the templates named like the slots), publishing it and a person entering it;
and bad requests named by field with nothing saved. The starters' schedules are asserted in
test_simulator.py."""

from datetime import datetime, timedelta

import pytest

from kit.errors import InvalidArgument
from services.journey import starters
from services.journey.definition import parse_journey, referenced_segments, referenced_templates
from tests.support.api import create_segment, person
from tests.support.journeys import track
from tests.support.waiting import eventually

PARTS = {"sms": {"text": "{{ profile.name }}님 소식"}, "email": {"subject": "소식", "text": "소식"},
         "push": {"title": "소식", "body": "소식"},
         "alimtalk": {"template_code": "NEWS", "variables": {"name": "{{ profile.name }}"}},
         "friendtalk": {"text": "소식"}}


async def put_templates(ws, *template_ids: str) -> None:
    for template_id in template_ids:
        response = await ws.admin.put(f"/v1/templates/{template_id}", json={"name": template_id, "channels": PARTS})
        assert response.status_code == 200, response.text


def fields(response) -> str:
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    return details["field"] if "field" in details else ",".join(f["field"] for f in details["fields"])


async def journeys_of(ws) -> list[dict]:
    return (await ws.admin.get("/v1/journeys")).json()["journeys"]


# -- the library as data --------------------------------------------------------------------
def test_every_starter_parses_and_its_slots_are_exactly_what_it_references():
    assert list(starters.STARTERS) == ["onboarding", "cart-abandonment", "post-purchase", "birthday", "dormancy",
                                       "ads-consent-confirmation"]
    for found in starters.STARTERS.values():
        journey = parse_journey(found.definition)
        assert referenced_templates(journey) == set(found.templates), found.id
        assert referenced_segments(journey) == {s.id for s in found.segments}, found.id


def test_instantiate_maps_slots_and_names_a_bad_mapping():
    dormancy = starters.STARTERS["dormancy"]
    tree, template_ids, segment_ids = starters.instantiate(
        dormancy, {"dormancy-notice": "my-notice"}, {"dormant-265d": "seg_42"})
    journey = parse_journey(tree)
    assert referenced_templates(journey) == {"my-notice", "dormancy-final-notice", "dormancy-winback",
                                             "dormancy-winback-final"}
    assert (journey.trigger.segment_id, journey.exit_criteria.segment_exited) == ("seg_42", ("seg_42",))
    assert template_ids["dormancy-notice"] == "my-notice" and segment_ids == {"dormant-265d": "seg_42"}
    assert starters.definition("dormancy")["trigger"]["segment"] == "dormant-265d"  # the library is untouched
    consent = parse_journey(starters.instantiate(starters.STARTERS["ads-consent-confirmation"], {},
                                                 {"ads-consent-due": "seg_7"})[0])
    assert consent.nodes["still_consented"].rule.segment_id == "seg_7"

    for templates, segments, field in [
            ({}, {}, "segments.dormant-265d"),
            ({"dormancy-coupon": "x"}, {"dormant-265d": "s"}, "templates.dormancy-coupon"),
            ({"dormancy-notice": ""}, {"dormant-265d": "s"}, "templates.dormancy-notice"),
            ({}, {"dormant-265d": "s", "vip": "s2"}, "segments.vip")]:
        with pytest.raises(InvalidArgument) as err:
            starters.instantiate(dormancy, templates, segments)
        assert err.value.field == field


# -- through the gateway ----------------------------------------------------------------------
async def test_the_library_lists_each_starter_with_its_slots_and_definition(workspace):
    response = await workspace.admin.get("/v1/journey-templates")
    assert response.status_code == 200, response.text
    listed = {t["id"]: t for t in response.json()["journeyTemplates"]}
    assert set(listed) == {"onboarding", "cart-abandonment", "post-purchase", "birthday", "dormancy",
                           "ads-consent-confirmation"}
    cart = listed["cart-abandonment"]
    assert cart["definition"] == starters.definition("cart-abandonment") and cart["segments"] == []
    assert [(t["slot"], t["channels"], t["advertising"]) for t in cart["templates"]] == [
        ("cart-d1", ["push", "sms"], True), ("cart-d3", ["friendtalk", "sms"], True),
        ("cart-d7", ["sms", "email"], True)]
    assert "D+1" in cart["description"] and cart["source"].startswith("004")
    consent = listed["ads-consent-confirmation"]
    assert consent["segments"] == [{"slot": "ads-consent-due", "description": consent["segments"][0]["description"],
                                    "rules": {"consent": {"purpose": "ads:sms", "state": "granted",
                                                          "since": {"op": "before", "ago": "P700D"}}}}]
    assert [(t["slot"], t["advertising"]) for t in consent["templates"]] == [("ads-consent-confirmation", False)]

    one = await workspace.admin.get("/v1/journey-templates/dormancy")
    assert one.status_code == 200 and one.json() == listed["dormancy"]
    assert one.json()["segments"][0]["rules"] == {"last_seen": {"op": "more_than", "ago": "P265D"}}
    missing = await workspace.admin.get("/v1/journey-templates/welcome-series")
    assert missing.status_code == 404 and missing.json()["error"]["details"] == {"field": "id"}


async def test_a_journey_from_a_starter_is_a_draft_with_the_workspaces_ids_that_publishes(workspace):
    segment_id = await create_segment(workspace, "no visit for 265 days",
                                      {"last_seen": {"op": "more_than", "ago": "P265D"}})
    # three slots by their own names, one mapped to a template of ours
    await put_templates(workspace, "our-dormancy-coupon", "dormancy-final-notice", "dormancy-winback",
                        "dormancy-winback-final")
    response = await workspace.admin.post("/v1/journeys", json={
        "id": "dormancy", "starter": "dormancy", "templates": {"dormancy-notice": "our-dormancy-coupon"},
        "segments": {"dormant-265d": segment_id}})
    assert response.status_code == 201, response.text
    journey = response.json()
    assert (journey["id"], journey["status"], journey["version"]) == ("dormancy", "draft", 0)
    assert journey["name"] == starters.DORMANCY.name and journey["description"] == starters.DORMANCY.description
    expected, _, _ = starters.instantiate(starters.DORMANCY, {"dormancy-notice": "our-dormancy-coupon"},
                                          {"dormant-265d": segment_id})
    assert journey["definition"] == expected
    assert journey["definition"]["trigger"] == {"kind": "segment_entered", "segment": segment_id}
    assert journey["definition"]["nodes"]["d265"]["template"] == "our-dormancy-coupon"

    published = await workspace.admin.post("/v1/journeys/dormancy/publish")
    assert published.status_code == 200, published.text
    assert (published.json()["status"], published.json()["version"]) == ("published", 1)
    versions = (await workspace.admin.get("/v1/journeys/dormancy/versions")).json()["versions"]
    assert [v["definition"] for v in versions] == [expected]
    # the segment it uses is now in use by a live journey
    assert (await workspace.admin.delete(f"/v1/segments/{segment_id}")).status_code == 409


async def test_a_published_onboarding_starter_sends_at_sign_up_and_waits_for_day_one(workspace):
    await put_templates(workspace, *starters.ONBOARDING.templates)
    response = await workspace.admin.post("/v1/journeys", json={"starter": "onboarding", "name": "Welcome",
                                                                "description": "our sign-ups"})
    assert response.status_code == 201, response.text
    journey = response.json()
    assert (journey["name"], journey["description"]) == ("Welcome", "our sign-ups")
    assert journey["id"].startswith("jrn_") and journey["definition"] == starters.definition("onboarding")
    assert (await workspace.admin.post(f"/v1/journeys/{journey['id']}/publish")).status_code == 200

    profile_id = await person(workspace, "new-member", name="김민수")
    await track(workspace, "new-member", "Signed Up")

    async def waiting_for_day_one():
        runs = (await workspace.admin.get(f"/v1/profiles/{profile_id}/journey-runs",
                                          params={"journeyId": journey["id"]})).json()["runs"]
        return runs[0] if runs and runs[0]["nodeId"] == "to_d1" else None
    run = await eventually(waiting_for_day_one)
    # D+1 counts from the moment the sends ran, moments after the entry
    waits = datetime.fromisoformat(run["nextAt"]) - datetime.fromisoformat(run["enteredAt"])
    assert timedelta(days=1) <= waits < timedelta(days=1, minutes=1)
    steps = (await workspace.admin.get(f"/v1/journey-runs/{run['id']}")).json()["steps"]
    assert [(s["nodeId"], s["detail"]["template_id"]) for s in steps if s["kind"] == "send"] == [
        ("welcome", "onboarding-welcome"), ("first_coupon", "onboarding-first-coupon")]


async def test_bad_starter_requests_name_the_field_and_save_nothing(workspace):
    segment_id = await create_segment(workspace, "consent due", {"last_seen": {"op": "more_than", "ago": "P700D"}})
    await put_templates(workspace, "cart-d1", "cart-d3")  # not cart-d7
    post = workspace.admin.post
    assert fields(await post("/v1/journeys", json={"starter": "welcome-series"})) == "starter"
    assert fields(await post("/v1/journeys", json={"starter": ""})) == "starter"
    # the cart-d7 slot is not mapped and no template is named like it
    response = await post("/v1/journeys", json={"starter": "cart-abandonment"})
    assert fields(response) == "templates.cart-d7" and "'cart-d7'" in response.json()["error"]["message"]
    response = await post("/v1/journeys", json={"starter": "cart-abandonment",
                                                "templates": {"cart-d7": "no-such-template"}})
    assert fields(response) == "templates.cart-d7" and "'no-such-template'" in response.json()["error"]["message"]
    assert fields(await post("/v1/journeys", json={"starter": "cart-abandonment",
                                                   "templates": {"cart-d9": "cart-d1"}})) == "templates.cart-d9"
    assert fields(await post("/v1/journeys", json={"starter": "cart-abandonment",
                                                   "templates": {"cart-d7": 7}})) == "templates.cart-d7"
    # a segment slot must be mapped, to a segment that exists
    await put_templates(workspace, "ads-consent-confirmation")
    response = await post("/v1/journeys", json={"starter": "ads-consent-confirmation"})
    assert fields(response) == "segments.ads-consent-due" and "P700D" in response.json()["error"]["message"]
    assert fields(await post("/v1/journeys", json={"starter": "ads-consent-confirmation",
                                                   "segments": {"ads-consent-due": "seg-nobody-made"}})
                  ) == "segments.ads-consent-due"
    # a definition or a starter, not both and not neither; mappings only with a starter
    definition = starters.definition("post-purchase")
    assert fields(await post("/v1/journeys", json={"name": "x", "starter": "post-purchase",
                                                   "definition": definition})) == "starter"
    assert fields(await post("/v1/journeys", json={"name": "x"})) == "definition"
    assert fields(await post("/v1/journeys", json={"name": "x", "definition": definition,
                                                   "templates": {"post-purchase-thanks": "t"}})) == "templates"
    assert fields(await post("/v1/journeys", json={"definition": definition})) == "name"
    assert fields(await post("/v1/journeys", json={"id": "bad id!", "starter": "ads-consent-confirmation",
                                                   "segments": {"ads-consent-due": segment_id}})) == "id"
    assert await journeys_of(workspace) == []

    created = await post("/v1/journeys", json={"id": "consent-sms", "starter": "ads-consent-confirmation",
                                               "segments": {"ads-consent-due": segment_id}})
    assert created.status_code == 201, created.text
    again = await post("/v1/journeys", json={"id": "consent-sms", "starter": "ads-consent-confirmation",
                                             "segments": {"ads-consent-due": segment_id}})
    assert again.status_code == 409 and again.json()["error"]["details"] == {"field": "id"}
    assert [j["id"] for j in await journeys_of(workspace)] == ["consent-sms"]
