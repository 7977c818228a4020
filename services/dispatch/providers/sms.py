"""SMS/LMS/MMS through NHN Cloud Notification SMS API v3.0.

Wire format (docs.nhncloud.com → Notification > SMS > API v3.0 Guide):
POST {endpoint}/sms/v3.0/appKeys/{appKey}/sender/{sms|mms|ad-sms|ad-mms}, header X-Secret-Key,
body {"body", "sendNo", "title" (LMS/MMS), "recipientList": [{"recipientNo" |
"internationalRecipientNo", "recipientGroupingKey"}]}; answer {"header": {"isSuccessful",
"resultCode", "resultMessage"}, "body": {"data": {"requestId", "sendResultList":
[{"recipientNo", "resultCode", "resultMessage", "recipientSeq"}]}}}. Result codes from
Notification > SMS > Result Code. The shared NHN call is here; kakao.py uses it too.

MMS images: each of `media_urls` is fetched through the egress guard (egress.py: every address
public after DNS and on each redirect, unless the operator allows it; `media_allowed_hosts`, when
given, narrows the hosts it may come from), must be a JPEG of at most 300 KB, and is uploaded first: POST
{endpoint}/sms/v3.0/appKeys/{appKey}/attachfile/binaryUpload, {"fileName" (.jpg/.jpeg, at most
45 characters), "createUser", "fileBody": base64}, answer body.data.fileId; the send carries
"attachFileIdList": [fileId, ...]. None of this is a send: its failures are never ambiguous.
"""

import base64
import posixpath
from urllib.parse import unquote, urljoin

import httpx

from services.dispatch.channels import SMS, ConfigError, Outgoing, ProviderError, ProviderResult
from services.dispatch.egress import EgressClient, EgressGuard, EgressRefused, url_target
from services.dispatch.providers import (EndpointAdapter, check_hosts, host_list, json_or_empty, narrowed, refused_as,
                                         required, status_error, timeout_of, transport_error)

SMS_ENDPOINT = "https://api-sms.cloud.toast.com"
SMS_UNREACHABLE = {-2018: "recipient number missing", -2019: "recipient number invalid",
                   -6001: "recipient refused messages (080 opt-out)"}
NHN_RETRYABLE = {-9999, -2021}  # system error, queue insert failure on their side
MAX_IMAGE_BYTES = 300 * 1024  # NHN's limit for an MMS attachment
MAX_REDIRECTS = 3


def recipient_number(to: str) -> dict:
    """NHN wants Korean numbers in domestic form (01012345678); others with the country code."""
    digits = to.replace("-", "").replace(" ", "")
    if digits.startswith("+82"):
        return {"recipientNo": "0" + digits[3:].lstrip("0")}
    if digits.startswith("+"):
        return {"internationalRecipientNo": digits[1:]}
    return {"recipientNo": digits}


async def nhn_post(provider: str, http: httpx.AsyncClient, url: str, config: dict, payload: dict,
                   unreachable: dict[int, str], extra_headers: dict | None = None,
                   accepted: frozenset[int] = frozenset()) -> dict:
    """POST one NHN Notification request; returns the parsed answer (also when its result code
    is in `accepted`) or raises ProviderError."""
    headers = {"X-Secret-Key": config["secret_key"], "Content-Type": "application/json;charset=UTF-8",
               **(extra_headers or {})}
    try:
        response = await http.post(url, json=payload, headers=headers, timeout=config["timeout_seconds"],
                                   follow_redirects=False)
    except httpx.HTTPError as exc:
        raise transport_error(provider, exc) from None
    answer = json_or_empty(response)
    header = answer.get("header") or {}
    if not header:
        raise status_error(provider, response.status_code, "no NHN result header")
    if not header.get("isSuccessful") and header.get("resultCode") not in accepted:
        raise _nhn_error(provider, header.get("resultCode"), header.get("resultMessage"), unreachable,
                         response.status_code)
    return answer


def check_recipient(provider: str, result: dict, unreachable: dict[int, str]) -> None:
    code = result.get("resultCode", 0)
    if code not in (0, 1000, None):  # Kakao reports delivery success as 1000
        raise _nhn_error(provider, code, result.get("resultMessage"), unreachable, 200)


def _nhn_error(provider: str, code, message, unreachable: dict[int, str], status: int) -> ProviderError:
    text = f"{provider}: NHN result {code} {message or ''}".rstrip()
    if code in unreachable:
        return ProviderError(f"{text} ({unreachable[code]})", unreachable=True)
    return ProviderError(text, retryable=code in NHN_RETRYABLE or status == 429 or status >= 500)


def nhn_config(config: dict, default_endpoint: str, *extra: str) -> dict:
    required(config, "app_key", "secret_key", *extra)
    endpoint = (config.get("endpoint") or default_endpoint).rstrip("/")
    if not endpoint.startswith(("https://", "http://")):
        raise ConfigError("config.endpoint must be an http(s) URL", field="config.endpoint")
    return {**config, "endpoint": endpoint, "timeout_seconds": timeout_of(config)}


