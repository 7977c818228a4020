"""One send through the gateway, the dispatch pipeline and a provider: idempotency, consent,
the night rule, fatigue, the opt-out race, in-app, receipts and the "why" of each outcome."""

import asyncio
import uuid
from datetime import datetime, time, timedelta

from starlette.responses import JSONResponse

from kit.outbox import Outbox
from services.dispatch import ratelimit
from services.dispatch.models import outbox as dispatch_outbox
from services.dispatch.service import DispatchService
from tests.support.api import consent, inbox, mark_seen, person, send, setup, wait_for_status
from tests.support.channels import KST
from tests.support.receiver import webhook_config
from tests.support.waiting import eventually


async def test_in_app_message_is_held_for_the_sdk_until_it_marks_it_seen(workspace):
    profile = await person(workspace, "reader", name="Kim")
    await setup(workspace, {"inapp": {"title": "Hi {{ profile.name }}", "body": "Your order shipped"}})
    delivery = await send(workspace, profile, ["inapp"])
    assert delivery["status"] == "sent" and delivery["channel"] == "inapp"
    messages = await inbox(workspace, "reader")
    assert [(m["title"], m["body"], m["deliveryId"]) for m in messages] == [
        ("Hi Kim", "Your order shipped", delivery["id"])]
    assert await inbox(workspace, "reader") == messages  # reading changes nothing
    assert await mark_seen(workspace, "reader", messages) == 1
    assert await inbox(workspace, "reader") == []


async def test_the_same_key_twenty_times_and_after_a_restart_calls_the_provider_once(workspace, receiver,
                                                                                   dispatch_platform):
    profile = await person(workspace, "once")
    await setup(workspace, {"webhook": {"body": {"text": "paid {{ event.amount }}"}}},
                {"webhook": ("webhook", webhook_config(receiver))})
    key = f"order-{uuid.uuid4()}"
    results = await asyncio.gather(*[send(workspace, profile, ["webhook"], key=key,
                                          variables={"event": {"amount": 39000}}) for _ in range(20)])
    assert {r["id"] for r in results} == {results[0]["id"]} and {r["status"] for r in results} == {"sent"}
    assert len(receiver.requests) == 1
    assert receiver.requests[0]["body"]["data"] == {"text": "paid 39000"}

    # A new dispatch process on the same database answers from the record.
    platform = dispatch_platform
    restarted = DispatchService(platform.service.sessions, platform.service.redis, Outbox(dispatch_outbox),
                                platform.clock, platform.service.profiles, platform.service.http, platform.settings)
    from services.dispatch.service import SendSpec
    again = await restarted.send(workspace.id, "test-key", SendSpec(
        key, profile, ["webhook"], "hello", transactional=True, variables={"event": {"amount": 39000}}))
    assert again["id"] == results[0]["id"] and again["status"] == "sent"
    assert len(receiver.requests) == 1


async def test_advertising_at_night_waits_for_eight_unless_night_consent(workspace, dispatch_clock):
    night = datetime.combine(datetime.now(KST).date(), time(22, 30), KST)
    dispatch_clock.set(night)
    await setup(workspace, {"inapp": {"title": "Sale", "body": "50% off"}},
                policy={"sender_name": "Nudge Shop", "opt_out_phone": "080-000-0000"})
    sleeper = await person(workspace, "sleeper")
    owl = await person(workspace, "owl")
    await consent(workspace, sleeper, inapp=True, advertising=True)
    await consent(workspace, owl, inapp=True, advertising=True, night_advertising=True)

    deferred = await send(workspace, sleeper, ["inapp"], advertising=True)
    eight = datetime.combine(night.date() + timedelta(days=1), time(8), KST)
    assert deferred["status"] == "deferred" and deferred["rule"] == "night_rule"
    assert datetime.fromisoformat(deferred["deferredUntil"].replace("Z", "+00:00")) == eight
    assert (await send(workspace, owl, ["inapp"], advertising=True))["status"] == "sent"
    assert (await send(workspace, sleeper, ["inapp"]))["status"] == "sent"  # informational: not deferred
    informational = await inbox(workspace, "sleeper")
    assert [m["title"] for m in informational] == ["Sale"]
    await mark_seen(workspace, "sleeper", informational)

    dispatch_clock.set(eight + timedelta(seconds=1))
    current = await wait_for_status(workspace, deferred["id"], "sent")
    assert current["status"] == "sent" and current["consent"]["ads:inapp"]["granted"] is True
    [advertisement] = await inbox(workspace, "sleeper")
    assert advertisement["body"].startswith("(광고)")


async def test_advertising_without_consent_is_suppressed_with_its_reason(workspace):
    profile = await person(workspace, "no-ads")
    await setup(workspace, {"inapp": {"title": "Sale", "body": "50% off"}})
    await consent(workspace, profile, inapp=True)
    delivery = await send(workspace, profile, ["inapp"], advertising=True)
    assert delivery["status"] == "suppressed" and delivery["rule"] == "consent:ads:inapp"
    history = (await workspace.admin.get(f"/v1/profiles/{profile}/deliveries")).json()["deliveries"]
    assert history[0]["id"] == delivery["id"] and "ads:inapp" in history[0]["reason"]
    assert await inbox(workspace, "no-ads") == []


async def test_fatigue_suppresses_the_third_message_of_the_day_and_says_when(workspace):
    profile = await person(workspace, "tired")
    await setup(workspace, {"inapp": {"title": "t", "body": "b"}},
                policy={"fatigue": {"rules": [{"kind": "channel", "limit": 2, "window": "day"}],
                                    "exempt_transactional": True}})
    outcomes = [await send(workspace, profile, ["inapp"], transactional=False) for _ in range(3)]
    assert [o["status"] for o in outcomes] == ["sent", "sent", "suppressed"]
    assert outcomes[2]["rule"].startswith("fatigue:") and outcomes[2]["nextAllowedAt"] is not None
    assert (await send(workspace, profile, ["inapp"]))["status"] == "sent"  # transactional: exempt


