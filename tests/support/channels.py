"""Channel settings for the local provider servers (tests/dispatch/provider_servers.py), the
advertising policy and templates the channel tests share, and reading what was sent."""

import base64
from datetime import datetime, time
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

KST = ZoneInfo("Asia/Seoul")
SMS_CONFIG = {"app_key": "sms-app", "secret_key": "sms-secret", "send_no": "1588-0000"}
KAKAO_CONFIG = {"app_key": "kakao-app", "secret_key": "kakao-secret", "sender_key": "s" * 40}
AD_POLICY = {"sender_name": "넛지샵", "opt_out_phone": "080-123-4567",
             "unsubscribe_url": "https://shop.kr/unsubscribe"}
EMAIL_TEMPLATE = {"subject": "{{ profile.name }}님, 봄 세일", "text": "{{ profile.name }}님을 위한 할인",
                  "html": "<html><body><p>{{ profile.name }}님을 위한 할인</p></body></html>"}
PUSH_TEMPLATE = {"title": "장바구니", "body": "{{ profile.name }}님, 잊으신 상품이 있어요",
                 "url": "https://shop.kr/cart", "data": {"campaign": "cart", "items": 3}}


def daytime() -> datetime:
    """14:00 KST today: advertising is allowed by the night rule and Kakao's window."""
    return datetime.combine(datetime.now(KST).date(), time(14), KST)


def at(text: str) -> datetime:
    """An API timestamp ("...Z") as a datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def text_of(msg, kind: str) -> str:
    """A part's text as sent, line ends back to \\n (SMTP carries CRLF)."""
    return msg.get_body((kind,)).get_content().replace("\r\n", "\n")


def sms_config(server) -> tuple[str, dict]:
    return "nhn_sms", {**SMS_CONFIG, "endpoint": server.url}


def kakao_config(url: str) -> tuple[str, dict]:
    return "nhn_kakao", {**KAKAO_CONFIG, "endpoint": url}


def smtp_config(smtp) -> tuple[str, dict]:
    return "smtp", {"host": "127.0.0.1", "port": smtp.port, "username": "mailer", "password": "pw",
                    "sender": "넛지샵 <news@shop.kr>", "reply_to": "help@shop.kr"}


def pem(key: ec.EllipticCurvePrivateKey) -> str:
    """An EC private key as the PKCS#8 PEM a channel config takes."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def webpush_setup(endpoint: str) -> tuple[dict, tuple[str, dict]]:
    """A browser's subscription at `endpoint` (a fresh key) and a web push channel config."""
    browser = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    subscription = {"endpoint": endpoint, "keys": {"p256dh": b64(browser), "auth": b64(b"0123456789abcdef")}}
    config = {"vapid_private_key": pem(ec.generate_private_key(ec.SECP256R1())), "vapid_subject": "mailto:ops@shop.kr"}
    return subscription, ("webpush", config)