def sms_type_of(outgoing: Outgoing) -> str:
    content = outgoing.content
    if content.sms_type:
        return content.sms_type.upper()
    # The 90-byte SMS limit is counted in EUC-KR, where a Hangul syllable takes two bytes.
    return "LMS" if len(content.body.encode("euc-kr", errors="replace")) > 90 else "SMS"


class NhnSmsAdapter(EndpointAdapter):
    # NHN's SMS API (v3.0) takes no idempotency key: a timed-out request is not sent again.
    channel, name, idempotent = SMS, "nhn_sms", False

    def check_config(self, config: dict) -> dict:
        config = nhn_config(config, SMS_ENDPOINT, "send_no")
        return {**config, "send_no": str(config["send_no"]).replace("-", ""),
                "media_allowed_hosts": host_list(config, "media_allowed_hosts")}

    async def check_target(self, config: dict, guard: EgressGuard) -> None:
        await super().check_target(config, guard)
        with refused_as("config.media_allowed_hosts"):
            await check_hosts(guard, config.get("media_allowed_hosts", []), "config.media_allowed_hosts")

    async def send(self, config: dict, outgoing: Outgoing, http: EgressClient) -> ProviderResult:
        content, kind = outgoing.content, sms_type_of(outgoing)
        path = ("ad-" if outgoing.advertising else "") + ("sms" if kind == "SMS" else "mms")
        payload = {"body": content.body, "sendNo": config["send_no"],
                   # The grouping key lets receipts and support look the message up by our id.
                   "recipientList": [{**recipient_number(outgoing.to), "recipientGroupingKey": outgoing.delivery_id}]}
        if kind != "SMS":
            payload["title"] = content.subject or ""
        if kind == "MMS" and content.media_urls:
            payload["attachFileIdList"] = [await self._upload(config, http, url, i)
                                           for i, url in enumerate(content.media_urls)]
        url = f"{config['endpoint']}/sms/v3.0/appKeys/{config['app_key']}/sender/{path}"
        answer = await nhn_post(self.name, http, url, config, payload, SMS_UNREACHABLE)
        data = (answer.get("body") or {}).get("data") or {}
        results = data.get("sendResultList") or [{}]
        check_recipient(self.name, results[0], SMS_UNREACHABLE)
        message_id = f"{data.get('requestId', '')}:{results[0].get('recipientSeq', '')}"
        return ProviderResult(provider=self.name, provider_message_id=message_id)

    async def _upload(self, config: dict, http: EgressClient, url: str, index: int) -> int:
        """The image at `url`, uploaded to NHN: its file id."""
        url, image = await self._fetch(config, http, url)
        name = posixpath.basename(unquote(httpx.URL(url).path))  # named as where it was found
        if not name.lower().endswith((".jpg", ".jpeg")) or len(name) > 45:
            name = f"image{index + 1}.jpg"  # NHN takes .jpg / .jpeg names of at most 45 characters
        upload = f"{config['endpoint']}/sms/v3.0/appKeys/{config['app_key']}/attachfile/binaryUpload"
        try:
            answer = await nhn_post(self.name, http, upload, config, {
                "fileName": name, "createUser": "nudge", "fileBody": base64.b64encode(image).decode()}, {})
        except ProviderError as err:
            err.ambiguous = False  # an upload is not a send: trying it again sends nothing twice
            raise
        file_id = ((answer.get("body") or {}).get("data") or {}).get("fileId")
        if not isinstance(file_id, int):
            raise ProviderError("nhn_sms: the image upload answered no fileId", retryable=True)
        return file_id

    async def _fetch(self, config: dict, http: EgressClient, url: str) -> tuple[str, bytes]:
        """(the URL it was found at, the image), each hop through the egress guard and in
        media_allowed_hosts when the workspace lists any; a JPEG of at most 300 KB."""
        hosts = config.get("media_allowed_hosts", [])
        await check_hosts(http.guard, hosts, "config.media_allowed_hosts")  # a config saved before the check
        for _ in range(MAX_REDIRECTS + 1):
            try:
                narrowed(url_target(url)[0], hosts, "config.media_allowed_hosts")
                async with http.stream("GET", url, timeout=config["timeout_seconds"]) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise ProviderError(f"nhn_sms: MMS image {url}: HTTP {response.status_code}",
                                            retryable=response.status_code == 429 or response.status_code >= 500)
                    image = b""
                    async for chunk in response.aiter_bytes():
                        image += chunk
                        if len(image) > MAX_IMAGE_BYTES:
                            raise ProviderError(f"nhn_sms: MMS image {url} is over 300 KB (NHN's limit)")
            except EgressRefused as err:
                raise EgressRefused(f"MMS image {url}: {err.detail}") from None
            except httpx.HTTPError as exc:
                err = transport_error(self.name, exc)
                err.ambiguous = False  # fetching an image sends nothing
                raise err from None
            if not image.startswith(b"\xff\xd8\xff"):
                raise ProviderError(f"nhn_sms: MMS image {url} is not a JPEG (NHN takes .jpg / .jpeg only)")
            return url, image
        raise ProviderError(f"nhn_sms: MMS image {url}: more than {MAX_REDIRECTS} redirects")
