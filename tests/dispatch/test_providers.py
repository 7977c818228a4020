"""Each provider adapter against a local server that speaks the provider's format: the exact
request it sends, and how the provider's answers map to accepted / retry / unreachable."""

import base64
import hashlib
import hmac
import json
import ssl
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.responses import Response

from services.dispatch.channels import (ALIMTALK, EMAIL, FRIENDTALK, PUSH, SMS, WEBHOOK, WEBPUSH, ConfigError,
                                        Content, Outgoing, ProviderError)
from services.dispatch.egress import Allowance, EgressClient, EgressGuard, system_resolve
from services.dispatch.providers.email import SmtpAdapter
from services.dispatch.providers.kakao import AlimTalkAdapter, BrandMessageAdapter
from services.dispatch.providers.push import ApnsAdapter, FcmAdapter, apns_id_for
from services.dispatch.providers.registry import ADAPTERS, adapter_for
from services.dispatch.providers.sms import NhnSmsAdapter
from services.dispatch.providers.webhook import WebhookAdapter
from services.dispatch.providers.webpush import WebPushAdapter
from tests.dispatch import provider_servers as fake
from tests.support.channels import pem


def outgoing(channel: str, to: str, content: Content, **kw) -> Outgoing:
    return Outgoing(delivery_id=kw.pop("delivery_id", str(uuid.uuid4())), workspace_id="ws_1", profile_id="p_1",
                    channel=channel, to=to, content=content, **kw)


LOOPBACK = Allowance.parse("127.0.0.0/8, ::1")  # what the operator of a test deployment allows


@pytest.fixture
async def http():
    """The client dispatch gives adapters, allowed to reach the local provider servers."""
    async with EgressClient(EgressGuard(LOOPBACK)) as client:
        yield client


async def fails(coro) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await coro
    return caught.value


# ---- registry ---------------------------------------------------------------------------------

def test_registry_lists_every_sending_channel_and_names_unknown_providers():
    assert set(ADAPTERS) == {EMAIL, SMS, ALIMTALK, FRIENDTALK, PUSH, WEBPUSH, WEBHOOK}
    assert set(ADAPTERS[PUSH]) == {"fcm", "apns"}
    for channel, providers in ADAPTERS.items():
        for name, adapter in providers.items():
            assert (adapter.channel, adapter.name) == (channel, name)
    with pytest.raises(ConfigError) as caught:
        adapter_for(SMS, "twilio")
    assert caught.value.field == "config.provider" and "nhn_sms" in str(caught.value)


@pytest.mark.parametrize("adapter, config, field", [
    (SmtpAdapter(), {"port": 25, "sender": "a@b.kr"}, "config.host"),
    (NhnSmsAdapter(), {"secret_key": "s", "send_no": "15880000"}, "config.app_key"),
    (NhnSmsAdapter(), {"app_key": "a", "secret_key": "s"}, "config.send_no"),
    (AlimTalkAdapter(), {"app_key": "a", "secret_key": "s"}, "config.sender_key"),
    (BrandMessageAdapter(), {"app_key": "a", "secret_key": "s", "sender_key": "k", "targeting": "X"},
     "config.targeting"),
    (FcmAdapter(), {"project_id": "p"}, "config.access_token"),
    (ApnsAdapter(), {"team_id": "T", "key_id": "K", "bundle_id": "b", "private_key": "nope"}, "config.private_key"),
    (WebPushAdapter(), {"vapid_private_key": "x"}, "config.vapid_subject"),
    (WebhookAdapter(), {}, "config.secret"),
])
def test_check_config_names_the_missing_or_bad_field(adapter, config, field):
    with pytest.raises(ConfigError) as caught:
        adapter.check_config(config)
    assert caught.value.field == field and field in str(caught.value)


# ---- email ------------------------------------------------------------------------------------

