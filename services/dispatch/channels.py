"""What a send is made of, shared by the pipeline and the provider adapters. Pure."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from services.dispatch.egress import EgressClient, EgressGuard

# The names are the rule language's (shared with journeys); re-exported so dispatch's modules
# keep one import for a send's names and types.
from rules.channels import ALIMTALK, CHANNELS, EMAIL, FRIENDTALK, INAPP, PUSH, SMS, WEBHOOK, WEBPUSH  # noqa: F401


SECRET_HINTS = ("secret", "password", "token", "key")


def masked_config(config: dict) -> dict:
    """A channel config as answers show it and as it is stored in the clear: credentials
    (fields named like one) replaced by dots; the whole config is kept sealed beside it."""
    return {k: ("••••" if any(h in k.lower() for h in SECRET_HINTS) and v else v) for k, v in config.items()}


@dataclass(frozen=True)
class Content:
    """A rendered message, ready for one channel's provider."""
    body: str = ""                       # text (SMS, Kakao, push body, in-app, email text part)
    subject: str | None = None           # email subject, LMS/MMS title, push / in-app title
    html: str | None = None              # email HTML part
    sms_type: str | None = None          # SMS | LMS | MMS, decided by the body's EUC-KR length / media
    media_urls: tuple[str, ...] = ()     # MMS images
    template_code: str | None = None     # AlimTalk: the pre-approved template
    variables: dict = field(default_factory=dict)  # AlimTalk template variables
    buttons: tuple[dict, ...] = ()       # Kakao buttons {"name", "type", "url"}
    data: dict = field(default_factory=dict)       # push data / webhook JSON body
    url: str | None = None               # push / web push / in-app click-through


@dataclass(frozen=True)
class Outgoing:
    """One message to one address on one channel."""
    delivery_id: str                     # stable per send attempt: providers deduplicate on it
    workspace_id: str
    profile_id: str
    channel: str
    to: str                              # email address, E.164 phone, device token, subscription JSON, URL
    content: Content
    advertising: bool = False
    platform: str | None = None          # push: android (FCM) | ios (APNs)


@dataclass(frozen=True)
class ProviderResult:
    provider: str                        # which adapter sent it (fcm, apns, smtp, …)
    provider_message_id: str             # the provider's id, for receipts
    status: str = "accepted"             # accepted | delivered


class ProviderError(Exception):
    """A send the provider did not take. `retryable`: try again (timeouts, 429, 5xx);
    `unreachable`: this person cannot be reached on this channel (bad number, no Kakao
    account, expired token), so the next channel in the fallback order should be tried;
    `ambiguous`: the request may have reached the provider (a timeout or a dropped connection
    after it was written), so it may have been sent: only a provider that drops repeats of
    the same request (`Adapter.idempotent`) may be asked again."""

    def __init__(self, message: str, retryable: bool = False, unreachable: bool = False,
                 ambiguous: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.unreachable = unreachable
        self.ambiguous = ambiguous


class ConfigError(ValueError):
    """A workspace's provider configuration is missing or malformed; `field` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class Adapter(Protocol):
    """One provider behind one channel. `config` is the workspace's channel configuration
    (endpoint, credentials, sender), already validated by `check_config`. `idempotent`: the
    provider drops a repeat of the same request (an idempotency key derived from the delivery
    id), so a try whose outcome is unknown may be sent again. `http` connects only where the
    egress guard allows (`http.guard` checks an address for a connection made otherwise)."""
    channel: str
    name: str
    idempotent: bool

    def check_config(self, config: dict) -> dict: ...  # normalized config, or ConfigError

    # At save, what every send will check of the addresses in the config (ConfigError naming the field).
    async def check_target(self, config: dict, guard: "EgressGuard") -> None: ...

    async def send(self, config: dict, outgoing: Outgoing, http: "EgressClient") -> ProviderResult: ...
