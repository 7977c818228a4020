"""A dry run of a send for the journey simulator: which run it belongs to, its virtual
moment and its synthetic person, checked. Pure."""

from dataclasses import dataclass
from datetime import datetime

from kit.errors import InvalidArgument
from kit.transport import json_argument
from services.dispatch.profiles import Person
from services.dispatch.reach import CONSENT_CHANNEL, NIGHT_ADVERTISING

FIELD = "simulation.person_json"
_FAMILIES = tuple(dict.fromkeys(CONSENT_CHANNEL.values()))
# As the profile service names consent purposes (ConsentState.purpose); "advertising" is,
# as there, the shorthand for ads:<channel> on every channel.
PURPOSES = (NIGHT_ADVERTISING, *(f"channel:{c}" for c in _FAMILIES), *(f"ads:{c}" for c in _FAMILIES))
ADVERTISING = "advertising"
IDENTITIES = ("email", "phone", "device_token")  # the ones `reach.address_of` reads
MAX_ID = 200


@dataclass(frozen=True)
class Simulation:
    id: str
    at: datetime | None   # None: not given
    person_json: str


@dataclass(frozen=True)
class StoppedClock:
    """The simulation's moment: every decision of a simulated send is made at it."""
    moment: datetime

    def now(self) -> datetime:
        return self.moment


def person_of(simulation: Simulation, profile_id: str) -> Person:
    """The synthetic person, after checking the whole simulation; InvalidArgument names the
    field (simulation.id, simulation.at, simulation.person_json.<path>)."""
    if not 1 <= len(simulation.id) <= MAX_ID:
        _fail("simulation.id", f"expected 1 to {MAX_ID} characters")
    if simulation.at is None:
        _fail("simulation.at", "required: the virtual moment of the send")
    raw = json_argument(simulation.person_json, FIELD, empty="{}")
    if not isinstance(raw, dict):
        _fail(FIELD, "expected a JSON object with traits, identities, consents")
    if extra := sorted(set(raw) - {"traits", "identities", "consents"}):
        _fail(f"{FIELD}.{extra[0]}", "not a person field; expected traits, identities, consents")
    traits = raw.get("traits", {})
    if not isinstance(traits, dict):
        _fail(f"{FIELD}.traits", "expected an object")
    identities = _identities(raw.get("identities", {}), traits)
    consent = {}
    for purpose, state in _purposes(raw.get("consents", {})):
        checked = _consent(state, f"{FIELD}.consents.{purpose}", simulation.at)
        for each in ([f"ads:{c}" for c in _FAMILIES] if purpose == ADVERTISING else [purpose]):
            consent.setdefault(each, checked)  # a channel's own record wins over the shorthand
        if purpose != ADVERTISING:
            consent[purpose] = checked
    return Person(profile_id or f"simulation:{simulation.id}", traits, identities, consent)


def _identities(raw, traits: dict) -> dict[str, list[str]]:
    path = f"{FIELD}.identities"
    if not isinstance(raw, dict):
        _fail(path, f"expected an object of {', '.join(IDENTITIES)} → list of strings")
    identities = {}
    for kind, values in raw.items():
        if kind not in IDENTITIES:
            _fail(f"{path}.{kind}", f"not an identity type; expected {', '.join(IDENTITIES)}")
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            _fail(f"{path}.{kind}", "expected a list of non-empty strings, oldest first")
        identities[kind] = list(values)
    for kind in ("email", "phone"):  # an identify call makes these traits identities too
        value = traits.get(kind)
        if isinstance(value, str) and value and value not in identities.get(kind, []):
            identities.setdefault(kind, []).append(value)
    return identities


def _purposes(raw):
    if not isinstance(raw, dict):
        _fail(f"{FIELD}.consents", "expected an object of purpose → {granted, at?, source?}")
    for purpose, state in raw.items():
        if purpose not in PURPOSES and purpose != ADVERTISING:
            _fail(f"{FIELD}.consents.{purpose}", f"unknown consent purpose; expected one of {ADVERTISING}, "
                                                  f"{', '.join(PURPOSES)}")
        yield purpose, state


def _consent(raw, path: str, at: datetime) -> dict:
    """{granted, at, source} as the profile service gives it."""
    if not isinstance(raw, dict):
        _fail(path, "expected {granted, at?, source?}")
    if extra := sorted(set(raw) - {"granted", "at", "source"}):
        _fail(f"{path}.{extra[0]}", "not a consent field; expected granted, at, source")
    if not isinstance(raw.get("granted"), bool):
        _fail(f"{path}.granted", "required: true or false")
    given_at = raw.get("at", at.isoformat())
    try:
        if datetime.fromisoformat(given_at).tzinfo is None:
            raise ValueError
    except (TypeError, ValueError):
        _fail(f"{path}.at", "expected an ISO-8601 moment with its offset, like 2026-03-01T09:00:00+09:00")
    source = raw.get("source", "simulation")
    if not isinstance(source, str):
        _fail(f"{path}.source", "expected a string")
    return {"granted": raw["granted"], "at": given_at, "source": source}


def _fail(field: str, what: str):
    raise InvalidArgument(f"{field}: {what}", field=field)