async def test_email_is_delivered_over_smtp_with_unsubscribe_headers_and_stable_message_id(http):
    adapter = SmtpAdapter()
    with fake.SmtpProvider("mailer", "pw") as smtp:
        config = adapter.check_config({"host": "127.0.0.1", "port": smtp.port, "username": "mailer",
                                       "password": "pw", "starttls": False, "sender": "Shop <news@shop.kr>",
                                       "reply_to": "help@shop.kr"})
        content = Content(subject="봄 세일", body="텍스트 본문", html="<p>HTML 본문</p>",
                          data={"unsubscribe_url": "https://shop.kr/u/abc"})
        result = await adapter.send(config, outgoing(EMAIL, "kim@example.kr", content, delivery_id="d-1"), http)

    assert (result.provider, result.provider_message_id) == ("smtp", "<d-1@shop.kr>")
    [mail] = smtp.mail
    assert mail.login == ("mailer", "pw")
    assert (mail.sender, mail.recipients) == ("news@shop.kr", ["kim@example.kr"])
    msg = mail.message
    assert (msg["From"], msg["To"], msg["Subject"], msg["Reply-To"]) == (
        "Shop <news@shop.kr>", "kim@example.kr", "봄 세일", "help@shop.kr")
    assert msg["Message-ID"] == "<d-1@shop.kr>"
    assert msg["List-Unsubscribe"] == "<https://shop.kr/u/abc>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(("plain",)).get_content().strip() == "텍스트 본문"
    assert msg.get_body(("html",)).get_content().strip() == "<p>HTML 본문</p>"


async def test_email_refused_mailbox_is_unreachable_and_temporary_refusal_is_retried(http):
    adapter = SmtpAdapter()
    with fake.SmtpProvider("u", "p") as smtp:
        config = adapter.check_config({"host": "127.0.0.1", "port": smtp.port, "sender": "news@shop.kr"})
        gone = await fails(adapter.send(config, outgoing(EMAIL, "nobody@example.kr", Content(body="x")), http))
        busy = await fails(adapter.send(config, outgoing(EMAIL, "busy@example.kr", Content(body="x")), http))
    assert (gone.unreachable, gone.retryable) == (True, False) and "550" in str(gone)
    assert (busy.unreachable, busy.retryable) == (False, True) and "451" in str(busy)
    closed = await fails(adapter.send({**config, "port": fake.free_port()},
                                      outgoing(EMAIL, "kim@example.kr", Content(body="x")), http))
    assert closed.retryable


# ---- SMS --------------------------------------------------------------------------------------

SMS_CONFIG = {"app_key": "sms-app", "secret_key": "sms-secret", "send_no": "1588-0000"}


async def test_sms_and_lms_use_nhn_v3_request_format(http):
    adapter = NhnSmsAdapter()
    async with fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        config = adapter.check_config({**SMS_CONFIG, "endpoint": nhn.url})
        short = await adapter.send(config, outgoing(SMS, "+821012345678", Content(body="인증번호 123456"),
                                                    delivery_id="d-sms"), http)
        await adapter.send(config, outgoing(SMS, "+14155550100", Content(body="긴 " * 60, subject="안내", sms_type="LMS"),
                                            delivery_id="d-lms", advertising=True), http)
    assert (short.provider, short.provider_message_id) == ("nhn_sms", "20260101000000abcdefg:1")
    first, second = nhn.received
    assert (first.method, first.path) == ("POST", "/sms/v3.0/appKeys/sms-app/sender/sms")
    assert first.headers["x-secret-key"] == "sms-secret"
    assert first.json() == {"body": "인증번호 123456", "sendNo": "15880000",
                            "recipientList": [{"recipientNo": "01012345678", "recipientGroupingKey": "d-sms"}]}
    assert second.path == "/sms/v3.0/appKeys/sms-app/sender/ad-mms"
    assert second.json() == {"body": "긴 " * 60, "sendNo": "15880000", "title": "안내",
                             "recipientList": [{"internationalRecipientNo": "14155550100",
                                                "recipientGroupingKey": "d-lms"}]}


async def test_sms_invalid_number_is_unreachable_and_nhn_system_error_is_retried(http):
    adapter = NhnSmsAdapter()
    async with fake.HttpProvider(fake.nhn_sms("sms-app", "sms-secret")) as nhn:
        config = adapter.check_config({**SMS_CONFIG, "endpoint": nhn.url})
        invalid = await fails(adapter.send(config, outgoing(SMS, "+821099999999", Content(body="x")), http))
        down = await fails(adapter.send(config, outgoing(SMS, "+821055555555", Content(body="x")), http))
        wrong_key = await fails(adapter.send({**config, "secret_key": "other"},
                                             outgoing(SMS, "+821012345678", Content(body="x")), http))
    assert (invalid.unreachable, invalid.retryable) == (True, False) and "-2019" in str(invalid)
    assert (down.unreachable, down.retryable) == (False, True)
    assert (wrong_key.unreachable, wrong_key.retryable) == (False, False) and "-1000" in str(wrong_key)
    assert "other" not in str(wrong_key)


