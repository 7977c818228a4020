"""The consent model through the gateway: a receipt reaches a person who opted out of
newsletters and advertising; a one-click unsubscribe withdraws advertising on its channel,
not the channel; advertising consent is per channel; `advertising` is a shorthand for every
channel and `marketing` is gone."""

import httpx
import pytest

from tests.dispatch import provider_servers as fake
from tests.support.api import consent, person, send
from tests.support.api import setup as configure
from tests.support.channels import AD_POLICY, daytime, sms_config, smtp_config
from tests.dispatch.tracked import path_of, unsubscribe_url

RECEIPT = {"email": {"subject": "주문 확인", "text": "{{ profile.name }}님, 주문이 접수되었습니다."},
           "sms": {"text": "{{ profile.name }}님, 주문이 접수되었습니다."}}
CHANNELS = ("email", "sms", "kakao", "push", "webpush", "inapp", "webhook")


async def consents(workspace, profile: str) -> dict:
    return (await workspace.admin.get(f"/v1/profiles/{profile}")).json()["consent"]


async def test_a_receipt_is_sent_after_the_person_opted_out_of_newsletters_and_advertising(workspace,
                                                                                           dispatch_clock):
    dispatch_clock.set(daytime())
    with fake.SmtpProvider("mailer", "pw") as smtp:
        profile = await person(workspace, "opted-out", {"name": "Kim", "email": "kim@example.kr"})
        await consent(workspace, profile, email=False, advertising=False)  # newsletter and ads opt-out
        await configure(workspace, RECEIPT, {"email": smtp_config(smtp)}, policy=AD_POLICY)
        receipt = await send(workspace, profile, ["email"], transactional=True)
        newsletter = await send(workspace, profile, ["email"], transactional=False)
        ad = await send(workspace, profile, ["email"], advertising=True)
    assert (receipt["status"], receipt["channel"]) == ("sent", "email")
    assert receipt["consent"]["channel:email"]["granted"] is False  # the evidence shows it was not needed
    assert (newsletter["status"], newsletter["rule"]) == ("suppressed", "consent:channel:email")
    assert (ad["status"], ad["rule"]) == ("suppressed", "consent:channel:email")
    [mail] = smtp.mail
    assert mail.message["Subject"] == "주문 확인"


