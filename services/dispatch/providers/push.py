"""Mobile push: FCM HTTP v1 (Android and FCM web) and APNs token-based auth (iOS).

FCM (firebase.google.com/docs/reference/fcm/rest/v1/projects.messages): POST
{endpoint}/v1/projects/{project_id}/messages:send, Authorization: Bearer <OAuth2 access token>,
{"message": {"token", "notification": {"title", "body"}, "data": {string: string}, ...}};
errors carry google.firebase.fcm.v1.FcmError errorCode (UNREGISTERED, INVALID_ARGUMENT, ...).
The access token comes from config (minted from the service account by whoever stores it).

APNs (developer.apple.com "Sending notification requests to APNs"): POST
{endpoint}/3/device/{token} with apns-topic, apns-push-type, apns-priority, apns-id and
authorization: bearer <ES256 JWT {iss: team_id, iat}, header kid: key_id>; errors are
{"reason": "BadDeviceToken" | "Unregistered" | ...}. Apple only speaks HTTP/2, so for an https
endpoint this adapter uses the shared client's HTTP/2 sibling (the same egress guard); a plain
http:// endpoint (a local test server) goes over the shared HTTP/1.1 client.
"""

import json
import hashlib
import time
import uuid

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from services.dispatch.channels import PUSH, ConfigError, Outgoing, ProviderError, ProviderResult
from services.dispatch.egress import EgressClient
from services.dispatch.providers import (EndpointAdapter, json_or_empty, required, status_error, timeout_of,
                                         transport_error)

FCM_ENDPOINT = "https://fcm.googleapis.com"
APNS_ENDPOINT = "https://api.push.apple.com"
FCM_UNREACHABLE = {"UNREGISTERED", "SENDER_ID_MISMATCH"}
APNS_UNREACHABLE = {"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"}
APNS_TOKEN_LIFETIME = 50 * 60  # Apple refuses tokens older than 1 h and refreshes more often than every 20 min


def _endpoint(config: dict, default: str) -> str:
    endpoint = (config.get("endpoint") or default).rstrip("/")
    if not endpoint.startswith(("https://", "http://")):
        raise ConfigError("config.endpoint must be an http(s) URL", field="config.endpoint")
    return endpoint


def string_data(outgoing: Outgoing) -> dict[str, str]:
    """FCM data values must be strings; the delivery id rides along for open tracking."""
    content = outgoing.content
    data = {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in content.data.items()}
    if content.url:
        data["url"] = content.url
    data["nudge_delivery_id"] = outgoing.delivery_id
    return data


class FcmAdapter(EndpointAdapter):
    channel, name, idempotent = PUSH, "fcm", False  # FCM v1 has no idempotency key

    def check_config(self, config: dict) -> dict:
        required(config, "project_id", "access_token")
        return {**config, "endpoint": _endpoint(config, FCM_ENDPOINT), "timeout_seconds": timeout_of(config)}

    async def send(self, config: dict, outgoing: Outgoing, http: EgressClient) -> ProviderResult:
        content = outgoing.content
        message = {"token": outgoing.to, "notification": {"title": content.subject or "", "body": content.body},
                   "data": string_data(outgoing)}
        if outgoing.platform == "web" and content.url:
            message["webpush"] = {"fcm_options": {"link": content.url}}
        url = f"{config['endpoint']}/v1/projects/{config['project_id']}/messages:send"
        try:
            response = await http.post(url, json={"message": message}, timeout=config["timeout_seconds"],
                                       headers={"Authorization": f"Bearer {config['access_token']}"})
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from None
        answer = json_or_empty(response)
        if response.status_code == 200:
            return ProviderResult(provider=self.name, provider_message_id=answer.get("name", ""))
        error = answer.get("error") or {}
        codes = {d.get("errorCode") for d in error.get("details", []) if isinstance(d, dict)} - {None}
        text = f"fcm: HTTP {response.status_code} {error.get('status', '')} {error.get('message', '')}".rstrip()
        # INVALID_ARGUMENT also covers a malformed payload; only a bad token means "unreachable".
        invalid = "INVALID_ARGUMENT" in codes or error.get("status") == "INVALID_ARGUMENT"
        token_invalid = invalid and "token" in error.get("message", "").lower()
        if codes & FCM_UNREACHABLE or token_invalid:
            raise ProviderError(text, unreachable=True)
        raise status_error(self.name, response.status_code, f"{error.get('status', '')} {error.get('message', '')}".strip())


