"""The simulator through the gateway: the four seed journeys replayed for a synthetic person
in virtual time, with the exact send schedule, conversion stopping the rest, and what quiet
hours, Kakao's advertising window and fatigue limits do to each message — decided by the
real dispatch pipeline as a dry run. Nothing is stored and nothing is sent."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.dispatch.test_channels_through_the_pipeline import AD_POLICY, KAKAO_CONFIG, SMS_CONFIG
from tests.journey.test_definition import BIRTHDAY, CART, DORMANCY, POST_PURCHASE, WELCOME
from tests.segment.test_realtime_segments import create_segment

KST = ZoneInfo("Asia/Seoul")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=KST)  # a Monday morning in Seoul
TEXT = {"sms": {"text": "{{ profile.name }}님 소식"}, "email": {"subject": "소식", "text": "{{ profile.name }}님 소식"},
        "push": {"title": "소식", "body": "{{ profile.name }}님 소식"},
        "alimtalk": {"template_code": "NEWS", "variables": {"name": "{{ profile.name }}"}},
        "friendtalk": {"text": "{{ profile.name }}님 소식"}}
KIM = {"traits": {"name": "김민수", "phone": "010-1234-5678", "email": "kim@example.kr", "timezone": "Asia/Seoul",
                  "birthday": "1990-03-05"},
       "identities": {"device_token": ["fcm-token-1"]},
       "consents": {p: {"granted": True} for p in ("channel:kakao", "channel:sms", "channel:email", "channel:push",
                                                    "advertising")}}


async def _workspace_ready(ws, policy: dict | None = None) -> str:
    """Channels, the seed journeys' templates and their dormancy segment; the segment's id."""
    for channel, (provider, config) in {
            "sms": ("nhn_sms", {**SMS_CONFIG, "endpoint": "http://127.0.0.1:9/never-called"}),
            "alimtalk": ("nhn_kakao", {**KAKAO_CONFIG, "endpoint": "http://127.0.0.1:9/never-called"}),
            "friendtalk": ("nhn_kakao", {**KAKAO_CONFIG, "endpoint": "http://127.0.0.1:9/never-called"}),
            "email": ("smtp", {"host": "127.0.0.1", "port": 9, "sender": "shop <news@shop.kr>"}),
            "push": ("fcm", {"project_id": "p", "access_token": "t", "endpoint": "http://127.0.0.1:9/never-called"}),
    }.items():
        response = await ws.admin.put(f"/v1/channels/{channel}", json={"provider": provider, "config": config})
        assert response.status_code == 200, response.text
    templates = {n["template"] for tree in (WELCOME, CART, POST_PURCHASE, DORMANCY, BIRTHDAY)
                 for n in tree["nodes"].values()
                 if n["kind"] == "send"}
    for template_id in templates:
        response = await ws.admin.put(f"/v1/templates/{template_id}", json={"name": template_id, "channels": TEXT})
        assert response.status_code == 200, response.text
    response = await ws.admin.put("/v1/dispatch-policy", json={**AD_POLICY, **(policy or {})})
    assert response.status_code == 200, response.text
    return await create_segment(ws, "no visit for 265 days", {"last_seen": {"op": "more_than", "ago": "P265D"}})


async def simulate(ws, definition: dict, timeline: list[tuple[str, datetime, dict]], person: dict = KIM,
                   start: datetime = T0, until: datetime | None = None) -> dict:
    body = {"definition": definition, "profile": person, "startAt": start.isoformat(),
            "timeline": [{"event": e, "at": at.isoformat(), "properties": p} for e, at, p in timeline],
            **({"until": until.isoformat()} if until else {})}
    response = await ws.admin.post("/v1/journeys/simulate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def sends(result: dict, start: datetime = T0) -> list[tuple]:
    """(days after start, hour in Seoul, template, channel, outcome) of every send step."""
    return [((at := datetime.fromisoformat(s["at"]).astimezone(KST)).date().toordinal() - start.date().toordinal(),
             at.strftime("%H:%M"), s["templateId"], s["channel"], s["outcome"])
            for s in result["steps"] if s["kind"] == "send"]


async def test_welcome_series_stops_at_the_purchase(workspace):
    await _workspace_ready(workspace)
    result = await simulate(workspace, WELCOME, [("Signed Up", T0, {}), ("Order Completed", T0 + timedelta(days=10),
                                                                        {"revenue": 39000})])
    assert sends(result) == [(0, "10:00", "tpl-welcome", "alimtalk", "sent"),
                             (2, "10:00", "tpl-coupon", "friendtalk", "sent"),
                             (3, "10:00", "tpl-coupon-reminder", "push", "sent"),
                             (6, "10:00", "tpl-reviews", "email", "sent")]
    assert (result["endStatus"], result["endReason"]) == ("converted", "goal: Order Completed")
    assert datetime.fromisoformat(result["endedAt"]) == T0 + timedelta(days=10)

    # a saved draft simulates the same way, by id
    saved = (await workspace.admin.post("/v1/journeys", json={"name": "welcome", "definition": WELCOME})).json()
    response = await workspace.admin.post(f"/v1/journeys/{saved['id']}/simulate", json={
        "profile": KIM, "startAt": T0.isoformat(), "timeline": [
            {"event": "Signed Up", "at": T0.isoformat()},
            {"event": "Order Completed", "at": (T0 + timedelta(days=10)).isoformat()}]})
    assert response.status_code == 200, response.text
    assert sends(response.json()) == sends(result)

    full = await simulate(workspace, WELCOME, [("Signed Up", T0, {})])
    assert [(d, t) for d, _, t, _, _ in sends(full)] == [
        (0, "tpl-welcome"), (2, "tpl-coupon"), (3, "tpl-coupon-reminder"), (6, "tpl-reviews"), (14, "tpl-survey"),
        (30, "tpl-last-try")]
    assert full["endStatus"] == "completed"


async def test_cart_abandonment_day_one_three_seven_unless_they_buy(workspace):
    await _workspace_ready(workspace)
    added = [("Product Added", T0, {"price": 25000})]
    result = await simulate(workspace, CART, added)
    assert sends(result) == [(1, "10:00", "tpl-cart-1", "push", "sent"), (3, "10:00", "tpl-cart-3", "friendtalk", "sent"),
                             (7, "10:00", "tpl-cart-7", "email", "sent")]
    bought_in_time = await simulate(workspace, CART, added + [("Order Completed", T0 + timedelta(hours=5), {})])
    assert sends(bought_in_time) == [] and bought_in_time["endStatus"] == "converted"
    cheap = await simulate(workspace, CART, [("Product Added", T0, {"price": 5000})])
    assert cheap["endStatus"] == "not_entered" and cheap["steps"] == []


async def test_post_purchase_thanks_on_day_one_recommends_on_day_fourteen_reminds_on_day_thirty(workspace):
    await _workspace_ready(workspace)
    result = await simulate(workspace, POST_PURCHASE, [("Order Completed", T0, {"revenue": 39000})])
    assert sends(result) == [(1, "10:00", "tpl-thanks", "alimtalk", "sent"),
                             (14, "10:00", "tpl-recommend", "email", "sent"),
                             (30, "10:00", "tpl-repurchase", "friendtalk", "sent")]
    assert result["endStatus"] == "completed"


async def test_dormancy_notices_every_fifteen_days_until_day_335_or_a_visit(workspace):
    segment_id = await _workspace_ready(workspace)
    definition = {**DORMANCY, "trigger": {"kind": "segment_entered", "segment": segment_id},
                  "exit_criteria": {"segment_exited": [segment_id]}}
    visit = [("Page Viewed", T0, {}), ("$segment_entered", T0 + timedelta(days=265), {"segment": segment_id})]
    result = await simulate(workspace, definition, visit)
    assert [d for d, *_ in sends(result)] == [265, 280, 295, 310, 325]
    assert result["endStatus"] == "completed"
    came_back = await simulate(workspace, definition, visit + [
        ("$segment_exited", T0 + timedelta(days=300), {"segment": segment_id})])
    assert [d for d, *_ in sends(came_back)] == [265, 280, 295]
    assert (came_back["endStatus"], came_back["endReason"]) == ("exited", f"left segment {segment_id}")


async def test_birthday_coupon_at_nine_and_a_reminder_a_week_later(workspace):
    await _workspace_ready(workspace)
    result = await simulate(workspace, BIRTHDAY, [], start=datetime(2026, 1, 1, tzinfo=KST),
                            until=datetime(2026, 12, 31, tzinfo=KST))
    assert [(datetime.fromisoformat(s["at"]).astimezone(KST).strftime("%m-%d %H:%M"), s["templateId"], s["outcome"])
            for s in result["steps"] if s["kind"] == "send"] == [
        ("03-05 09:00", "tpl-birthday", "sent"), ("03-12 09:00", "tpl-birthday-expiring", "sent")]
    assert [s["kind"] for s in result["steps"]][:1] == ["entered"]


async def test_quiet_hours_kakao_window_and_fatigue_show_in_the_simulation(workspace):
    await _workspace_ready(workspace, {"fatigue": {"rules": [{"kind": "all_channels", "limit": 1,
                                                              "window": "P3D"}]}})
    evening = T0.replace(hour=21, minute=30)
    result = await simulate(workspace, WELCOME, [("Signed Up", evening, {})], start=evening,
                            until=evening + timedelta(days=8))
    steps = [(s["kind"], s["nodeId"], s["outcome"], s["reason"]) for s in result["steps"]
             if s["kind"] in ("send", "deferred")]
    assert steps[0] == ("send", "welcome", "sent", None)  # informational AlimTalk: any hour
    # D+2 at 21:30: an advertisement without night consent waits for 08:00 (the night rule) …
    kind, node, outcome, reason = steps[1]
    assert (kind, node, outcome) == ("deferred", "coupon", "night_rule") and reason
    deferred = next(s for s in result["steps"] if s["kind"] == "deferred")
    assert datetime.fromisoformat(deferred["detail"]["until"]).astimezone(KST) == (
        evening + timedelta(days=3)).replace(hour=8, minute=0)
    # … where the welcome, 58½ hours before, still counts against ≤ 1 message in 3 days: fatigue.
    assert steps[2][:3] == ("send", "coupon", "suppressed") and "at most 1 across all channels" in steps[2][3]
    suppressed = [s for s in result["steps"] if s["kind"] == "send"][1]
    assert suppressed["detail"]["rule"].startswith("fatigue:")
    assert datetime.fromisoformat(suppressed["detail"]["next_allowed_at"]) == evening + timedelta(days=3)
    # the reminder a day after that, 82½ hours after the welcome, goes out
    assert steps[3][:3] == ("send", "reminder", "sent")
    reminder = [s for s in result["steps"] if s["kind"] == "send"][2]
    assert datetime.fromisoformat(reminder["at"]).astimezone(KST) == (evening + timedelta(days=4)).replace(hour=8,
                                                                                                          minute=0)
