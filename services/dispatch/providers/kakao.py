"""KakaoTalk Bizmessage through NHN Cloud: AlimTalk (informational, pre-approved templates) and
brand messages (advertising; NHN's replacement for FriendTalk, whose API now answers -9992).

Wire formats (docs.nhncloud.com → Notification > KakaoTalk Bizmessage):
- AlimTalk API v2.3: POST {endpoint}/alimtalk/v2.3/appkeys/{appkey}/messages, header X-Secret-Key,
  {"senderKey", "templateCode", "recipientList": [{"recipientNo", "templateParameter",
  "resendParameter", "recipientGroupingKey"}]}.
- Brand message API v1.0: POST {endpoint}/brand-message/v1.0/appkeys/{appkey}/freestyle-messages,
  {"senderKey", "chatBubbleType": "TEXT"|"IMAGE", "content", "image", "buttons": [{"name", "type",
  "linkMo", "linkPc"}], "recipientList": [{"recipientNo", "targeting", "resendParameter", ...}]}.
Both answer {"header": {...}, "message": {"requestId", "sendResults": [{"recipientSeq",
"resultCode", "resultMessage"}]}}. Codes from Notification > KakaoTalk Bizmessage > Error Codes.

NHN's own SMS fallback is switched off (isResend false): the dispatch pipeline falls back to
our SMS channel itself, and both would otherwise send. Note that Kakao decides "no KakaoTalk
account / channel blocked" (3018) after accepting the request, so that code arrives here only
when NHN reports it synchronously; later it is a delivery receipt.
"""

import httpx

from services.dispatch.channels import ALIMTALK, FRIENDTALK, ConfigError, Outgoing, ProviderError, ProviderResult
from services.dispatch.providers import EndpointAdapter
from services.dispatch.providers.sms import check_recipient, nhn_config, nhn_post, recipient_number

KAKAO_ENDPOINT = "https://api-alimtalk.cloud.toast.com"
KAKAO_UNREACHABLE = {
    -5000: "recipient number invalid", -4019: "recipient number invalid", 1020: "recipient number invalid",
    3008: "phone number error", 3018: "no KakaoTalk account, or the channel is blocked",
    -3301: "recipient unsubscribed from brand messages",
}
DUPLICATE = -1005  # same X-NC-API-IDEMPOTENCY-KEY within 10 minutes: the first request got through
TARGETING = ("I", "M", "N")


async def _send(provider: str, http: httpx.AsyncClient, url: str, config: dict, outgoing: Outgoing,
                payload: dict) -> ProviderResult:
    answer = await nhn_post(provider, http, url, config, payload, KAKAO_UNREACHABLE,
                            # NHN drops a repeat of this key, so a retry after a timeout cannot double-send.
                            {"X-NC-API-IDEMPOTENCY-KEY": outgoing.delivery_id}, accepted=frozenset({DUPLICATE}))
    if answer["header"].get("resultCode") == DUPLICATE:
        return ProviderResult(provider=provider, provider_message_id=f"duplicate:{outgoing.delivery_id}")
    message = answer.get("message") or {}
    results = message.get("sendResults") or [{}]
    check_recipient(provider, results[0], KAKAO_UNREACHABLE)
    return ProviderResult(provider=provider,
                          provider_message_id=f"{message.get('requestId', '')}:{results[0].get('recipientSeq', '')}")


def _recipient(outgoing: Outgoing) -> dict:
    number = recipient_number(outgoing.to)
    return {"recipientNo": number.get("recipientNo") or number["internationalRecipientNo"],
            "resendParameter": {"isResend": False}, "recipientGroupingKey": outgoing.delivery_id}


class AlimTalkAdapter(EndpointAdapter):
    channel, name, idempotent = ALIMTALK, "nhn_kakao", True  # X-NC-API-IDEMPOTENCY-KEY

    def check_config(self, config: dict) -> dict:
        return nhn_config(config, KAKAO_ENDPOINT, "sender_key")

    async def send(self, config: dict, outgoing: Outgoing, http: httpx.AsyncClient) -> ProviderResult:
        content = outgoing.content
        if not content.template_code:
            raise ProviderError("nhn_kakao: AlimTalk needs content.template_code (an approved template)")
        recipient = {**_recipient(outgoing),
                     "templateParameter": {str(k): str(v) for k, v in content.variables.items()}}
        payload = {"senderKey": config["sender_key"], "templateCode": content.template_code,
                   "recipientList": [recipient]}
        url = f"{config['endpoint']}/alimtalk/v2.3/appkeys/{config['app_key']}/messages"
        return await _send(self.name, http, url, config, outgoing, payload)


class BrandMessageAdapter(EndpointAdapter):
    """The friendtalk channel: free-form Kakao messages, sent as NHN brand messages."""
    channel, name, idempotent = FRIENDTALK, "nhn_kakao", True  # X-NC-API-IDEMPOTENCY-KEY

    def check_config(self, config: dict) -> dict:
        config = nhn_config(config, KAKAO_ENDPOINT, "sender_key")
        targeting = config.get("targeting", "I")
        if targeting not in TARGETING:
            raise ConfigError("config.targeting must be I, M or N", field="config.targeting")
        return {**config, "targeting": targeting}

    async def send(self, config: dict, outgoing: Outgoing, http: httpx.AsyncClient) -> ProviderResult:
        content = outgoing.content
        payload = {"senderKey": config["sender_key"], "chatBubbleType": "TEXT", "content": content.body,
                   "recipientList": [{**_recipient(outgoing), "targeting": config["targeting"]}]}
        if content.media_urls:
            # Kakao shows only images uploaded through NHN's image API; the URL is that upload's URL.
            payload["chatBubbleType"] = "IMAGE"
            payload["image"] = {"imageUrl": content.media_urls[0], **({"imageLink": content.url} if content.url else {})}
        if content.buttons:
            payload["buttons"] = [_button(b) for b in content.buttons]
        url = f"{config['endpoint']}/brand-message/v1.0/appkeys/{config['app_key']}/freestyle-messages"
        return await _send(self.name, http, url, config, outgoing, payload)


def _button(button: dict) -> dict:
    kind = button.get("type", "WL")
    out = {"name": button["name"], "type": kind}
    if kind == "WL" and button.get("url"):
        out.update(linkMo=button["url"], linkPc=button["url"])
    return out
