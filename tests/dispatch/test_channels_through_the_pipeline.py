"""Each channel end to end: gateway → dispatch pipeline → the real local provider server, and
the exact request the provider received (SMS/LMS and the advertising marks, email over SMTP,
AlimTalk falling back to SMS, a FriendTalk ad held for Kakao's window, FCM, APNs, web push),
plus the outcome events on nudge.deliveries.v1."""

import base64
import json
import uuid
from datetime import datetime, time, timedelta

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.dispatch import provider_servers as fake
from tests.dispatch.tracked import click_url, open_url, unsubscribe_url
from tests.support.api import consent, person, send, wait_for_status
from tests.support.api import setup as configure
from tests.support.channels import (AD_POLICY, EMAIL_TEMPLATE, KST, PUSH_TEMPLATE, at, daytime,
                                    kakao_config, pem, sms_config, smtp_config, text_of)
from tests.support.streams import delivery_events


# ---- helpers ----------------------------------------------------------------------------------

def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ---- SMS / LMS ----------------------------------------------------------------------------------

async def test_informational_sms_goes_to_the_sms_endpoint_with_the_rendered_body(workspace):
    async with fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        profile = await person(workspace, "sms-info", {"name": "김민수", "phone": "010-1234-5678"})
        await configure(workspace, {"sms": {"text": "{{ profile.name }}님, 주문하신 상품이 발송되었습니다.",
                                            "title": "배송 안내"}},
                        {"sms": sms_config(nhn)})
        delivery = await send(workspace, profile, ["sms"])
    assert delivery["status"] == "sent" and (delivery["channel"], delivery["provider"]) == ("sms", "nhn_sms")
    assert delivery["providerMessageId"] == "20260101000000abcdefg:1"
    [got] = nhn.received
    assert (got.method, got.path) == ("POST", "/sms/v3.0/appKeys/sms-app/sender/sms")
    assert got.headers["x-secret-key"] == "sms-secret"
    # A short SMS carries no title, and an informational one no advertising marks.
    assert got.json() == {"body": "김민수님, 주문하신 상품이 발송되었습니다.", "sendNo": "15880000",
                          "recipientList": [{"recipientNo": "01012345678", "recipientGroupingKey": delivery["id"]}]}


async def test_sms_turns_into_lms_past_90_euc_kr_bytes(workspace):
    """45 Hangul syllables are 90 EUC-KR bytes (an SMS); one more ASCII byte makes an LMS."""
    async with fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        profile = await person(workspace, "sms-edge", {"phone": "010-1234-5678"})
        await configure(workspace, {"sms": {"text": "가" * 45, "title": "안내"}}, {"sms": sms_config(nhn)})
        short = await send(workspace, profile, ["sms"])
        await configure(workspace, {"sms": {"text": "가" * 45 + "!", "title": "안내"}})
        long = await send(workspace, profile, ["sms"])
    assert short["status"] == long["status"] == "sent"
    first, second = nhn.received
    assert first.path == "/sms/v3.0/appKeys/sms-app/sender/sms"
    assert first.json() == {"body": "가" * 45, "sendNo": "15880000",
                            "recipientList": [{"recipientNo": "01012345678", "recipientGroupingKey": short["id"]}]}
    assert second.path == "/sms/v3.0/appKeys/sms-app/sender/mms"
    assert second.json() == {"body": "가" * 45 + "!", "sendNo": "15880000", "title": "안내",
                             "recipientList": [{"recipientNo": "01012345678", "recipientGroupingKey": long["id"]}]}