async def test_one_click_unsubscribe_withdraws_email_advertising_and_receipts_still_go(
        workspace, dispatch_platform, dispatch_clock, gateway_url):
    dispatch_clock.set(daytime())
    with fake.SmtpProvider("mailer", "pw") as smtp:
        profile = await person(workspace, "unsubscriber", {"name": "Kim", "email": "kim@example.kr"})
        await consent(workspace, profile, email=True, advertising=True)
        await configure(workspace, RECEIPT, {"email": smtp_config(smtp)}, policy=AD_POLICY)
        ad = await send(workspace, profile, ["email"], advertising=True)
        assert ad["status"] == "sent"
        one_click = unsubscribe_url(dispatch_platform, workspace.id, ad["id"], "advertising")
        async with httpx.AsyncClient(base_url=gateway_url) as mail_provider:
            done = await mail_provider.post(path_of(one_click), data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200, done.text
        after = await consents(workspace, profile)
        assert after["ads:email"]["granted"] is False and after["ads:email"]["source"] == f"unsubscribe:{ad['id']}"
        assert after["channel:email"]["granted"] is True  # the channel stays
        assert after["ads:sms"]["granted"] is True       # advertising by SMS stays

        receipt = await send(workspace, profile, ["email"])  # transactional by default
        second_ad = await send(workspace, profile, ["email"], advertising=True)
        newsletter = await send(workspace, profile, ["email"], transactional=False)
    assert (receipt["status"], receipt["channel"]) == ("sent", "email")
    assert (second_ad["status"], second_ad["rule"]) == ("suppressed", "consent:ads:email")
    assert newsletter["status"] == "sent"
    assert [m.message["Subject"] for m in smtp.mail] == ["(광고) 주문 확인", "주문 확인", "주문 확인"]


async def test_advertising_consent_is_per_channel(workspace, dispatch_clock):
    dispatch_clock.set(daytime())
    async with fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        with fake.SmtpProvider("mailer", "pw") as smtp:
            profile = await person(workspace, "sms-only-ads", {"name": "Kim", "email": "kim@example.kr",
                                                               "phone": "010-1234-5678"})
            await consent(workspace, profile, email=True, sms=True, ads_sms=True)
            await configure(workspace, RECEIPT, {"email": smtp_config(smtp), "sms": sms_config(nhn)},
                            policy=AD_POLICY)
            by_email = await send(workspace, profile, ["email"], advertising=True)
            by_sms = await send(workspace, profile, ["sms"], advertising=True)
            email_then_sms = await send(workspace, profile, ["email", "sms"], advertising=True)
    assert (by_email["status"], by_email["rule"]) == ("suppressed", "consent:ads:email")
    assert "ads:email consent, which is not given" in by_email["reason"]
    assert (by_sms["status"], by_sms["channel"]) == ("sent", "sms")
    assert by_sms["consent"]["ads:sms"]["granted"] is True and "ads:email" not in by_sms["consent"]
    assert (email_then_sms["status"], email_then_sms["channel"]) == ("sent", "sms")
    assert [(a["channel"], a["outcome"]) for a in email_then_sms["attempts"]] == [("email", "suppressed"),
                                                                                 ("sms", "sent")]
    assert smtp.mail == [] and len(nhn.received) == 2


async def test_advertising_is_a_shorthand_for_every_channel_and_marketing_is_refused(workspace):
    profile = await person(workspace, "shorthand")
    response = await workspace.admin.put(f"/v1/profiles/{profile}/consent", json={
        "advertising": {"granted": True, "source": "signup_form", "at": "2025-01-02T03:04:05Z"},
        "ads": {"email": {"granted": False, "source": "preference_center"}}})
    assert response.status_code == 200, response.text
    held = response.json()["consent"]
    assert {p for p in held if p.startswith("ads:")} == {f"ads:{c}" for c in CHANNELS}
    assert held["ads:sms"] == {"granted": True, "at": "2025-01-02T03:04:05Z", "source": "signup_form"}
    assert held["ads:email"]["granted"] is False  # newer than the shorthand's record
    assert "advertising" not in held

    for body, field in (({"marketing": {"granted": True, "source": "x"}}, "marketing"),
                        ({"ads": {"sms": {"granted": "maybe", "source": "x"}}}, "ads.sms.granted")):
        refused = await workspace.admin.put(f"/v1/profiles/{profile}/consent", json=body)
        assert refused.status_code == 422, refused.text
        assert field in {f["field"] for f in refused.json()["error"]["details"]["fields"]}
    refused = await workspace.admin.put(f"/v1/profiles/{profile}/consent",
                                        json={"ads": {"fax": {"granted": True, "source": "x"}}})
    assert refused.status_code == 422 and "ads:fax" in refused.json()["error"]["message"]
    assert await consents(workspace, profile) == held  # nothing written by a refused change


@pytest.mark.parametrize("purpose", ["ads:sms", "channel:kakao", "night_advertising"])
def test_the_simulator_accepts_the_purposes_the_profile_service_records(purpose):
    from datetime import datetime, timezone

    from services.dispatch.simulation import Simulation, person_of
    run = Simulation("s", datetime(2026, 1, 1, tzinfo=timezone.utc),
                     '{"consents": {"advertising": {"granted": true}, "%s": {"granted": false}}}' % purpose)
    consent_of = person_of(run, "p").consent
    assert consent_of[purpose]["granted"] is False
    assert all(consent_of[f"ads:{c}"]["granted"] for c in CHANNELS if f"ads:{c}" != purpose)
