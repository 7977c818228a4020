"""The FlareLane-style flow, live: viewed a product three times → an in-app message at the
next login; added to cart and no purchase → an email coupon, a reminder an hour later, a
discount at 24 hours — and a purchase at any point ends it. Real profile, segment, journey
and dispatch services; email over a real local SMTP server; time moved on the journey's clock."""

from datetime import timedelta

from tests.dispatch import provider_servers as fake
from tests.support.api import consent, create_segment, inbox, person
from tests.support.channels import AD_POLICY, smtp_config
from tests.support.journeys import publish, stats_once_ended, track
from tests.support.waiting import eventually


def email(subject: str) -> dict:
    return {"email": {"subject": subject, "text": f"{subject} for {{{{ profile.name }}}}"}}


async def _setup(ws, smtp) -> None:
    response = await ws.admin.put("/v1/channels/email", json=dict(zip(("provider", "config"), smtp_config(smtp))))
    assert response.status_code == 200, response.text
    response = await ws.admin.put("/v1/dispatch-policy", json=AD_POLICY)  # sender and opt-out of advertising
    assert response.status_code == 200, response.text
    for template_id, channels in {"viewed-inapp": {"inapp": {"title": "Still thinking?", "body": "It is waiting"}},
                                  "cart-coupon": email("Coupon"), "cart-reminder": email("Reminder"),
                                  "cart-discount": email("Discount")}.items():
        response = await ws.admin.put(f"/v1/templates/{template_id}", json={"name": template_id, "channels": channels})
        assert response.status_code == 200, response.text


def _subjects(smtp, address: str) -> list[str]:
    return [m.message["Subject"].removeprefix("(광고)").strip() for m in smtp.mail if address in m.recipients]


async def test_viewed_three_times_then_cart_abandonment_until_a_purchase(workspace, journey_clock):
    with fake.SmtpProvider("mailer", "pw") as smtp:
        await _setup(workspace, smtp)
        viewed = await create_segment(workspace, "viewed 3 times in 3 days", {
            "event": "Product Viewed", "count": {"op": "gte", "value": 3}, "within": "P3D"})
        await publish(workspace, {
            "trigger": {"kind": "segment_entered", "segment": viewed},
            "start": "next_login",
            "nodes": {
                "next_login": {"kind": "wait_for_event", "event": "Logged In", "timeout": "P7D",
                               "next": "nudge", "timeout_next": "done"},
                "nudge": {"kind": "send", "channels": ["inapp"], "template": "viewed-inapp", "advertising": False},
                "done": {"kind": "exit"},
            }})
        cart = await publish(workspace, {
            "trigger": {"kind": "event", "event": "Product Added"},
            "goal": {"event": "Order Completed"},
            "start": "half_hour",
            "nodes": {
                "half_hour": {"kind": "wait", "duration": "PT30M", "next": "coupon"},
                "coupon": {"kind": "send", "channels": ["email"], "template": "cart-coupon", "advertising": True,
                           "next": "an_hour"},
                "an_hour": {"kind": "wait", "duration": "PT1H", "next": "reminder"},
                "reminder": {"kind": "send", "channels": ["email"], "template": "cart-reminder", "advertising": True,
                             "next": "day_end"},
                "day_end": {"kind": "wait", "duration": "PT22H30M", "next": "discount"},
                "discount": {"kind": "send", "channels": ["email"], "template": "cart-discount", "advertising": True},
            }})
        buyers = {}
        for user in ("browser", "buyer"):
            buyers[user] = await person(workspace, user, name=user, email=f"{user}@example.kr")
            await consent(workspace, buyers[user], email=True, advertising=True, night_advertising=True)

        for _ in range(3):
            await track(workspace, "browser", "Product Viewed", product_id="p-1")
        runs_path = f"/v1/profiles/{buyers['browser']}/journey-runs"
        await eventually(lambda: _waiting_at(workspace, runs_path, "next_login"))
        assert await inbox(workspace, "browser") == []
        await track(workspace, "browser", "Logged In")
        messages = await eventually(lambda: inbox(workspace, "browser"))
        assert [m["title"] for m in messages] == ["Still thinking?"]

        for user in ("browser", "buyer"):
            await track(workspace, user, "Product Added", product_id="p-1")
        for user in ("browser", "buyer"):
            await eventually(lambda: _waiting_at(workspace, f"/v1/profiles/{buyers[user]}/journey-runs", "half_hour"))
        journey_clock.advance(timedelta(minutes=31))
        await eventually(lambda: _subjects(smtp, "buyer@example.kr") == ["Coupon"]
                    and _subjects(smtp, "browser@example.kr") == ["Coupon"])
        await track(workspace, "buyer", "Order Completed", revenue=39000)
        await eventually(lambda: _status_is(workspace, f"/v1/profiles/{buyers['buyer']}/journey-runs", cart["id"],
                                       "converted"))

        journey_clock.advance(timedelta(hours=1))
        await eventually(lambda: _subjects(smtp, "browser@example.kr") == ["Coupon", "Reminder"])
        journey_clock.advance(timedelta(hours=22, minutes=30))
        await eventually(lambda: _subjects(smtp, "browser@example.kr") == ["Coupon", "Reminder", "Discount"])
        assert _subjects(smtp, "buyer@example.kr") == ["Coupon"]  # the purchase ended it

        # the last send and the run's end commit together, just after the mail went out
        stats = await eventually(lambda: stats_once_ended(workspace, cart["id"]))
        assert (stats["entered"], stats["converted"], stats["completed"]) == (2, 1, 1)
        sends = {n["nodeId"]: n["outcomes"] for n in stats["nodes"]}
        assert sends["coupon"] == {"sent": 2} and sends["reminder"] == {"sent": 1} and sends["discount"] == {"sent": 1}


async def _waiting_at(ws, path: str, node_id: str) -> bool:
    runs = (await ws.admin.get(path)).json()["runs"]
    return any(r["status"] == "active" and r["nodeId"] == node_id and r["nextAt"] for r in runs)


async def _status_is(ws, path: str, journey_id: str, status: str) -> bool:
    runs = [r for r in (await ws.admin.get(path)).json()["runs"] if r["journeyId"] == journey_id]
    return bool(runs) and runs[0]["status"] == status