async def test_advertising_sms_is_marked_and_offers_the_080_opt_out_and_long_ones_go_as_lms(workspace,
                                                                                           dispatch_clock):
    dispatch_clock.set(daytime())
    async with fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        profile = await person(workspace, "sms-ad", {"name": "김민수", "phone": "010-1234-5678"})
        await consent(workspace, profile, sms=True, advertising=True)
        await configure(workspace, {"sms": {"text": "봄 세일 20%", "title": "봄 세일"}}, {"sms": sms_config(nhn)},
                        policy=AD_POLICY)
        short = await send(workspace, profile, ["sms"], advertising=True, transactional=False)
        long_text = "{{ profile.name }}님, 봄 신상품을 최대 20% 할인된 가격으로 만나보세요. 이번 주말까지만 진행됩니다."
        await configure(workspace, {"sms": {"text": long_text, "title": "봄 세일"}})
        long = await send(workspace, profile, ["sms"], advertising=True, transactional=False)
    assert short["status"] == long["status"] == "sent"
    assert short["consent"]["ads:sms"]["granted"] is True and short["consent"]["channel:sms"]["granted"] is True
    first, second = nhn.received
    assert first.path == "/sms/v3.0/appKeys/sms-app/sender/ad-sms"
    assert first.json() == {"body": "(광고)넛지샵\n봄 세일 20%\n무료수신거부 080-123-4567", "sendNo": "15880000",
                            "recipientList": [{"recipientNo": "01012345678", "recipientGroupingKey": short["id"]}]}
    assert second.path == "/sms/v3.0/appKeys/sms-app/sender/ad-mms"
    assert second.json() == {
        "body": "(광고)넛지샵\n김민수님, 봄 신상품을 최대 20% 할인된 가격으로 만나보세요. 이번 주말까지만 진행됩니다."
                "\n무료수신거부 080-123-4567",
        "sendNo": "15880000", "title": "봄 세일",
        "recipientList": [{"recipientNo": "01012345678", "recipientGroupingKey": long["id"]}]}


# ---- email ------------------------------------------------------------------------------------

async def test_informational_email_arrives_over_smtp_without_unsubscribe_headers(workspace, dispatch_platform):
    with fake.SmtpProvider("mailer", "pw") as smtp:
        profile = await person(workspace, "mail-info", {"name": "<Kim>", "email": "Kim@Example.kr"})
        await configure(workspace, {"email": EMAIL_TEMPLATE}, {"email": smtp_config(smtp)})
        delivery = await send(workspace, profile, ["email"])
    assert delivery["status"] == "sent" and (delivery["channel"], delivery["provider"]) == ("email", "smtp")
    [mail] = smtp.mail
    assert mail.login == ("mailer", "pw")
    assert (mail.sender, mail.recipients) == ("news@shop.kr", ["kim@example.kr"])  # the normalized identity
    msg = mail.message
    assert (msg["From"], msg["To"], msg["Subject"], msg["Reply-To"]) == (
        "넛지샵 <news@shop.kr>", "kim@example.kr", "<Kim>님, 봄 세일", "help@shop.kr")
    assert msg["Message-ID"] == f"<{delivery['id']}@shop.kr>" == delivery["providerMessageId"]
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert msg.get_content_type() == "multipart/alternative"
    assert text_of(msg, "plain") == "<Kim>님을 위한 할인\n"
    # The HTML part escapes profile data; the text part keeps it as is.
    pixel = open_url(dispatch_platform, workspace.id, delivery["id"])
    assert text_of(msg, "html") == (f'<html><body><p>&lt;Kim&gt;님을 위한 할인</p><img src="{pixel}" width="1" '
                                    'height="1" alt=""></body></html>\n')


async def test_advertising_email_is_marked_and_carries_one_click_unsubscribe(workspace, dispatch_clock,
                                                                             dispatch_platform):
    dispatch_clock.set(daytime())
    with fake.SmtpProvider("mailer", "pw") as smtp:
        profile = await person(workspace, "mail-ad", {"name": "Kim", "email": "kim@example.kr"})
        await consent(workspace, profile, email=True, advertising=True)
        await configure(workspace, {"email": EMAIL_TEMPLATE}, {"email": smtp_config(smtp)}, policy=AD_POLICY)
        delivery = await send(workspace, profile, ["email"], advertising=True, transactional=False)
    assert delivery["status"] == "sent"
    [mail] = smtp.mail
    msg = mail.message
    one_click = unsubscribe_url(dispatch_platform, workspace.id, delivery["id"], "advertising")
    pixel = open_url(dispatch_platform, workspace.id, delivery["id"])
    assert msg["Subject"] == "(광고) Kim님, 봄 세일"
    # Ours first (the one a client POSTs to), then the workspace's own page.
    assert msg["List-Unsubscribe"] == f"<{one_click}>, <https://shop.kr/unsubscribe>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert text_of(msg, "plain") == f"Kim님을 위한 할인\n\n넛지샵 | 수신거부(unsubscribe): {one_click}\n"
    assert text_of(msg, "html") == (
        '<html><body><p>Kim님을 위한 할인</p><p style="font-size:12px;color:#888">넛지샵 | '
        f'<a href="{one_click}">수신거부(unsubscribe)</a></p><img src="{pixel}" width="1" height="1" alt="">'
        '</body></html>\n')


