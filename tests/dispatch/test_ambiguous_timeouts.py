"""A provider that takes a request and then answers too late: the send's outcome is unknown.
Where the provider drops repeats of an idempotency key (NHN Kakao's X-NC-API-IDEMPOTENCY-KEY),
the retry carries the same key; where it has none (NHN SMS, FCM, SMTP), the delivery ends as
`unknown_outcome` after exactly one request, with no retry and no fallback, unless the channel's
config says `resend_on_timeout`. A connect failure (nothing was written) is still retried."""

import threading

from tests.dispatch import provider_servers as fake
from tests.support.api import inbox, person, send
from tests.support.api import setup as configure
from tests.support.channels import EMAIL_TEMPLATE, PUSH_TEMPLATE, kakao_config, sms_config, smtp_config
from tests.support.processes import free_port

QUICK = {"timeout_seconds": 0.5}  # the provider's answer is awaited this long
SMS_TEMPLATE = {"sms": {"text": "주문하신 상품이 발송되었습니다."}, "inapp": {"title": "t", "body": "shipped"}}


def quick(config: tuple[str, dict], **more) -> tuple[str, dict]:
    provider, settings = config
    return provider, {**settings, **QUICK, **more}


async def test_an_sms_taken_and_not_answered_is_unknown_and_never_sent_again(workspace):
    stall = fake.Stall(fake.nhn_sms("sms-app", "sms-secret"), times=5)
    async with fake.HttpProvider(stall) as nhn:
        try:
            profile = await person(workspace, "sms-stalled", {"phone": "010-1234-5678"})
            await configure(workspace, SMS_TEMPLATE, {"sms": quick(sms_config(nhn))})
            delivery = await send(workspace, profile, ["sms", "inapp"])
        finally:
            stall.release()
    assert len(nhn.received) == 1  # one request, no retry
    assert delivery["status"] == "failed" and delivery["rule"] == "unknown_outcome"
    assert (delivery["channel"], delivery["provider"]) == ("sms", "nhn_sms")
    assert "resend_on_timeout" in delivery["reason"]
    assert [a["channel"] for a in delivery["attempts"]] == ["sms"]  # and no fallback to in-app
    assert await inbox(workspace, "sms-stalled") == []


async def test_resend_on_timeout_lets_the_sms_be_tried_again(workspace):
    stall = fake.Stall(fake.nhn_sms("sms-app", "sms-secret"), times=1)
    async with fake.HttpProvider(stall) as nhn:
        try:
            profile = await person(workspace, "sms-resent", {"phone": "010-1234-5678"})
            await configure(workspace, SMS_TEMPLATE, {"sms": quick(sms_config(nhn), resend_on_timeout=True)})
            delivery = await send(workspace, profile, ["sms"])
        finally:
            stall.release()
    assert delivery["status"] == "sent" and len(nhn.received) == 2  # the operator accepted a possible double


async def test_resend_on_timeout_must_be_a_boolean(workspace):
    response = await workspace.admin.put("/v1/channels/sms", json={"provider": "nhn_sms", "config": {
        **sms_config(fake.HttpProvider(fake.nhn_sms("a", "b")))[1], "resend_on_timeout": "yes"}})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == "config.resend_on_timeout"


async def test_an_alimtalk_retry_after_a_timeout_carries_the_same_idempotency_key(workspace):
    """NHN took the first request; the retry with its key is answered -1005 (a duplicate): sent once."""
    stall = fake.Stall(fake.nhn_kakao("kakao-app", "kakao-secret"), times=1)
    async with fake.HttpProvider(stall) as kakao:
        try:
            profile = await person(workspace, "kakao-stalled", {"name": "김민수", "phone": "010-1234-5678"})
            await configure(workspace, {"alimtalk": {"template_code": "ORDER_SHIPPED",
                                                     "variables": {"name": "{{ profile.name }}"}}},
                            {"alimtalk": quick(kakao_config(kakao.url))})
            delivery = await send(workspace, profile, ["alimtalk"])
        finally:
            stall.release()
    keys = [got.headers["x-nc-api-idempotency-key"] for got in kakao.received]
    assert len(keys) == 2 and keys[0] == keys[1] == delivery["id"]
    assert delivery["status"] == "sent" and delivery["providerMessageId"] == f"duplicate:{delivery['id']}"


