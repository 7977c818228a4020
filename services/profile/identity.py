"""Identity rules: which identifiers a call carries, how they are normalized, which profile
survives a merge and how traits and consent combine. Pure functions, no I/O, no clock."""

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import phonenumbers

from kit.errors import InvalidArgument
from services.profile.calls import Call

USER_ID, ANONYMOUS_ID, EMAIL, PHONE, DEVICE_TOKEN = (
    "user_id", "anonymous_id", "email", "phone", "device_token")
IDENTIFIER_TYPES = (USER_ID, ANONYMOUS_ID, EMAIL, PHONE, DEVICE_TOKEN)
# userId and anonymousId always name one profile; these become unique by workspace policy.
POLICY_TYPES = (EMAIL, PHONE, DEVICE_TOKEN)
DEFAULT_UNIQUE: tuple[str, ...] = ()

CHANNELS = ("email", "sms", "kakao", "push", "webpush", "inapp", "webhook")
# Consent purposes (see the README's consent model):
#   channel:<c>  non-transactional messages on the channel (newsletters, notices); a
#                transactional message (receipt, shipping) never needs it
#   ads:<c>      advertising on the channel (정보통신망법 §50: opt-in, per medium)
#   night_advertising  advertising 21:00–08:00 KST (§50 ③), beside the ads:<c> consents
# `advertising` is a shorthand for ads:<c> on every channel, expanded when recorded.
# `marketing` was never enforced and is gone: ads:<c> is the consent that allows advertising.
NIGHT_ADVERTISING, ADVERTISING = "night_advertising", "advertising"
PURPOSES = (NIGHT_ADVERTISING,)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(raw: object, field_name: str) -> str:
    if not isinstance(raw, str) or not _EMAIL.match(raw.strip()):
        raise InvalidArgument(f"{field_name}: not an email address", field=field_name)
    return raw.strip().lower()


def normalize_phone(raw: object, region: str, field_name: str) -> str:
    """E.164; numbers without a country code are read as numbers of `region`."""
    if not isinstance(raw, (str, int)):
        raise InvalidArgument(f"{field_name}: expected a phone number string", field=field_name)
    try:
        number = phonenumbers.parse(str(raw), region)
    except phonenumbers.NumberParseException as err:
        raise InvalidArgument(f"{field_name}: {err}", field=field_name) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidArgument(f"{field_name}: not a valid phone number", field=field_name)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize(identifier_type: str, value: str, region: str) -> str:
    """A lookup value in the form it is stored."""
    if identifier_type not in IDENTIFIER_TYPES:
        raise InvalidArgument(f"identifier type must be one of {', '.join(IDENTIFIER_TYPES)}",
                              field="identifier_type")
    if identifier_type == EMAIL:
        return normalize_email(value, "email")
    if identifier_type == PHONE:
        return normalize_phone(value, region, "phone")
    return value


@dataclass
class Identifiers:
    user_id: str = ""
    anonymous_id: str = ""
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    device_tokens: list[str] = field(default_factory=list)

    def pairs(self) -> list[tuple[str, str]]:
        pairs = [(USER_ID, self.user_id), (ANONYMOUS_ID, self.anonymous_id)]
        pairs += [(EMAIL, v) for v in self.emails] + [(PHONE, v) for v in self.phones]
        pairs += [(DEVICE_TOKEN, v) for v in self.device_tokens]
        return [(t, v) for t, v in pairs if v]

    def values(self, identifier_type: str) -> list[str]:
        return [v for t, v in self.pairs() if t == identifier_type]


def identifiers_of(call: Call, region: str) -> Identifiers:
    """userId / anonymousId, email and phone from traits (identify) or context.traits,
    and the device token from context.device.token."""
    ids = Identifiers(user_id=call.user_id, anonymous_id=call.anonymous_id)
    sources = [("context.traits", call.context.get("traits"))]
    if call.type == "identify":
        sources.insert(0, ("traits", call.traits))
    for prefix, traits in sources:
        if not isinstance(traits, dict):
            continue
        if traits.get("email") not in (None, ""):
            _add(ids.emails, normalize_email(traits["email"], f"{prefix}.email"))
        if traits.get("phone") not in (None, ""):
            _add(ids.phones, normalize_phone(traits["phone"], region, f"{prefix}.phone"))
    device = call.context.get("device")
    if isinstance(device, dict) and device.get("token"):
        if not isinstance(device["token"], str):
            raise InvalidArgument("context.device.token: expected a string", field="context.device.token")
        _add(ids.device_tokens, device["token"])
    return ids