# ---- AlimTalk → SMS fallback --------------------------------------------------------------------

FALLBACK_TEMPLATE = {"alimtalk": {"template_code": "ORDER_SHIPPED", "variables": {"name": "{{ profile.name }}"}},
                     "sms": {"text": "{{ profile.name }}님, 주문하신 상품이 발송되었습니다."}}


async def test_alimtalk_to_a_number_without_kakaotalk_falls_back_to_sms(workspace, redis):
    async with fake.HttpProvider(fake.nhn_kakao("kakao-app", "kakao-secret")) as kakao, \
            fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        # The fake Kakao answers 3018 (no KakaoTalk account) for this number.
        profile = await person(workspace, "no-kakao", {"name": "김민수", "phone": "010-3333-3333"})
        await configure(workspace, FALLBACK_TEMPLATE, {"alimtalk": kakao_config(kakao.url), "sms": sms_config(nhn)})
        delivery = await send(workspace, profile, ["alimtalk", "sms"])
    [tried] = kakao.received
    assert tried.path == "/alimtalk/v2.3/appkeys/kakao-app/messages"
    assert tried.headers["x-nc-api-idempotency-key"] == delivery["id"]
    assert tried.json() == {"senderKey": "s" * 40, "templateCode": "ORDER_SHIPPED", "recipientList": [{
        "recipientNo": "01033333333", "resendParameter": {"isResend": False},
        "recipientGroupingKey": delivery["id"], "templateParameter": {"name": "김민수"}}]}
    [got] = nhn.received
    assert got.path == "/sms/v3.0/appKeys/sms-app/sender/sms"
    assert got.json() == {"body": "김민수님, 주문하신 상품이 발송되었습니다.", "sendNo": "15880000",
                          "recipientList": [{"recipientNo": "01033333333", "recipientGroupingKey": delivery["id"]}]}
    assert delivery["status"] == "sent" and (delivery["channel"], delivery["provider"]) == ("sms", "nhn_sms")
    assert [(a["channel"], a["provider"], a["outcome"]) for a in delivery["attempts"]] == [
        ("alimtalk", "nhn_kakao", "unreachable"), ("sms", "nhn_sms", "sent")]
    assert "3018" in delivery["attempts"][0]["reason"]

    [event] = await delivery_events(redis, workspace.id, delivery["id"], ["delivery.sent"])
    assert event.profile_id == profile
    assert {k: event.payload[k] for k in ("channel", "provider", "template_id", "advertising", "rule")} == {
        "channel": "sms", "provider": "nhn_sms", "template_id": "hello", "advertising": False, "rule": ""}


async def test_alimtalk_provider_down_is_retried_then_sms_carries_the_message(workspace, redis):
    down = f"http://127.0.0.1:{fake.free_port()}"  # nothing listens: connection refused
    async with fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        profile = await person(workspace, "kakao-down", {"name": "김민수", "phone": "010-1234-5678"})
        await configure(workspace, FALLBACK_TEMPLATE, {"alimtalk": kakao_config(down), "sms": sms_config(nhn)})
        delivery = await send(workspace, profile, ["alimtalk", "sms"])
    [got] = nhn.received
    assert got.json()["body"] == "김민수님, 주문하신 상품이 발송되었습니다."
    assert got.json()["recipientList"] == [{"recipientNo": "01012345678", "recipientGroupingKey": delivery["id"]}]
    assert delivery["status"] == "sent" and delivery["channel"] == "sms"
    assert [(a["channel"], a["outcome"]) for a in delivery["attempts"]] == [("alimtalk", "failed"), ("sms", "sent")]
    assert "ConnectError" in delivery["attempts"][0]["reason"]
    await delivery_events(redis, workspace.id, delivery["id"], ["delivery.sent"])


