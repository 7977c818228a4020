"""Channel → provider name → adapter. In-app messages are not here: the dispatch service stores
them in its own database and the SDK fetches them."""

from services.dispatch.channels import (ALIMTALK, EMAIL, FRIENDTALK, PUSH, SMS, WEBHOOK, WEBPUSH, Adapter,
                                        ConfigError)
from services.dispatch.providers.email import SmtpAdapter
from services.dispatch.providers.kakao import AlimTalkAdapter, BrandMessageAdapter
from services.dispatch.providers.push import ApnsAdapter, FcmAdapter
from services.dispatch.providers.sms import NhnSmsAdapter
from services.dispatch.providers.webhook import WebhookAdapter
from services.dispatch.providers.webpush import WebPushAdapter

ADAPTERS: dict[str, dict[str, Adapter]] = {
    EMAIL: {"smtp": SmtpAdapter()},
    SMS: {"nhn_sms": NhnSmsAdapter()},
    ALIMTALK: {"nhn_kakao": AlimTalkAdapter()},
    FRIENDTALK: {"nhn_kakao": BrandMessageAdapter()},
    PUSH: {"fcm": FcmAdapter(), "apns": ApnsAdapter()},
    WEBPUSH: {"webpush": WebPushAdapter()},
    WEBHOOK: {"webhook": WebhookAdapter()},
}


def adapter_for(channel: str, provider_name: str) -> Adapter:
    try:
        return ADAPTERS[channel][provider_name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS.get(channel, {}))) or "none"
        raise ConfigError(f"no provider {provider_name!r} for channel {channel!r} (known: {known})",
                          field="config.provider") from None