# ---- Kakao ------------------------------------------------------------------------------------

KAKAO_CONFIG = {"app_key": "kakao-app", "secret_key": "kakao-secret", "sender_key": "s" * 40}


async def test_alimtalk_sends_template_with_variables_and_no_nhn_fallback(http):
    adapter = AlimTalkAdapter()
    async with fake.HttpProvider(fake.nhn_kakao("kakao-app", "kakao-secret")) as nhn:
        config = adapter.check_config({**KAKAO_CONFIG, "endpoint": nhn.url})
        content = Content(template_code="ORDER_SHIPPED", variables={"name": "김민수", "count": 2})
        result = await adapter.send(config, outgoing(ALIMTALK, "+821012345678", content, delivery_id="d-at"), http)
        # A retry of the same delivery after a lost answer: NHN says duplicate, it was sent once.
        again = await adapter.send(config, outgoing(ALIMTALK, "+821012345678", content, delivery_id="d-at"), http)
    assert result.provider_message_id == "20260101kakao:1"
    assert again.provider_message_id == "duplicate:d-at"
    sent = nhn.received[0]
    assert sent.path == "/alimtalk/v2.3/appkeys/kakao-app/messages"
    assert sent.headers["x-secret-key"] == "kakao-secret"
    assert sent.headers["x-nc-api-idempotency-key"] == "d-at"
    assert sent.json() == {"senderKey": "s" * 40, "templateCode": "ORDER_SHIPPED", "recipientList": [{
        "recipientNo": "01012345678", "resendParameter": {"isResend": False}, "recipientGroupingKey": "d-at",
        "templateParameter": {"name": "김민수", "count": "2"}}]}


async def test_kakao_recipient_without_kakaotalk_or_with_invalid_number_is_unreachable(http):
    adapter = AlimTalkAdapter()
    async with fake.HttpProvider(fake.nhn_kakao("kakao-app", "kakao-secret")) as nhn:
        config = adapter.check_config({**KAKAO_CONFIG, "endpoint": nhn.url})
        content = Content(template_code="T1")
        no_kakao = await fails(adapter.send(config, outgoing(ALIMTALK, "+821033333333", content), http))
        invalid = await fails(adapter.send(config, outgoing(ALIMTALK, "+821099999999", content), http))
    assert no_kakao.unreachable and "3018" in str(no_kakao)
    assert invalid.unreachable and "-5000" in str(invalid)


async def test_friendtalk_goes_out_as_nhn_brand_message_with_buttons(http):
    adapter = BrandMessageAdapter()
    async with fake.HttpProvider(fake.nhn_kakao("kakao-app", "kakao-secret")) as nhn:
        config = adapter.check_config({**KAKAO_CONFIG, "endpoint": nhn.url})
        content = Content(body="(광고) 봄 신상품 20% 할인", buttons=({"name": "보러가기", "type": "WL",
                                                                 "url": "https://shop.kr/spring"},))
        await adapter.send(config, outgoing(FRIENDTALK, "+821012345678", content, delivery_id="d-ft",
                                            advertising=True), http)
    sent = nhn.received[0]
    assert sent.path == "/brand-message/v1.0/appkeys/kakao-app/freestyle-messages"
    assert sent.json() == {
        "senderKey": "s" * 40, "chatBubbleType": "TEXT", "content": "(광고) 봄 신상품 20% 할인",
        "buttons": [{"name": "보러가기", "type": "WL", "linkMo": "https://shop.kr/spring",
                     "linkPc": "https://shop.kr/spring"}],
        "recipientList": [{"recipientNo": "01012345678", "resendParameter": {"isResend": False},
                           "recipientGroupingKey": "d-ft", "targeting": "I"}]}


# ---- push: FCM --------------------------------------------------------------------------------

async def test_fcm_v1_message_carries_notification_and_string_data(http):
    adapter = FcmAdapter()
    async with fake.HttpProvider(fake.fcm("nudge-demo", "ya29.token")) as google:
        config = adapter.check_config({"project_id": "nudge-demo", "access_token": "ya29.token",
                                       "endpoint": google.url})
        content = Content(subject="장바구니", body="잊으신 상품이 있어요", url="https://shop.kr/cart",
                          data={"campaign": "cart", "items": 3})
        result = await adapter.send(config, outgoing(PUSH, "tok-1", content, delivery_id="d-fcm",
                                                     platform="android"), http)
    assert result.provider_message_id.startswith("projects/nudge-demo/messages/")
    sent = google.received[0]
    assert sent.path == "/v1/projects/nudge-demo/messages:send"
    assert sent.json() == {"message": {
        "token": "tok-1", "notification": {"title": "장바구니", "body": "잊으신 상품이 있어요"},
        "data": {"campaign": "cart", "items": "3", "url": "https://shop.kr/cart", "nudge_delivery_id": "d-fcm"}}}