async def test_alimtalk_cannot_carry_advertising_and_nothing_is_sent(workspace):
    async with fake.HttpProvider(fake.nhn_kakao("kakao-app", "kakao-secret")) as kakao, \
            fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        profile = await person(workspace, "ad-alimtalk", {"name": "김민수", "phone": "010-1234-5678"})
        await configure(workspace, FALLBACK_TEMPLATE, {"alimtalk": kakao_config(kakao.url), "sms": sms_config(nhn)},
                        policy=AD_POLICY)
        for channels, field in ((["alimtalk", "sms"], "channels[0]"), (["sms", "alimtalk"], "channels[1]")):
            response = await workspace.admin.post(
                "/v1/messages", headers={"Idempotency-Key": str(uuid.uuid4())},
                json={"profileId": profile, "channels": channels, "templateId": "hello", "advertising": True})
            assert response.status_code == 422, response.text
            error = response.json()["error"]
            assert error["details"]["field"] == field and "AlimTalk" in error["message"]
    assert kakao.received == [] and nhn.received == []
    history = (await workspace.admin.get(f"/v1/profiles/{profile}/deliveries")).json()["deliveries"]
    assert history == []  # refused before any delivery was recorded


# ---- FriendTalk (brand message) and Kakao's advertising window ------------------------------------

async def test_friendtalk_ad_after_20_waits_for_8_and_the_deferred_worker_sends_it(workspace, dispatch_clock,
                                                                                  redis, dispatch_platform):
    evening = datetime.combine(datetime.now(KST).date(), time(20, 30), KST)
    eight = datetime.combine(evening.date() + timedelta(days=1), time(8), KST)
    dispatch_clock.set(evening)
    async with fake.HttpProvider(fake.nhn_kakao("kakao-app", "kakao-secret")) as kakao:
        profile = await person(workspace, "friend", {"name": "김민수", "phone": "010-1234-5678"})
        await consent(workspace, profile, kakao=True, advertising=True)
        await configure(workspace, {"friendtalk": {
            "text": "{{ profile.name }}님, 봄 신상품 20% 할인",
            "buttons": [{"name": "보러가기", "type": "WL", "url": "https://shop.kr/spring"}]}},
            {"friendtalk": kakao_config(kakao.url)}, policy=AD_POLICY)
        deferred = await send(workspace, profile, ["friendtalk"], advertising=True, transactional=False)
        assert deferred["status"] == "deferred" and deferred["rule"] == "kakao_ad_window"
        assert deferred["channel"] == "friendtalk"
        assert at(deferred["deferredUntil"]) == eight
        assert kakao.received == []

        dispatch_clock.set(eight + timedelta(seconds=1))
        sent = await wait_for_status(workspace, deferred["id"], "sent")
    assert (sent["channel"], sent["provider"], sent["providerMessageId"]) == (
        "friendtalk", "nhn_kakao", "20260101kakao:1")
    assert [(a["channel"], a["outcome"]) for a in sent["attempts"]] == [("friendtalk", "deferred"),
                                                                        ("friendtalk", "sent")]
    assert sent["consent"]["ads:kakao"]["granted"] is True and sent["consent"]["channel:kakao"]["granted"] is True
    [got] = kakao.received
    assert got.path == "/brand-message/v1.0/appkeys/kakao-app/freestyle-messages"
    assert got.headers["x-nc-api-idempotency-key"] == deferred["id"]
    assert got.json() == {
        "senderKey": "s" * 40, "chatBubbleType": "TEXT",
        "content": "(광고)넛지샵\n김민수님, 봄 신상품 20% 할인\n무료수신거부 080-123-4567",
        "buttons": [{"name": "보러가기", "type": "WL",
                     "linkMo": click_url(dispatch_platform, workspace.id, deferred["id"], 0),
                     "linkPc": click_url(dispatch_platform, workspace.id, deferred["id"], 0)}],
        "recipientList": [{"recipientNo": "01012345678", "resendParameter": {"isResend": False},
                           "recipientGroupingKey": deferred["id"], "targeting": "I"}]}

    events = await delivery_events(redis, workspace.id, deferred["id"], ["delivery.deferred", "delivery.sent"])
    assert events[0].payload["rule"] == "kakao_ad_window" and at(events[0].payload["deferred_until"]) == eight
    assert events[0].payload["channel"] == events[1].payload["channel"] == "friendtalk"
    assert events[1].payload["deferred_until"] is None and events[1].payload["advertising"] is True
    assert {e.profile_id for e in events} == {profile}


