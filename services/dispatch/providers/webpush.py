"""Browser push: RFC 8030 delivery, VAPID (RFC 8292) identification, aes128gcm payload
encryption (RFC 8291). py_vapid signs the JWT and http_ece encrypts (both from Mozilla's
web push stack, the pieces pywebpush is built on); the request goes out through httpx.

`to` is the browser's PushSubscription JSON: {"endpoint", "keys": {"p256dh", "auth"}}. It comes
from a trait an SDK sets with the public write key, so anyone can name any endpoint: it must be
https on a public address (the egress guard, egress.py, checks the address after DNS), or on an
address the operator allows (a local push service, where plain http is taken too).
The service worker receives this JSON payload:
{"title", "body", "url", "data", "delivery_id"}.
"""

import base64
import json
import os
import time
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from py_vapid import Vapid02

from services.dispatch.channels import WEBPUSH, ConfigError, Outgoing, ProviderError, ProviderResult
from services.dispatch.egress import EgressClient, EgressGuard, EgressRefused, url_target
from services.dispatch.providers import required, status_error, timeout_of, transport_error

VAPID_LIFETIME = 12 * 3600  # RFC 8292 allows at most 24 h
URGENCIES = ("very-low", "low", "normal", "high")


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def parse_subscription(to: str) -> tuple[str, bytes, bytes]:
    try:
        sub = json.loads(to)
        endpoint, p256dh, auth = sub["endpoint"], b64url_decode(sub["keys"]["p256dh"]), b64url_decode(sub["keys"]["auth"])
    except (ValueError, KeyError, TypeError):
        raise ProviderError("webpush: the address is not a push subscription JSON", unreachable=True) from None
    if not endpoint.startswith(("https://", "http://")) or len(p256dh) != 65 or len(auth) != 16:
        raise ProviderError("webpush: malformed push subscription", unreachable=True)
    return endpoint, p256dh, auth


def payload_of(outgoing: Outgoing) -> bytes:
    content = outgoing.content
    return json.dumps({"title": content.subject or "", "body": content.body, "url": content.url,
                       "data": content.data, "delivery_id": outgoing.delivery_id},
                      ensure_ascii=False, separators=(",", ":")).encode()


def vapid_key(config: dict) -> Vapid02:
    """The application server key, as PEM or as the base64url raw/DER forms web-push tools print."""
    key = config["vapid_private_key"].strip()
    if key.startswith("-----BEGIN"):
        return Vapid02(load_pem_private_key(key.encode(), password=None))
    return Vapid02.from_string(key)


async def _check_endpoint(endpoint: str, guard: EgressGuard) -> None:
    host, port = url_target(endpoint)
    if not endpoint.startswith("https://") and not await guard.operator_allows(host, port):
        raise EgressRefused(f"the push endpoint on {host} is not https")


class WebPushAdapter:
    channel, name, idempotent = WEBPUSH, "webpush", False  # RFC 8030 has no idempotency key

    def check_config(self, config: dict) -> dict:
        required(config, "vapid_private_key", "vapid_subject")
        try:
            vapid_key(config)
        except Exception:  # noqa: BLE001 - py_vapid raises several kinds for a bad key
            raise ConfigError("config.vapid_private_key must be a P-256 key (PEM or base64url)",
                              field="config.vapid_private_key") from None
        if not config["vapid_subject"].startswith(("mailto:", "https://")):
            raise ConfigError("config.vapid_subject must be a mailto: or https: URL", field="config.vapid_subject")
        urgency = config.get("urgency", "normal")
        if urgency not in URGENCIES:
            raise ConfigError(f"config.urgency must be one of {', '.join(URGENCIES)}", field="config.urgency")
        return {**config, "urgency": urgency, "ttl_seconds": int(config.get("ttl_seconds", 86400)),
                "timeout_seconds": timeout_of(config)}

    async def check_target(self, config: dict, guard: EgressGuard) -> None:
        """Nothing to check at save: the endpoint is each person's subscription, checked at each send."""

    async def send(self, config: dict, outgoing: Outgoing, http: EgressClient) -> ProviderResult:
        endpoint, p256dh, auth = parse_subscription(outgoing.to)
        # A fresh sender key pair per message, as RFC 8291 requires.
        body = http_ece.encrypt(payload_of(outgoing), salt=os.urandom(16), private_key=ec.generate_private_key(ec.SECP256R1()),
                                dh=p256dh, auth_secret=auth, version="aes128gcm")
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(endpoint))
        vapid = vapid_key(config)
        claims = {"aud": origin, "exp": int(time.time()) + VAPID_LIFETIME, "sub": config["vapid_subject"]}
        headers = {**vapid.sign(claims), "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                   "TTL": str(config["ttl_seconds"]), "Urgency": config["urgency"]}
        try:
            await _check_endpoint(endpoint, http.guard)
            response = await http.post(endpoint, content=body, headers=headers, timeout=config["timeout_seconds"])
        except EgressRefused as err:
            err.unreachable = True  # this subscription can never be reached: the next channel may
            raise
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from None
        if response.status_code in (200, 201, 202):
            return ProviderResult(provider=self.name, provider_message_id=response.headers.get("location", ""))
        if response.status_code in (404, 410):
            # The browser unsubscribed or the subscription expired: it will never work again.
            raise ProviderError(f"webpush: subscription gone (HTTP {response.status_code})", unreachable=True)
        raise status_error(self.name, response.status_code, response.text[:200])
