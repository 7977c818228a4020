"""The simulator through the gateway: the starter library's journeys (services/journey/starters.py)
replayed for a synthetic person in virtual time, with the exact send schedule, conversion
stopping the rest, and what quiet hours, Kakao's advertising window and fatigue limits do to
each message — decided by the real dispatch pipeline as a dry run. Nothing is stored and
nothing is sent."""

from datetime import datetime, timedelta

from services.journey.starters import STARTERS, definition, instantiate
from tests.support.channels import KST
from tests.support.api import create_segment
from tests.support.journeys import KIM, T0, days, sends, simulate, workspace_ready


async def test_onboarding_starter_sends_on_day_0_1_2_3_6_14_30_and_stops_at_the_purchase(workspace):
    await workspace_ready(workspace)
    onboarding = definition("onboarding")
    result = await simulate(workspace, onboarding, [("Signed Up", T0, {}),
                                                    ("Order Completed", T0 + timedelta(days=10), {"revenue": 39000})])
    assert sends(result) == [(0, "10:00", "onboarding-welcome", "alimtalk", "sent"),
                             (0, "10:00", "onboarding-first-coupon", "friendtalk", "sent"),
                             (1, "10:00", "onboarding-coupon-expiry", "alimtalk", "sent"),
                             (2, "10:00", "onboarding-coupon", "friendtalk", "sent"),
                             (3, "10:00", "onboarding-coupon-reminder", "friendtalk", "sent"),
                             (6, "10:00", "onboarding-reviews", "friendtalk", "sent")]
    assert (result["endStatus"], result["endReason"]) == ("converted", "goal: Order Completed")
    assert datetime.fromisoformat(result["endedAt"]) == T0 + timedelta(days=10)

    # a saved draft simulates the same way, by id
    saved = (await workspace.admin.post("/v1/journeys", json={"name": "welcome", "definition": onboarding})).json()
    response = await workspace.admin.post(f"/v1/journeys/{saved['id']}/simulate", json={
        "profile": KIM, "startAt": T0.isoformat(), "timeline": [
            {"event": "Signed Up", "at": T0.isoformat()},
            {"event": "Order Completed", "at": (T0 + timedelta(days=10)).isoformat()}]})
    assert response.status_code == 200, response.text
    assert sends(response.json()) == sends(result)

    full = await simulate(workspace, onboarding, [("Signed Up", T0, {})])
    assert days(full) == [
        (0, "onboarding-welcome"), (0, "onboarding-first-coupon"), (1, "onboarding-coupon-expiry"),
        (2, "onboarding-coupon"), (3, "onboarding-coupon-reminder"), (6, "onboarding-reviews"),
        (14, "onboarding-survey"), (30, "onboarding-last-try")]
    assert sends(full)[-2:] == [(14, "10:00", "onboarding-survey", "email", "sent"),
                                (30, "10:00", "onboarding-last-try", "friendtalk", "sent")]
    assert full["endStatus"] == "completed"


async def test_cart_abandonment_starter_day_one_three_seven_unless_they_buy(workspace):
    await workspace_ready(workspace)
    cart = definition("cart-abandonment")
    added = [("Product Added", T0, {"price": 25000})]
    result = await simulate(workspace, cart, added)
    assert sends(result) == [(1, "10:00", "cart-d1", "push", "sent"), (3, "10:00", "cart-d3", "friendtalk", "sent"),
                             (7, "10:00", "cart-d7", "sms", "sent")]
    assert result["endStatus"] == "completed"
    bought_in_time = await simulate(workspace, cart, added + [("Order Completed", T0 + timedelta(hours=5), {})])
    assert sends(bought_in_time) == [] and bought_in_time["endStatus"] == "converted"
    bought_after_d3 = await simulate(workspace, cart, added + [("Order Completed", T0 + timedelta(days=4), {})])
    assert days(bought_after_d3) == [(1, "cart-d1"), (3, "cart-d3")] and bought_after_d3["endStatus"] == "converted"
    # after a purchase, a cart within 7 days of the last entry does not start again; one after does
    again = await simulate(workspace, cart, added + [("Order Completed", T0 + timedelta(hours=5), {}),
                                                     ("Product Added", T0 + timedelta(days=2), {}),
                                                     ("Product Added", T0 + timedelta(days=8), {})])
    assert days(again) == [(9, "cart-d1"), (11, "cart-d3"), (15, "cart-d7")]
    assert [datetime.fromisoformat(s["at"]) for s in again["steps"] if s["kind"] == "entered"] == [
        T0, T0 + timedelta(days=8)]


async def test_post_purchase_starter_thanks_on_day_one_recommends_on_day_fourteen_reminds_on_day_thirty(workspace):
    await workspace_ready(workspace)
    result = await simulate(workspace, definition("post-purchase"), [("Order Completed", T0, {"revenue": 39000})])
    assert sends(result) == [(1, "10:00", "post-purchase-thanks", "alimtalk", "sent"),
                             (14, "10:00", "post-purchase-recommend", "friendtalk", "sent"),
                             (30, "10:00", "post-purchase-repurchase", "push", "sent")]
    assert result["endStatus"] == "completed"