async def test_fcm_dead_token_is_unreachable_and_unavailable_is_retried(http):
    adapter = FcmAdapter()
    async with fake.HttpProvider(fake.fcm("p", "t")) as google:
        config = adapter.check_config({"project_id": "p", "access_token": "t", "endpoint": google.url})
        errors = {token: await fails(adapter.send(config, outgoing(PUSH, token, Content(body="x")), http))
                  for token in ("stale", "bad", "busy")}
        auth = await fails(adapter.send({**config, "access_token": "expired"},
                                        outgoing(PUSH, "tok", Content(body="x")), http))
    assert errors["stale"].unreachable and "UNREGISTERED" not in str(errors["busy"])
    assert errors["bad"].unreachable and not errors["bad"].retryable
    assert errors["busy"].retryable and not errors["busy"].unreachable
    assert not auth.retryable and not auth.unreachable and "401" in str(auth)


# ---- push: APNs -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def apns_key():
    return ec.generate_private_key(ec.SECP256R1())


async def test_apns_request_has_topic_headers_and_an_es256_jwt_from_the_team_key(http, apns_key):
    adapter = ApnsAdapter()
    public = apns_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    async with fake.HttpProvider(fake.apns(public, "TEAM123456", "KEY1234567", "kr.shop.app")) as apple:
        config = adapter.check_config({"team_id": "TEAM123456", "key_id": "KEY1234567", "private_key": pem(apns_key),
                                       "bundle_id": "kr.shop.app", "endpoint": apple.url})
        content = Content(subject="배송 시작", body="오늘 도착 예정", url="shop://orders/1", data={"order": 1})
        before = int(time.time())
        result = await adapter.send(config, outgoing(PUSH, "device-1", content, delivery_id="d-apns",
                                                     platform="ios"), http)
        await adapter.send(config, outgoing(PUSH, "device-2", content, platform="ios"), http)
    expected_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "nudge:delivery:d-apns"))
    assert result.provider_message_id == expected_id == str(apns_id_for("d-apns"))
    first, second = apple.received
    assert first.path == "/3/device/device-1"
    assert {k: first.headers[k] for k in ("apns-topic", "apns-push-type", "apns-priority", "apns-id")} == {
        "apns-topic": "kr.shop.app", "apns-push-type": "alert", "apns-priority": "10", "apns-id": expected_id}
    assert first.extra["claims"]["iss"] == "TEAM123456" and first.extra["claims"]["iat"] >= before
    assert first.headers["authorization"] == second.headers["authorization"]  # one token, reused
    assert first.json() == {"order": 1, "url": "shop://orders/1", "nudge_delivery_id": "d-apns",
                            "aps": {"alert": {"title": "배송 시작", "body": "오늘 도착 예정"}, "sound": "default"}}


async def test_apns_unregistered_or_bad_token_is_unreachable_and_503_is_retried(http, apns_key):
    adapter = ApnsAdapter()
    public = apns_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    async with fake.HttpProvider(fake.apns(public, "T", "K", "b")) as apple:
        config = adapter.check_config({"team_id": "T", "key_id": "K", "private_key": pem(apns_key),
                                       "bundle_id": "b", "endpoint": apple.url})
        errors = {token: await fails(adapter.send(config, outgoing(PUSH, token, Content(body="x")), http))
                  for token in ("gone", "bad", "busy")}
        wrong_key = ApnsAdapter().check_config({**config, "private_key": pem(ec.generate_private_key(ec.SECP256R1()))})
        refused = await fails(adapter.__class__().send(wrong_key, outgoing(PUSH, "ok", Content(body="x")), http))
    assert errors["gone"].unreachable and "Unregistered" in str(errors["gone"])
    assert errors["bad"].unreachable and "BadDeviceToken" in str(errors["bad"])
    assert errors["busy"].retryable and not errors["busy"].unreachable
    assert "InvalidProviderToken" in str(refused) and not refused.retryable