def _add(values: list[str], value: str) -> None:
    if value not in values:
        values.append(value)


@dataclass(frozen=True)
class MergeCandidate:
    id: str
    has_user_id: bool
    created_at: datetime


def choose_survivor(a: MergeCandidate, b: MergeCandidate) -> tuple[str, str]:
    """(survivor, merged): a known profile outlives an anonymous one, then the older one."""
    key_a = (not a.has_user_id, a.created_at, a.id)
    key_b = (not b.has_user_id, b.created_at, b.id)
    return (a.id, b.id) if key_a <= key_b else (b.id, a.id)


def apply_traits(traits: dict, times: dict, incoming: dict, at: datetime) -> dict:
    """Sets each incoming trait unless a newer value is already held (event time decides,
    so late or replayed calls never overwrite fresher data). Returns what changed."""
    changed = {}
    at_stamp = stamp(at)
    for key, value in incoming.items():
        if key in times and times[key] > at_stamp:
            continue
        times[key] = at_stamp
        if traits.get(key, _MISSING) != value:
            traits[key] = value
            changed[key] = value
    return changed


def merge_traits(survivor: tuple[dict, dict], merged: tuple[dict, dict]) -> tuple[dict, dict]:
    """Trait conflicts resolve by recency: the value set at the later time wins."""
    traits, times = dict(survivor[0]), dict(survivor[1])
    for key, value in merged[0].items():
        stamp = merged[1].get(key, "")
        if key not in traits or stamp > times.get(key, ""):
            traits[key] = value
            times[key] = stamp
    return traits, times


_MISSING = object()


def stamp(at: datetime) -> str:
    """A fixed-width UTC form, so held times compare correctly as strings."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate_consent_purpose(purpose: str, field_name: str) -> str:
    if purpose in PURPOSES:
        return purpose
    kind, _, channel = purpose.partition(":")
    if kind in ("channel", "ads") and channel in CHANNELS:
        return purpose
    hint = "; advertising consent is ads:<channel>" if purpose == "marketing" else ""
    raise InvalidArgument(
        f"{field_name}: unknown consent purpose {purpose!r}; expected {', '.join(PURPOSES)}, "
        f"channel:<{'|'.join(CHANNELS)}> or ads:<{'|'.join(CHANNELS)}>{hint}", field=field_name)


def expand_purpose(purpose: str) -> list[str]:
    """The purposes one recorded change stands for: `advertising` is ads:<c> on every channel."""
    return [f"ads:{c}" for c in CHANNELS] if purpose == ADVERTISING else [purpose]


def validate_moment(at: datetime, field_name: str) -> datetime:
    if not 1970 <= at.year < 2100:
        raise InvalidArgument(f"{field_name}: expected a time between 1970 and 2099", field=field_name)
    return at


def apply_consent(consent: dict, purpose: str, granted: bool, at: datetime, source: str) -> bool:
    """Records a consent change unless a later one is already held. Returns whether it applied."""
    held = consent.get(purpose)
    if held and held["at"] > stamp(at):
        return False
    consent[purpose] = {"granted": granted, "at": stamp(at), "source": source}
    return True


def merge_consent(survivor: dict, merged: dict) -> dict:
    result = dict(survivor)
    for purpose, state in merged.items():
        if purpose not in result or state["at"] > result[purpose]["at"]:
            result[purpose] = state
    return result


def validate_policy(unique_identifiers: list[str]) -> list[str]:
    for i, identifier_type in enumerate(unique_identifiers):
        if identifier_type not in POLICY_TYPES:
            raise InvalidArgument(
                f"unique_identifiers[{i}]: {identifier_type!r} is not one of {', '.join(POLICY_TYPES)}",
                field=f"unique_identifiers[{i}]")
    return sorted(set(unique_identifiers))