async def test_dormancy_starter_notices_from_day_265_to_335_then_wins_back_on_351_and_358(workspace):
    segment_id = await workspace_ready(workspace)
    dormancy, _, _ = instantiate(STARTERS["dormancy"], {}, {"dormant-265d": segment_id})
    # the last visit at T0; the segment "no visit for 265 days" takes the person in at D+265
    visit = [("Page Viewed", T0, {}), ("$segment_entered", T0 + timedelta(days=265), {"segment": segment_id})]
    result = await simulate(workspace, dormancy, visit)
    assert days(result) == [(265, "dormancy-notice"), (280, "dormancy-notice"), (295, "dormancy-notice"),
                            (310, "dormancy-notice"), (325, "dormancy-notice"), (335, "dormancy-final-notice"),
                            (351, "dormancy-winback"), (358, "dormancy-winback-final")]
    assert {(time, channel, outcome) for _, time, _, channel, outcome in sends(result)} == {
        ("10:00", "friendtalk", "sent")}
    assert result["endStatus"] == "completed"
    came_back = await simulate(workspace, dormancy, visit + [
        ("$segment_exited", T0 + timedelta(days=300), {"segment": segment_id})])
    assert [d for d, _ in days(came_back)] == [265, 280, 295]
    assert (came_back["endStatus"], came_back["endReason"]) == ("exited", f"left segment {segment_id}")


async def test_birthday_starter_coupon_at_nine_and_a_reminder_a_week_later(workspace):
    await workspace_ready(workspace)
    result = await simulate(workspace, definition("birthday"), [], start=datetime(2026, 1, 1, tzinfo=KST),
                            until=datetime(2026, 12, 31, tzinfo=KST))
    assert [(datetime.fromisoformat(s["at"]).astimezone(KST).strftime("%m-%d %H:%M"), s["templateId"], s["channel"],
             s["outcome"]) for s in result["steps"] if s["kind"] == "send"] == [
        ("03-05 09:00", "birthday-coupon", "friendtalk", "sent"), ("03-12 09:00", "birthday-reminder", "push", "sent")]
    assert [s["kind"] for s in result["steps"]][:1] == ["entered"]
    assert [s["nodeId"] for s in result["steps"] if s["kind"] == "update_trait"] == ["mark"]


async def test_consent_confirmation_starter_notifies_at_day_700_and_every_730_days_while_consent_stands(workspace):
    await workspace_ready(workspace)
    # The starter's segment is "ads:sms consent granted more than 700 days ago" (a consent rule);
    # here any segment stands in: the timeline's $segment_entered is what moves the person.
    stand_in = await create_segment(workspace, "ads:sms consent due",
                                    {"last_seen": {"op": "more_than", "ago": "P700D"}})
    consent, _, _ = instantiate(STARTERS["ads-consent-confirmation"], {}, {"ads-consent-due": stand_in})
    granted = T0.replace(hour=22)  # consent to SMS advertising given at 22:00: the notices fall at that hour
    due = [("$segment_entered", granted + timedelta(days=700), {"segment": stand_in})]
    result = await simulate(workspace, consent, due, until=granted + timedelta(days=2200))
    # informational: sent at 22:00 as it falls, where the night rule would hold an advertisement
    assert sends(result) == [(700, "22:00", "ads-consent-confirmation", "alimtalk", "sent"),
                             (1430, "22:00", "ads-consent-confirmation", "alimtalk", "sent"),
                             (2160, "22:00", "ads-consent-confirmation", "alimtalk", "sent")]
    # each notice ahead of the consent's 2nd, 4th and 6th anniversary
    for day, _, _, _, _ in sends(result):
        assert 0 < (granted + timedelta(days=730 * (day // 730 + 1)) - (granted + timedelta(days=day))).days <= 30
    assert result["endStatus"] == "active"
    withdrawn = await simulate(workspace, consent, due + [
        ("$segment_exited", granted + timedelta(days=1000), {"segment": stand_in})],
        until=granted + timedelta(days=2200))
    assert [d for d, _ in days(withdrawn)] == [700]
    assert (withdrawn["endStatus"], withdrawn["endReason"]) == ("exited", f"left segment {stand_in}")


async def test_quiet_hours_kakao_window_and_fatigue_show_in_the_simulation(workspace):
    await workspace_ready(workspace, {"fatigue": {"rules": [{"kind": "all_channels", "limit": 1,
                                                              "window": "P3D"}]}})
    evening = T0.replace(hour=21, minute=30)
    result = await simulate(workspace, definition("onboarding"), [("Signed Up", evening, {})], start=evening,
                            until=evening + timedelta(days=8))
    steps = [(s["kind"], s["nodeId"], s["outcome"]) for s in result["steps"] if s["kind"] in ("send", "deferred")]
    assert steps == [("send", "welcome", "sent"),  # informational AlimTalk: any hour
                     # an advertisement without night consent at 21:30 waits for 08:00 (the night rule) …
                     ("deferred", "first_coupon", "night_rule"),
                     # … where the welcome, 10½ hours before, counts against ≤ 1 message in 3 days: fatigue,
                     ("send", "first_coupon", "suppressed"),
                     # and so for the next two, D+1 and D+2 counted from that 08:00
                     ("send", "coupon_expiry", "suppressed"), ("send", "coupon", "suppressed"),
                     ("send", "coupon_reminder", "sent"), ("send", "reviews", "sent")]
    deferred = next(s for s in result["steps"] if s["kind"] == "deferred")
    assert deferred["reason"] and datetime.fromisoformat(deferred["detail"]["until"]).astimezone(KST) == (
        evening + timedelta(days=1)).replace(hour=8, minute=0)
    suppressed = [s for s in result["steps"] if s["kind"] == "send"][1]
    assert "at most 1 across all channels" in suppressed["reason"]
    assert suppressed["detail"]["rule"].startswith("fatigue:")
    assert datetime.fromisoformat(suppressed["detail"]["next_allowed_at"]) == evening + timedelta(days=3)
    # the reminder (D+3 from the deferred 08:00), 82½ hours after the welcome, goes out
    reminder = next(s for s in result["steps"] if s["nodeId"] == "coupon_reminder")
    assert datetime.fromisoformat(reminder["at"]).astimezone(KST) == (evening + timedelta(days=4)).replace(hour=8,
                                                                                                           minute=0)
