"""Whether and where a person can be reached on a channel: the address, and the consent
that allows the message (kept as evidence with the delivery). Pure."""

from dataclasses import dataclass

import orjson

from services.dispatch.channels import (ALIMTALK, EMAIL, FRIENDTALK, INAPP, PUSH, SMS, WEBHOOK, WEBPUSH)
from services.dispatch.profiles import Person

# The profile service records consent per channel family: Kakao covers AlimTalk and FriendTalk.
CONSENT_CHANNEL = {EMAIL: "email", SMS: "sms", ALIMTALK: "kakao", FRIENDTALK: "kakao", PUSH: "push",
                   WEBPUSH: "webpush", INAPP: "inapp", WEBHOOK: "webhook"}
NIGHT_ADVERTISING = "night_advertising"


def channel_purpose(channel: str) -> str:
    """Non-transactional messages on the channel (what a newsletter unsubscribe withdraws)."""
    return f"channel:{CONSENT_CHANNEL[channel]}"


def ads_purpose(channel: str) -> str:
    """Advertising on the channel (what an advertisement's unsubscribe withdraws)."""
    return f"ads:{CONSENT_CHANNEL[channel]}"


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


def check_consent(person: Person, channel: str, advertising: bool, transactional: bool = False) -> ConsentCheck:
    """Advertising needs ads:<channel> granted (opt-in per medium, 정보통신망법 §50) and the
    channel not withdrawn; other non-transactional messages need the channel not withdrawn;
    a transactional one (receipt, shipping notice) is never blocked by an opt-out."""
    purpose = channel_purpose(channel)
    channel_consent = person.consent.get(purpose)
    evidence = {purpose: channel_consent} if channel_consent else {}
    if transactional and not advertising:
        return ConsentCheck(True, evidence)
    if channel_consent and not channel_consent["granted"]:
        return ConsentCheck(False, evidence, f"consent:{purpose}", f"{purpose} consent is withdrawn")
    if advertising:
        needed = ads_purpose(channel)
        state = person.consent.get(needed)
        if not state or not state["granted"]:
            return ConsentCheck(False, evidence, f"consent:{needed}",
                                f"advertising needs {needed} consent, which is "
                                f"{'withdrawn' if state else 'not given'}")
        evidence[needed] = state
        if night := person.consent.get(NIGHT_ADVERTISING):
            evidence[NIGHT_ADVERTISING] = night
    return ConsentCheck(True, evidence)


def night_consent(person: Person) -> bool:
    state = person.consent.get(NIGHT_ADVERTISING)
    return bool(state and state["granted"])