class ApnsAdapter(EndpointAdapter):
    # apns-id names the notification in Apple's answers; Apple does not drop a repeat of it.
    channel, name, idempotent = PUSH, "apns", False

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], tuple[float, str]] = {}

    def check_config(self, config: dict) -> dict:
        required(config, "team_id", "key_id", "private_key", "bundle_id")
        try:
            load_pem_private_key(config["private_key"].encode(), password=None)
        except (ValueError, TypeError):
            raise ConfigError("config.private_key must be the .p8 key (PEM)", field="config.private_key") from None
        priority = str(config.get("priority", "10"))
        if priority not in ("5", "10"):
            raise ConfigError("config.priority must be 5 or 10", field="config.priority")
        return {**config, "endpoint": _endpoint(config, APNS_ENDPOINT), "priority": priority,
                "timeout_seconds": timeout_of(config)}

    def provider_token(self, config: dict) -> str:
        """One JWT per key, reused for 50 minutes, as Apple asks. Cached by the private key
        itself too: team and key ids are public, so another workspace naming them must not
        get this workspace's token."""
        key = self._token_key(config)
        issued, token = self._tokens.get(key, (0.0, ""))
        now = time.time()
        if now - issued > APNS_TOKEN_LIFETIME:
            token = jwt.encode({"iss": config["team_id"], "iat": int(now)}, config["private_key"],
                               algorithm="ES256", headers={"kid": config["key_id"]})
            self._tokens[key] = (now, token)
        return token

    @staticmethod
    def _token_key(config: dict) -> tuple:
        return config["team_id"], config["key_id"], hashlib.sha256(config["private_key"].encode()).hexdigest()

    @staticmethod
    def _client(config: dict, shared: EgressClient) -> EgressClient:
        return shared.http2() if config["endpoint"].startswith("https://") else shared

    async def send(self, config: dict, outgoing: Outgoing, http: EgressClient) -> ProviderResult:
        content = outgoing.content
        body = {**content.data, **({"url": content.url} if content.url else {}),
                "nudge_delivery_id": outgoing.delivery_id,
                "aps": {"alert": {"title": content.subject or "", "body": content.body}, "sound": "default"}}
        apns_id = str(apns_id_for(outgoing.delivery_id))
        headers = {"authorization": f"bearer {self.provider_token(config)}", "apns-topic": config["bundle_id"],
                   "apns-push-type": "alert", "apns-priority": config["priority"], "apns-id": apns_id}
        url = f"{config['endpoint']}/3/device/{outgoing.to}"
        try:
            response = await self._client(config, http).post(url, json=body, headers=headers,
                                                              timeout=config["timeout_seconds"])
        except httpx.HTTPError as exc:
            raise transport_error(self.name, exc) from None
        if response.status_code == 200:
            return ProviderResult(provider=self.name, provider_message_id=response.headers.get("apns-id", apns_id))
        reason = json_or_empty(response).get("reason", "")
        if response.status_code == 410 or reason in APNS_UNREACHABLE:
            raise ProviderError(f"apns: HTTP {response.status_code} {reason}", unreachable=True)
        if reason == "ExpiredProviderToken":
            self._tokens.pop(self._token_key(config), None)  # the retry signs a fresh one
            raise ProviderError("apns: provider token expired", retryable=True)
        raise status_error(self.name, response.status_code, reason)


def apns_id_for(delivery_id: str) -> uuid.UUID:
    """The delivery id itself when it is a UUID, else a stable UUID derived from it."""
    try:
        return uuid.UUID(delivery_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"nudge:delivery:{delivery_id}")