# ---- web push ---------------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_web_push_payload_is_encrypted_for_the_subscription_and_signed_with_vapid(http):
    adapter = WebPushAdapter()
    browser_key, auth = ec.generate_private_key(ec.SECP256R1()), b"0123456789abcdef"
    vapid_key = ec.generate_private_key(ec.SECP256R1())
    vapid_public = vapid_key.public_key().public_bytes(serialization.Encoding.X962,
                                                       serialization.PublicFormat.UncompressedPoint)
    async with fake.HttpProvider(fake.push_service(browser_key, auth)) as service:
        subscription = json.dumps({"endpoint": f"{service.url}/push/abc", "keys": {
            "p256dh": _b64(browser_key.public_key().public_bytes(serialization.Encoding.X962,
                                                                 serialization.PublicFormat.UncompressedPoint)),
            "auth": _b64(auth)}})
        config = adapter.check_config({"vapid_private_key": pem(vapid_key), "vapid_subject": "mailto:ops@shop.kr",
                                       "ttl_seconds": 3600, "urgency": "high"})
        content = Content(subject="타임세일", body="1시간 남았어요", url="https://shop.kr/sale", data={"sale": 7})
        result = await adapter.send(config, outgoing(WEBPUSH, subscription, content, delivery_id="d-wp"), http)
        gone = await fails(adapter.send(config, outgoing(WEBPUSH, subscription.replace("/push/abc", "/gone"),
                                                         content), http))
    got = service.received[0]
    assert result.provider_message_id.startswith("/messages/")
    assert got.path == "/push/abc"
    assert json.loads(got.extra["payload"]) == {"title": "타임세일", "body": "1시간 남았어요",
                                                "url": "https://shop.kr/sale", "data": {"sale": 7},
                                                "delivery_id": "d-wp"}
    assert got.extra["scheme"] == "vapid" and got.extra["vapid_key"] == _b64(vapid_public)
    assert got.extra["claims"]["sub"] == "mailto:ops@shop.kr"
    assert {k: got.headers[k] for k in ("content-encoding", "ttl", "urgency")} == {
        "content-encoding": "aes128gcm", "ttl": "3600", "urgency": "high"}
    assert gone.unreachable and "410" in str(gone)
    bad = await fails(adapter.send(config, outgoing(WEBPUSH, "not json", content), http))
    assert bad.unreachable


# ---- webhooks ---------------------------------------------------------------------------------

def receiver():
    holder = {}
    server = fake.HttpProvider(fake.webhook_receiver(lambda: holder["port"]))
    holder["port"] = server.port
    return server


async def test_webhook_posts_signed_json_to_an_allowed_host(http):
    adapter = WebhookAdapter(clock=lambda: 1767225600)
    async with receiver() as hook:
        config = adapter.check_config({"secret": "whsec_1", "allowed_hosts": ["127.0.0.1"]})
        content = Content(data={"event": "cart_abandoned", "total": 42000})
        result = await adapter.send(config, outgoing(WEBHOOK, f"{hook.url}/hook", content, delivery_id="d-wh"), http)
    assert result.provider_message_id == "d-wh"
    [got] = hook.received
    assert got.json() == {"delivery_id": "d-wh", "workspace_id": "ws_1", "profile_id": "p_1",
                          "data": {"event": "cart_abandoned", "total": 42000}}
    expected = hmac.new(b"whsec_1", b"1767225600." + got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-nudge-signature"] == f"sha256={expected}"
    assert got.headers["x-nudge-timestamp"] == "1767225600"
    assert got.headers["x-nudge-delivery-id"] == "d-wh"
    assert got.headers["host"] == f"127.0.0.1:{hook.port}"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data",
    "http://[::1]:{port}/hook", "http://localhost:{port}/hook", "http://[::ffff:127.0.0.1]:{port}/hook",
    "http://0.0.0.0:{port}/hook", "file:///etc/passwd",
])
async def test_webhook_to_internal_address_is_refused_before_connecting(url):
    adapter = WebhookAdapter()
    async with receiver() as hook, EgressClient(EgressGuard()) as strict:  # no operator exception
        config = adapter.check_config({"secret": "s"})
        error = await fails(adapter.send(config, outgoing(WEBHOOK, url.format(port=hook.port), Content()), strict))
    assert "egress refused" in str(error) and not error.retryable and not error.unreachable
    assert hook.received == []