async def test_an_opt_out_committed_before_the_provider_call_stops_the_send(workspace, receiver, redis):
    profile = await person(workspace, "leaving")
    await consent(workspace, profile, webhook=True)
    config = {**webhook_config(receiver), "rate_per_second": 0.5, "burst": 1}
    await setup(workspace, {"webhook": {"body": {"text": "hello"}}}, {"webhook": ("webhook", config)})
    # The provider's only token is taken: this send waits about 2 s at the rate limit.
    bucket = f"nudge:dispatch:rate:{workspace.id}:webhook"
    await ratelimit.acquire(redis, bucket, 0.5, 1, datetime.now(KST))
    taken_at = await redis.hget(bucket, "at")
    # Not transactional: a receipt would go out whatever the person opted out of.
    pending = asyncio.create_task(send(workspace, profile, ["webhook"], transactional=False))

    async def waiting_for_a_token() -> bool:  # past its first consent check, it has asked the bucket
        return await redis.hget(bucket, "at") != taken_at
    await eventually(waiting_for_a_token)
    await consent(workspace, profile, webhook=False)  # committed while the send waits
    delivery = await pending
    assert delivery["status"] == "suppressed" and delivery["rule"] == "consent:channel:webhook"
    assert receiver.requests == []


async def test_an_opt_out_committed_during_a_retry_backoff_stops_the_next_try(workspace, receiver):
    profile = await person(workspace, "backing-off")
    await consent(workspace, profile, webhook=True)
    await setup(workspace, {"webhook": {"body": {"text": "hello"}}},
                {"webhook": ("webhook", webhook_config(receiver))})
    answer = receiver.handle

    async def busy_then_opted_out(request):
        await answer(request)
        await consent(workspace, profile, webhook=False)  # committed before the provider answers
        return JSONResponse({"error": "busy"}, status_code=503)
    receiver.handle = busy_then_opted_out
    delivery = await send(workspace, profile, ["webhook"], transactional=False)
    assert delivery["status"] == "suppressed" and delivery["rule"] == "consent:channel:webhook"
    assert len(receiver.requests) == 1  # the first try only


async def test_a_receipt_marks_the_delivery_delivered(workspace, receiver):
    profile = await person(workspace, "receipted")
    await setup(workspace, {"webhook": {"body": {"text": "hello"}}},
                {"webhook": ("webhook", webhook_config(receiver))})
    delivery = await send(workspace, profile, ["webhook"])
    assert delivery["status"] == "sent" and delivery["providerMessageId"]
    url = (await workspace.admin.get("/v1/channels/webhook/receipt-url")).json()["url"]
    receipt = {"provider_message_id": delivery["providerMessageId"], "status": "delivered"}
    forged = url.rsplit("/", 1)[0] + "/" + "0" * 40
    assert (await workspace.tracking.post(forged, json=receipt)).status_code == 404
    assert (await workspace.tracking.post(url, json=42)).status_code == 422
    response = await workspace.tracking.post(url, json=receipt)
    assert response.json() == {"updated": 1}
    assert (await workspace.tracking.post(url, json=receipt)).json() == {"updated": 0}  # nothing new
    assert (await workspace.admin.get(f"/v1/deliveries/{delivery['id']}")).json()["status"] == "delivered"


async def test_bad_input_is_refused_with_the_field_and_nothing_is_sent(workspace, receiver):
    profile = await person(workspace, "careful")
    response = await workspace.admin.put("/v1/templates/bad", json={"channels": {"sms": {"text": "{{ secret }}"}}})
    assert response.status_code == 422 and response.json()["error"]["details"]["field"].startswith("channels.sms")
    response = await workspace.admin.put("/v1/templates/bad", json={"channels": {"pigeon": {"text": "hi"}}})
    assert response.json()["error"]["details"]["field"] == "channels.pigeon"
    await setup(workspace, {"webhook": {"body": {"text": "hi {{ profile.nickname }}"}},
                            "sms": {"text": "hi"}}, {"webhook": ("webhook", webhook_config(receiver))})
    response = await workspace.admin.post("/v1/messages", headers={"Idempotency-Key": "k1"}, json={
        "profileId": profile, "channels": ["fax"], "templateId": "hello"})
    assert response.status_code == 422 and response.json()["error"]["details"]["field"] == "channels[0]"
    response = await workspace.admin.post("/v1/messages", json={
        "profileId": profile, "channels": ["webhook"], "templateId": "hello"})
    assert response.status_code == 422  # no Idempotency-Key
    response = await workspace.admin.put("/v1/dispatch-policy", json={"fatigue": {"rules": [{"kind": "channel",
                                                                                              "limit": "two"}]}})
    assert response.status_code == 422 and response.json()["error"]["details"]["field"].startswith("policy.")
    # A variable the profile lacks fails the send clearly; the SMS has no number to go to.
    delivery = await send(workspace, profile, ["webhook", "sms"])
    assert delivery["status"] == "failed" and receiver.requests == []
    reasons = {a["channel"]: a["reason"] for a in delivery["attempts"]}
    assert "nickname" in reasons["webhook"] and "sms" in reasons


async def test_quiet_hours_that_leave_no_time_for_advertising_are_refused(workspace):
    response = await workspace.admin.put("/v1/dispatch-policy", json={"quiet_hours": {"start": "07:30",
                                                                                      "end": "21:30"}})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == "policy.quiet_hours"