async def test_an_alimtalk_that_never_answers_is_unknown_and_does_not_fall_back_to_sms(workspace):
    """Every try carried the key, but none was answered: Kakao may have shown it, so no SMS follows."""
    stall = fake.Stall(fake.nhn_kakao("kakao-app", "kakao-secret"), times=5)
    async with fake.HttpProvider(stall) as kakao, fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        try:
            profile = await person(workspace, "kakao-silent", {"name": "김민수", "phone": "010-1234-5678"})
            await configure(workspace, {"alimtalk": {"template_code": "ORDER_SHIPPED",
                                                     "variables": {"name": "{{ profile.name }}"}},
                                        "sms": {"text": "주문하신 상품이 발송되었습니다."}},
                            {"alimtalk": quick(kakao_config(kakao.url)), "sms": sms_config(nhn)})
            delivery = await send(workspace, profile, ["alimtalk", "sms"])
        finally:
            stall.release()
    assert len(kakao.received) == 3 and {g.headers["x-nc-api-idempotency-key"] for g in kakao.received} == {
        delivery["id"]}
    assert delivery["status"] == "failed" and delivery["rule"] == "unknown_outcome"
    assert nhn.received == []


async def test_a_push_taken_and_not_answered_is_unknown_after_one_request(workspace):
    stall = fake.Stall(fake.fcm("nudge-demo", "ya29.token"), times=5)
    async with fake.HttpProvider(stall) as google:
        try:
            profile = await person(workspace, "push-stalled", {"name": "김민수", "device_platform": "android"},
                                   {"device": {"token": "fcm-token-1"}})
            await configure(workspace, {"push": PUSH_TEMPLATE}, {"push": ("fcm", {
                "project_id": "nudge-demo", "access_token": "ya29.token", "endpoint": google.url, **QUICK})})
            delivery = await send(workspace, profile, ["push"])
        finally:
            stall.release()
    assert len(google.received) == 1
    assert delivery["status"] == "failed" and delivery["rule"] == "unknown_outcome"


async def test_an_email_whose_data_is_not_answered_is_unknown_after_one_message(workspace):
    answer = threading.Event()
    with fake.SmtpProvider("mailer", "pw", stall_data=answer) as smtp:
        try:
            profile = await person(workspace, "mail-stalled", {"name": "김민수", "email": "kim@example.com"})
            await configure(workspace, {"email": EMAIL_TEMPLATE}, {"email": quick(smtp_config(smtp))})
            delivery = await send(workspace, profile, ["email"])
        finally:
            answer.set()
    assert len(smtp.mail) == 1
    assert delivery["status"] == "failed" and delivery["rule"] == "unknown_outcome"


async def test_a_provider_that_cannot_be_connected_to_is_retried_and_then_falls_back(workspace):
    """Nothing was written: no message can have been sent, so the tries go on as before."""
    profile = await person(workspace, "sms-down", {"phone": "010-1234-5678"})
    down = ("nhn_sms", {"app_key": "sms-app", "secret_key": "sms-secret", "send_no": "1588-0000",
                        "endpoint": f"http://127.0.0.1:{free_port()}", **QUICK})
    await configure(workspace, SMS_TEMPLATE, {"sms": down})
    delivery = await send(workspace, profile, ["sms", "inapp"])
    assert delivery["status"] == "sent" and delivery["channel"] == "inapp"
    assert delivery["rule"] is None
    assert [a["outcome"] for a in delivery["attempts"]] == ["failed", "sent"]