async def test_webhook_redirect_from_allowed_host_to_internal_address_is_refused():
    async def resolve(host: str, port: int) -> list[str]:
        # A public-looking partner host that (here) lives on the test server.
        return ["127.0.0.1"] if host == "hooks.partner.example" else await system_resolve(host, port)

    adapter = WebhookAdapter()
    async with receiver() as other, receiver() as hook:
        partner = fake.webhook_receiver(lambda: hook.port)
        hook.answer = lambda got: (Response(status_code=307, headers={"location": f"{other.url}/hook"})
                                   if got.path == "/to-other-port" else partner(got))
        # The operator allows the partner's server only: its address, on its port.
        guard = EgressGuard(Allowance.parse(f"127.0.0.1:{hook.port}"), resolve)
        base = f"http://hooks.partner.example:{hook.port}"
        async with EgressClient(guard) as http:
            config = adapter.check_config({"secret": "s"})
            other_port = await fails(adapter.send(config, outgoing(WEBHOOK, f"{base}/to-other-port", Content()),
                                                  http))
            to_metadata = await fails(adapter.send(config, outgoing(WEBHOOK, f"{base}/to-metadata", Content()),
                                                   http))
            loop = await fails(adapter.send(config, outgoing(WEBHOOK, f"{base}/chain", Content()), http))
            followed = await adapter.send(config, outgoing(WEBHOOK, f"{base}/to-hook", Content()), http)
        # Where the operator allows all of loopback, a workspace narrowing to the partner's host still
        # has the partner's redirect to 127.0.0.1 refused.
        async with EgressClient(EgressGuard(LOOPBACK, resolve)) as wide:
            narrowed = adapter.check_config({"secret": "s", "allowed_hosts": ["hooks.partner.example"]})
            elsewhere = await fails(adapter.send(narrowed, outgoing(WEBHOOK, f"{base}/to-loopback", Content()), wide))
    assert "egress refused: 127.0.0.1 is loopback" in str(other_port) and not other_port.retryable
    assert "169.254.169.254 is a cloud metadata address" in str(to_metadata)
    assert "redirects" in str(loop) and not loop.retryable
    assert followed.provider == "webhook"
    assert "127.0.0.1 is not in config.allowed_hosts" in str(elsewhere)
    assert other.received == []
    paths = [r.path for r in hook.received]
    assert paths == ["/to-other-port", "/to-metadata", "/chain", "/chain", "/chain", "/chain", "/to-hook", "/hook",
                     "/to-loopback"]
    assert hook.received[-2].headers["host"] == f"hooks.partner.example:{hook.port}"


async def test_webhook_server_errors_are_retried_and_gone_is_unreachable(http):
    adapter = WebhookAdapter()
    async with receiver() as hook:
        config = adapter.check_config({"secret": "s", "allowed_hosts": ["127.0.0.1"], "timeout_seconds": 2})
        down = await fails(adapter.send(config, outgoing(WEBHOOK, f"{hook.url}/fail", Content()), http))
        gone = await fails(adapter.send(config, outgoing(WEBHOOK, f"{hook.url}/gone", Content()), http))
        missing = await fails(adapter.send(config, outgoing(WEBHOOK, f"{hook.url}/nope", Content()), http))
    assert down.retryable and not down.unreachable
    assert gone.unreachable
    assert not missing.retryable and not missing.unreachable and "404" in str(missing)


async def test_webhook_over_tls_connects_to_the_checked_ip_but_verifies_the_host_name(tmp_path):
    cert, key, cert_pem = fake.self_signed("hooks.partner.example", tmp_path)

    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    adapter = WebhookAdapter()
    trust = ssl.create_default_context(cadata=cert_pem.decode())
    server = fake.HttpProvider(fake.webhook_receiver(lambda: 0), tls=(cert, key))
    async with server, EgressClient(EgressGuard(LOOPBACK, resolve), verify=trust) as http:
        config = adapter.check_config({"secret": "s", "allowed_hosts": ["hooks.partner.example", "other.example"]})
        await adapter.send(config, outgoing(WEBHOOK, f"https://hooks.partner.example:{server.port}/hook",
                                            Content()), http)
        # Same IP, but the certificate is not for this name: the TLS check still applies.
        wrong_name = await fails(adapter.send(config, outgoing(
            WEBHOOK, f"https://other.example:{server.port}/hook", Content()), http))
    assert [r.headers["host"] for r in server.received] == [f"hooks.partner.example:{server.port}"]
    assert wrong_name.retryable and "ConnectError" in str(wrong_name)