# ---- push: FCM, APNs, web push ------------------------------------------------------------------

async def test_android_push_goes_to_fcm_with_string_data(workspace, dispatch_platform):
    async with fake.HttpProvider(fake.fcm("nudge-demo", "ya29.token")) as google:
        profile = await person(workspace, "android", {"name": "김민수", "device_platform": "android"},
                                 {"device": {"token": "fcm-token-1"}})
        await configure(workspace, {"push": PUSH_TEMPLATE}, {"push": ("fcm", {
            "project_id": "nudge-demo", "access_token": "ya29.token", "endpoint": google.url})})
        delivery = await send(workspace, profile, ["push"])
    assert delivery["status"] == "sent" and (delivery["channel"], delivery["provider"]) == ("push", "fcm")
    assert delivery["providerMessageId"].startswith("projects/nudge-demo/messages/")
    [got] = google.received
    assert got.path == "/v1/projects/nudge-demo/messages:send"
    assert got.json() == {"message": {
        "token": "fcm-token-1", "notification": {"title": "장바구니", "body": "김민수님, 잊으신 상품이 있어요"},
        "data": {"campaign": "cart", "items": "3", "url": click_url(dispatch_platform, workspace.id, delivery["id"], 0),
                 "nudge_delivery_id": delivery["id"]}}}


async def test_ios_push_goes_to_apns_signed_with_the_team_key(workspace, dispatch_platform):
    key = ec.generate_private_key(ec.SECP256R1())
    team, key_id = "TEAM" + uuid.uuid4().hex[:6].upper(), "KEY" + uuid.uuid4().hex[:7].upper()
    async with fake.HttpProvider(fake.apns(public_pem(key), team, key_id, "kr.shop.app")) as apple:
        profile = await person(workspace, "iphone", {"name": "김민수", "device_platform": "ios"},
                                 {"device": {"token": "apns-device-1"}})
        await configure(workspace, {"push": PUSH_TEMPLATE}, {"push": ("apns", {
            "team_id": team, "key_id": key_id, "private_key": pem(key), "bundle_id": "kr.shop.app",
            "endpoint": apple.url})})
        delivery = await send(workspace, profile, ["push"])
    assert delivery["status"] == "sent" and (delivery["channel"], delivery["provider"]) == ("push", "apns")
    assert delivery["providerMessageId"] == delivery["id"]  # the apns-id is the delivery's UUID
    [got] = apple.received
    assert got.path == "/3/device/apns-device-1"
    assert got.extra["claims"]["iss"] == team  # the fake verified the ES256 JWT with the team's public key
    assert jwt.get_unverified_header(got.headers["authorization"].removeprefix("bearer "))["kid"] == key_id
    assert {k: got.headers[k] for k in ("apns-topic", "apns-push-type", "apns-priority", "apns-id")} == {
        "apns-topic": "kr.shop.app", "apns-push-type": "alert", "apns-priority": "10", "apns-id": delivery["id"]}
    assert got.json() == {"campaign": "cart", "items": 3,
                          "url": click_url(dispatch_platform, workspace.id, delivery["id"], 0),
                          "nudge_delivery_id": delivery["id"],
                          "aps": {"alert": {"title": "장바구니", "body": "김민수님, 잊으신 상품이 있어요"},
                                  "sound": "default"}}


