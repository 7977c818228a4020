"""Signed JSON webhooks to a customer's URL.

Request: POST, body {"delivery_id", "workspace_id", "profile_id", "data": content.data}, headers
X-Nudge-Delivery-Id, X-Nudge-Timestamp (unix seconds) and
X-Nudge-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")>. Signing the
timestamp with the body lets receivers refuse replays older than a few minutes.

Where it goes: every connection passes the egress guard (egress.py: public addresses only,
after DNS, unless the operator allows one). `config.allowed_hosts`, when given, narrows that
further: the URL's host, and each redirect's, must be one of them, as the URL writes it; an
entry that is an internal address is refused (at save and at each send). Redirects are
followed here, at most 3, re-posting the same signed body.
"""

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from urllib.parse import urljoin

import httpx

from services.dispatch.channels import WEBHOOK, ConfigError, Outgoing, ProviderError, ProviderResult
from services.dispatch.egress import EgressClient, EgressGuard, url_target
from services.dispatch.providers import (check_hosts, check_url, host_list, narrowed, refused_as, required,
                                         status_error, timeout_of, transport_error)

MAX_REDIRECTS = 3


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookAdapter:
    # X-Nudge-Delivery-Id is the same on every try: receivers drop a repeat of it.
    channel, name, idempotent = WEBHOOK, "webhook", True

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def check_config(self, config: dict) -> dict:
        required(config, "secret")
        if config.get("url") and not str(config["url"]).startswith(("https://", "http://")):
            raise ConfigError("config.url must be an http(s) URL", field="config.url")
        return {**config, "allowed_hosts": host_list(config, "allowed_hosts"),
                "timeout_seconds": timeout_of(config, 5)}

    async def check_target(self, config: dict, guard: EgressGuard) -> None:
        with refused_as("config.allowed_hosts"):
            await check_hosts(guard, config["allowed_hosts"], "config.allowed_hosts")
        if config.get("url"):
            await check_url(guard, str(config["url"]), "config.url", config["allowed_hosts"], "config.allowed_hosts")

    async def send(self, config: dict, outgoing: Outgoing, http: EgressClient) -> ProviderResult:
        url = outgoing.to or config.get("url")
        if not url:
            raise ConfigError("config.url is required when the address is empty", field="config.url")
        await check_hosts(http.guard, config["allowed_hosts"], "config.allowed_hosts")  # a config saved before
        body = json.dumps({"delivery_id": outgoing.delivery_id, "workspace_id": outgoing.workspace_id,
                           "profile_id": outgoing.profile_id, "data": outgoing.content.data},
                          ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(self._clock()))
        headers = {"Content-Type": "application/json", "User-Agent": "Nudge-Webhook/1",
                   "X-Nudge-Delivery-Id": outgoing.delivery_id, "X-Nudge-Timestamp": timestamp,
                   "X-Nudge-Signature": signature(config["secret"], timestamp, body)}
        for _ in range(MAX_REDIRECTS + 1):
            narrowed(url_target(url)[0], config["allowed_hosts"], "config.allowed_hosts")
            try:
                response = await http.post(url, content=body, headers=headers, timeout=config["timeout_seconds"])
            except httpx.HTTPError as exc:
                raise transport_error(self.name, exc) from None
            if not (response.is_redirect and "location" in response.headers):
                break
            url = urljoin(url, response.headers["location"])
        else:
            raise ProviderError(f"webhook: more than {MAX_REDIRECTS} redirects")
        if response.is_success:
            return ProviderResult(provider=self.name, provider_message_id=outgoing.delivery_id)
        if response.status_code == 410:
            raise ProviderError("webhook: endpoint is gone (HTTP 410)", unreachable=True)
        if response.status_code == 408:
            raise ProviderError("webhook: HTTP 408", retryable=True)
        raise status_error(self.name, response.status_code)
