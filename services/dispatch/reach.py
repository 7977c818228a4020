"""Whether and where a person can be reached on a channel: the address, and the consent
that allows the message (kept as evidence with the delivery). Pure."""

from dataclasses import dataclass

import orjson

from services.dispatch.channels import (ALIMTALK, EMAIL, FRIENDTALK, INAPP, PUSH, SMS, WEBHOOK, WEBPUSH)
from services.dispatch.profiles import Person

# The profile service records consent per channel family: Kakao covers AlimTalk and FriendTalk.
CONSENT_CHANNEL = {EMAIL: "email", SMS: "sms", ALIMTALK: "kakao", FRIENDTALK: "kakao", PUSH: "push",
                   WEBPUSH: "webpush", INAPP: "inapp", WEBHOOK: "webhook"}


@dataclass(frozen=True)
class Address:
    to: str
    platform: str | None = None  # push: android | ios


@dataclass(frozen=True)
class ConsentCheck:
    allowed: bool
    evidence: dict              # purpose → {granted, at, source} that the decision rests on
    rule: str = ""              # consent:<purpose> when refused
    reason: str = ""


def address_of(person: Person, channel: str, config: dict) -> Address | None:
    """None when the profile holds no way to reach the person on this channel."""
    first = lambda kind: (person.identities.get(kind) or [None])[0]  # noqa: E731 - the oldest identity
    if channel == EMAIL:
        to = first("email") or person.traits.get("email")
    elif channel in (SMS, ALIMTALK, FRIENDTALK):
        to = first("phone")
    elif channel == PUSH:
        tokens = person.identities.get("device_token") or []
        platform = person.traits.get("device_platform", "android")
        return Address(tokens[-1], platform if platform in ("android", "ios") else "android") if tokens else None
    elif channel == WEBPUSH:
        subscription = person.traits.get("webpush_subscription")
        to = orjson.dumps(subscription).decode() if isinstance(subscription, dict) else None
    elif channel == INAPP:
        to = person.id
    else:  # webhook: the workspace's endpoint, about this person
        to = config.get("url")
    return Address(to) if to else None


def check_consent(person: Person, channel: str, advertising: bool) -> ConsentCheck:
    """Advertising needs the channel and advertising consent granted (opt-in, 정보통신망법
    §50); an informational message only needs the channel not to be withdrawn."""
    purpose = f"channel:{CONSENT_CHANNEL[channel]}"
    channel_consent = person.consent.get(purpose)
    evidence = {purpose: channel_consent} if channel_consent else {}
    if advertising:
        for needed in (purpose, "advertising"):
            state = person.consent.get(needed)
            if not state or not state["granted"]:
                return ConsentCheck(False, evidence, f"consent:{needed}",
                                    f"advertising needs {needed} consent, which is "
                                    f"{'withdrawn' if state else 'not given'}")
            evidence[needed] = state
        if night := person.consent.get("night_advertising"):
            evidence["night_advertising"] = night
        return ConsentCheck(True, evidence)
    if channel_consent and not channel_consent["granted"]:
        return ConsentCheck(False, evidence, f"consent:{purpose}", f"{purpose} consent is withdrawn")
    return ConsentCheck(True, evidence)


def night_consent(person: Person) -> bool:
    state = person.consent.get("night_advertising")
    return bool(state and state["granted"])