async def test_apns_token_of_one_workspace_is_never_used_for_another(workspace, workspace_store, gateway_url):
    """Team and key ids are not secrets (they are in every JWT header). A second workspace that
    configures them with a key of its own must not be able to send with the first one's token."""
    from tests.conftest import Workspace

    real_key = ec.generate_private_key(ec.SECP256R1())
    team, key_id = "TEAM" + uuid.uuid4().hex[:6].upper(), "KEY" + uuid.uuid4().hex[:7].upper()
    workspace_id, new = await workspace_store.create("other")
    keys = {k.kind: k.secret for k in new}
    other = Workspace(workspace_id, keys["write"], keys["admin"], gateway_url)
    try:
        async with fake.HttpProvider(fake.apns(public_pem(real_key), team, key_id, "kr.shop.app")) as apple:
            for ws, private_key in ((workspace, real_key), (other, ec.generate_private_key(ec.SECP256R1()))):
                profile = await person(ws, "iphone", {"device_platform": "ios"}, {"device": {"token": "dev-1"}})
                await configure(ws, {"push": {"title": "t", "body": "b"}}, {"push": ("apns", {
                    "team_id": team, "key_id": key_id, "private_key": pem(private_key), "bundle_id": "kr.shop.app",
                    "endpoint": apple.url})})
                outcome = await send(ws, profile, ["push"])
                if ws is workspace:
                    assert outcome["status"] == "sent"
                else:
                    intruder = outcome
    finally:
        await other.tracking.aclose()
        await other.admin.aclose()
    # Signed with the wrong key, APNs answers 403 InvalidProviderToken.
    assert intruder["status"] == "failed", intruder
    assert "InvalidProviderToken" in intruder["attempts"][0]["reason"]


async def test_web_push_is_encrypted_for_the_subscription_and_signed_with_vapid(workspace, dispatch_platform):
    browser_key, auth = ec.generate_private_key(ec.SECP256R1()), b"0123456789abcdef"
    vapid_key = ec.generate_private_key(ec.SECP256R1())
    vapid_public = vapid_key.public_key().public_bytes(serialization.Encoding.X962,
                                                       serialization.PublicFormat.UncompressedPoint)
    browser_public = browser_key.public_key().public_bytes(serialization.Encoding.X962,
                                                           serialization.PublicFormat.UncompressedPoint)
    async with fake.HttpProvider(fake.push_service(browser_key, auth)) as service:
        subscription = {"endpoint": f"{service.url}/push/abc", "keys": {"p256dh": b64url(browser_public),
                                                                        "auth": b64url(auth)}}
        profile = await person(workspace, "browser", {"name": "김민수", "webpush_subscription": subscription})
        await configure(workspace, {"webpush": {"title": "타임세일", "body": "{{ profile.name }}님, 1시간 남았어요",
                                                "url": "https://shop.kr/sale"}},
                        {"webpush": ("webpush", {"vapid_private_key": pem(vapid_key),
                                                 "vapid_subject": "mailto:ops@shop.kr", "ttl_seconds": 3600,
                                                 "urgency": "high"})})
        delivery = await send(workspace, profile, ["webpush"])
    assert delivery["status"] == "sent" and (delivery["channel"], delivery["provider"]) == ("webpush", "webpush")
    [got] = service.received
    assert got.path == "/push/abc" and delivery["providerMessageId"] == f"/messages/{len(got.body)}"
    assert json.loads(got.extra["payload"]) == {"title": "타임세일", "body": "김민수님, 1시간 남았어요",
                                                "url": click_url(dispatch_platform, workspace.id,
                                                                 delivery["id"], 0), "data": {},
                                                "delivery_id": delivery["id"]}
    # Decryptable only with the browser's key: the body on the wire is not the payload.
    assert got.extra["payload"] not in got.body
    assert got.extra["scheme"] == "vapid" and got.extra["vapid_key"] == b64url(vapid_public)
    assert got.extra["claims"]["sub"] == "mailto:ops@shop.kr"
    assert {k: got.headers[k] for k in ("content-encoding", "ttl", "urgency")} == {
        "content-encoding": "aes128gcm", "ttl": "3600", "urgency": "high"}
    with pytest.raises(Exception):  # another browser's key cannot read it
        http_ece.decrypt(got.body, private_key=ec.generate_private_key(ec.SECP256R1()), auth_secret=auth,
                         version="aes128gcm")
