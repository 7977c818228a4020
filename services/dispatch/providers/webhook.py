"""Signed JSON webhooks to a customer's URL, guarded against SSRF.

Request: POST, body {"delivery_id", "workspace_id", "profile_id", "data": content.data}, headers
X-Nudge-Delivery-Id, X-Nudge-Timestamp (unix seconds) and
X-Nudge-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")>. Signing the
timestamp with the body lets receivers refuse replays older than a few minutes.

SSRF guard: the host is resolved here and every address must be public (not private,
loopback, link-local, multicast, reserved, unspecified or otherwise non-global, IPv4-mapped
IPv6 included) unless the host is in config.allowed_hosts. The request then goes to the
checked IP itself (Host header and TLS SNI/certificate check keep the name), so a second DNS
answer cannot swap in an internal address (DNS rebinding). Redirects are followed by hand, at
most 3, each target checked the same way; the same signed body is re-posted. Connections are
not reused ("Connection: close"), since a pooled connection is keyed by IP and could otherwise
carry a request for another host name that shares the address.
"""

import asyncio
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urljoin

import httpx

from services.dispatch.channels import WEBHOOK, ConfigError, Outgoing, ProviderError, ProviderResult
from services.dispatch.providers import required, status_error, timeout_of, transport_error

MAX_REDIRECTS = 3
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback in disguise
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Refused(ProviderError):
    def __init__(self, message: str) -> None:
        super().__init__(f"webhook: refused: {message}", retryable=False, unreachable=False)
        self.detail = message


class WebhookAdapter:
    # X-Nudge-Delivery-Id is the same on every try: receivers drop a repeat of it.
    channel, name, idempotent = WEBHOOK, "webhook", True

    def __init__(self, resolve: Resolver = system_resolve, clock: Callable[[], float] = time.time) -> None:
        self._resolve, self._clock = resolve, clock

    def check_config(self, config: dict) -> dict:
        required(config, "secret")
        allowed = config.get("allowed_hosts") or []
        if not isinstance(allowed, list | tuple) or not all(isinstance(h, str) for h in allowed):
            raise ConfigError("config.allowed_hosts must be a list of host names", field="config.allowed_hosts")
        if config.get("url") and not str(config["url"]).startswith(("https://", "http://")):
            raise ConfigError("config.url must be an http(s) URL", field="config.url")
        return {**config, "allowed_hosts": [h.lower().rstrip(".") for h in allowed],
                "timeout_seconds": timeout_of(config, 5)}

    async def check_target(self, config: dict) -> None:
        """At save, the check every send makes (`pinned`) on config.url: a URL the guard
        would refuse is refused now, naming config.url, not at each send."""
        if not config.get("url"):
            return
        try:
            await self.pinned(str(config["url"]), config)
        except Refused as err:
            hint = "" if err.detail.startswith(("not a valid", "only http")) else \
                " (add the URL's host name, as written, to config.allowed_hosts to allow it)"
            raise ConfigError(f"config.url: refused: {err.detail}{hint}", field="config.url") from None
        except ProviderError as err:
            raise ConfigError(f"config.url: {str(err).removeprefix('webhook: ')}", field="config.url") from None

    async def pinned(self, url: str, config: dict) -> tuple[httpx.URL, dict, dict]:
        """The URL rewritten to a checked IP, plus the Host header and TLS extensions that keep the name."""
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL:
            raise Refused("not a valid URL") from None
        if target.scheme not in ("http", "https") or not target.host:
            raise Refused("only http and https URLs with a host are allowed")
        host = target.host.lower().rstrip(".")
        port = target.port or (443 if target.scheme == "https" else 80)
        try:
            addresses = await self._resolve(host, port)
        except OSError:
            raise ProviderError(f"webhook: cannot resolve {host}", retryable=True) from None
        if not addresses:
            raise ProviderError(f"webhook: {host} has no address", retryable=True)
        if host not in config["allowed_hosts"]:
            if bad := [a for a in addresses if not is_public(a)]:
                # Refuse if any answer is internal: which one a connection would use is not ours to pick.
                raise Refused(f"{host} resolves to a non-public address ({bad[0]})")
        host_header = host if target.port is None else f"{host}:{target.port}"
        extensions = {"sni_hostname": host} if target.scheme == "https" else {}
        return target.copy_with(host=addresses[0].split("%", 1)[0]), {"Host": host_header}, extensions

    async def send(self, config: dict, outgoing: Outgoing, http: httpx.AsyncClient) -> ProviderResult:
        url = outgoing.to or config.get("url")
        if not url:
            raise ConfigError("config.url is required when the address is empty", field="config.url")
        body = json.dumps({"delivery_id": outgoing.delivery_id, "workspace_id": outgoing.workspace_id,
                           "profile_id": outgoing.profile_id, "data": outgoing.content.data},
                          ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(self._clock()))
        headers = {"Content-Type": "application/json", "User-Agent": "Nudge-Webhook/1", "Connection": "close",
                   "X-Nudge-Delivery-Id": outgoing.delivery_id, "X-Nudge-Timestamp": timestamp,
                   "X-Nudge-Signature": signature(config["secret"], timestamp, body)}
        for _ in range(MAX_REDIRECTS + 1):
            target, host_header, extensions = await self.pinned(url, config)
            try:
                response = await http.post(target, content=body, headers={**headers, **host_header},
                                           extensions=extensions, timeout=config["timeout_seconds"],
                                           follow_redirects=False)
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
