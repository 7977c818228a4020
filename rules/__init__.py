"""The segment rule language: a JSON tree parsed into typed conditions, with errors that
point at the offending node (`rules.all[2].within: expected an ISO-8601 duration`).

    {"all": [...]}, {"any": [...]}, {"not": {...}}
    {"trait": "plan", "op": "eq", "value": "pro"}                 eq neq in not_in gt gte lt lte contains exists
    {"trait": "birthday", "op": "anniversary_within", "days": 7}  yearly date trait within the next N days
    {"trait": "signup_at", "op": "before", "ago": "P30D"}         before / after a moment (`ago`) or a date (`value`)
    {"event": "Product Viewed", "where": [{"property": "product_id", "op": "eq", "value": "X"}],
     "count": {"op": "gte", "value": 3}, "within": "P3D"}          count of matching events in a window
    {"event": "Order Completed", "absent": true, "within": "P90D"} none in the window
    {"event": "Order Completed", "sum": "revenue", "op": "gte", "value": 100000, "within": "P30D"}   sum / avg
    {"event": "Signed Up", "first": {"op": "within", "ago": "P7D"}}  first / last occurrence before / after / within
    {"last_seen": {"op": "more_than", "ago": "P3D"}}               activity recency
    {"rfm": "champions"}  or  {"rfm": {"score": "r", "op": "gte", "value": 4}}
    {"segment": "<segment id>"}                                    membership of another segment (no cycles)
    {"consent": {"purpose": "ads:sms", "state": "granted", "since": {"op": "before", "ago": "P700D"}}}
        a consent's current state (granted | withdrawn; a consent never recorded is neither),
        optionally how long it has held: since before / after / within `ago`, as first/last do

Pure: no I/O, no clock. Durations are ISO-8601 (`P1M` counts as 30 days), from a second to
3,660 days; dates are within 1970–2099. One rule holds at most MAX_CONDITIONS nodes (all / any /
not count too), an event condition MAX_FILTERS property filters, an `in` list MAX_VALUES values.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydantic import TypeAdapter, ValidationError

from kit import limits
from kit.errors import InvalidArgument

COMPARISONS = ("eq", "neq", "gt", "gte", "lt", "lte")
TRAIT_OPS = (*COMPARISONS, "in", "not_in", "contains", "exists", "anniversary_within", "before", "after")
PROPERTY_OPS = (*COMPARISONS, "in", "not_in", "contains", "exists")
OCCURRENCE_OPS = ("before", "after", "within")
RECENCY_OPS = ("more_than", "less_than")
RFM_SCORES = ("r", "f", "m")
CONSENT_STATES = ("granted", "withdrawn")
# The purposes the profile service records (services/profile/identity.py), per channel family.
CONSENT_CHANNELS = ("email", "sms", "kakao", "push", "webpush", "inapp", "webhook")
CONSENT_PURPOSES = ("night_advertising", *(f"ads:{c}" for c in CONSENT_CHANNELS),
                    *(f"channel:{c}" for c in CONSENT_CHANNELS))
RFM_GROUPS = ("champions", "loyal", "potential_loyalists", "new_customers", "promising", "need_attention",
              "about_to_sleep", "at_risk", "cannot_lose", "hibernating", "lost")
MAX_DEPTH = 16
MAX_CONDITIONS = 200   # nodes of one rule tree: a segment is evaluated on every event of a profile
MAX_FILTERS = 20       # property filters of one event condition
MAX_VALUES = 500       # values of one in / not_in list

_durations = TypeAdapter(timedelta)


@dataclass(frozen=True)
class All:
    children: tuple


@dataclass(frozen=True)
class Any:
    children: tuple


@dataclass(frozen=True)
class Not:
    child: object


@dataclass(frozen=True)
class TraitCondition:
    trait: str
    op: str
    value: object = None
    days: int | None = None          # anniversary_within
    ago: timedelta | None = None     # before / after a moment relative to now


@dataclass(frozen=True)
class PropertyFilter:
    property: str
    op: str
    value: object = None


@dataclass(frozen=True)
class EventCondition:
    event: str
    where: tuple[PropertyFilter, ...]
    measure: str                     # count | sum | avg | first | last
    op: str
    value: object = None
    property: str | None = None      # the summed / averaged property
    within: timedelta | None = None  # the window; None = all time
    ago: timedelta | None = None     # first / last: the moment compared with


@dataclass(frozen=True)
class LastSeen:
    op: str
    ago: timedelta


@dataclass(frozen=True)
class RfmCondition:
    group: str | None = None
    score: str | None = None
    op: str | None = None
    value: int | None = None


@dataclass(frozen=True)
class ConsentCondition:
    purpose: str
    state: str                       # granted | withdrawn
    op: str | None = None            # since: before | after | within (None: any time)
    ago: timedelta | None = None


@dataclass(frozen=True)
class SegmentRef:
    segment_id: str


def parse(tree: object, path: str = "rules"):
    """The typed rule of a JSON tree, or InvalidArgument naming the first bad node."""
    return Parser().node(tree, path, 0)


def referenced_segments(rule) -> set[str]:
    match rule:
        case All(children) | Any(children):
            return set().union(*(referenced_segments(c) for c in children))
        case Not(child):
            return referenced_segments(child)
        case SegmentRef(segment_id):
            return {segment_id}
    return set()


def check_no_cycle(segment_id: str, rule, rule_of: Callable[[str], object | None]) -> None:
    """Refuses a rule whose segment references lead back to `segment_id` (or to a missing segment)."""
    def visit(current_rule, trail: list[str]) -> None:
        for ref in sorted(referenced_segments(current_rule)):
            if ref == segment_id or ref in trail:
                cycle = " → ".join([*trail, ref])
                raise InvalidArgument(f"rules: segment references form a cycle ({cycle})", field="rules")
            target = rule_of(ref)
            if target is None:
                raise InvalidArgument(f"rules: unknown segment {ref!r}", field="rules")
            visit(target, [*trail, ref])

    visit(rule, [segment_id])


class Parser:
    def __init__(self) -> None:
        self.conditions = 0

    def node(self, tree: object, path: str, depth: int):
        if depth > MAX_DEPTH:
            self.fail(path, f"nested deeper than {MAX_DEPTH} levels")
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            self.fail(path, f"more than {MAX_CONDITIONS} conditions in one rule")
        if not isinstance(tree, dict) or not tree:
            self.fail(path, "expected a rule object")
        for key in ("all", "any"):
            if key in tree:
                self.only(tree, path, {key})
                children = tree[key]
                if not isinstance(children, list) or not children:
                    self.fail(f"{path}.{key}", "expected a non-empty array of rules")
                parsed = tuple(self.node(c, f"{path}.{key}[{i}]", depth + 1) for i, c in enumerate(children))
                return All(parsed) if key == "all" else Any(parsed)
        if "not" in tree:
            self.only(tree, path, {"not"})
            return Not(self.node(tree["not"], f"{path}.not", depth + 1))
        if "trait" in tree:
            return self.trait(tree, path)
        if "event" in tree:
            return self.event(tree, path)
        if "last_seen" in tree:
            self.only(tree, path, {"last_seen"})
            return self.last_seen(tree["last_seen"], f"{path}.last_seen")
        if "rfm" in tree:
            self.only(tree, path, {"rfm"})
            return self.rfm(tree["rfm"], f"{path}.rfm")
        if "segment" in tree:
            self.only(tree, path, {"segment"})
            return SegmentRef(self.text(tree["segment"], f"{path}.segment"))
        if "consent" in tree:
            self.only(tree, path, {"consent"})
            return self.consent(tree["consent"], f"{path}.consent")
        self.fail(path, "expected one of all, any, not, trait, event, last_seen, rfm, segment, consent; "
                        f"got {', '.join(sorted(map(str, tree)))}")

    def trait(self, tree: dict, path: str) -> TraitCondition:
        self.only(tree, path, {"trait", "op", "value", "days", "ago"})
        name = self.text(tree["trait"], f"{path}.trait")
        op = self.choice(tree.get("op"), TRAIT_OPS, f"{path}.op")
        if op == "exists":
            return TraitCondition(name, op)
        if op == "anniversary_within":
            days = tree.get("days")
            if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 366:
                self.fail(f"{path}.days", "expected a whole number of days from 0 to 366")
            return TraitCondition(name, op, days=days)
        if op in ("before", "after"):
            if "ago" in tree:
                return TraitCondition(name, op, ago=self.duration(tree["ago"], f"{path}.ago"))
            return TraitCondition(name, op, value=self.moment(tree.get("value"), f"{path}.value"))
        return TraitCondition(name, op, value=self.operand(op, tree.get("value"), f"{path}.value", "value" in tree))

    def event(self, tree: dict, path: str) -> EventCondition:
        self.only(tree, path, {"event", "where", "count", "absent", "sum", "avg", "op", "value", "within",
                               "first", "last"})
        name = self.text(tree["event"], f"{path}.event")
        where = tree.get("where", [])
        if not isinstance(where, list):
            self.fail(f"{path}.where", "expected an array of property filters")
        if len(where) > MAX_FILTERS:
            self.fail(f"{path}.where", f"at most {MAX_FILTERS} property filters")
        filters = tuple(self.property_filter(f, f"{path}.where[{i}]") for i, f in enumerate(where))
        within = self.duration(tree["within"], f"{path}.within") if "within" in tree else None
        measures = [m for m in ("count", "absent", "sum", "avg", "first", "last") if m in tree]
        if len(measures) != 1:
            self.fail(path, "give exactly one of count, absent, sum, avg, first, last")
        measure = measures[0]
        if measure == "absent":
            if tree["absent"] is not True:
                self.fail(f"{path}.absent", "expected true")
            return EventCondition(name, filters, "count", "eq", 0, within=within)
        if measure == "count":
            count = tree["count"]
            if not isinstance(count, dict):
                self.fail(f"{path}.count", 'expected {"op": ..., "value": <whole number>}')
            self.only(count, f"{path}.count", {"op", "value"})
            op = self.choice(count.get("op"), COMPARISONS, f"{path}.count.op")
            value = count.get("value")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.fail(f"{path}.count.value", "expected a whole number ≥ 0")
            return EventCondition(name, filters, "count", op, value, within=within)
        if measure in ("sum", "avg"):
            prop = self.text(tree[measure], f"{path}.{measure}")
            op = self.choice(tree.get("op"), COMPARISONS, f"{path}.op")
            value = tree.get("value")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(f"{path}.value", "expected a number")
            return EventCondition(name, filters, measure, op, value, property=prop, within=within)
        occurrence = tree[measure]
        if not isinstance(occurrence, dict):
            self.fail(f"{path}.{measure}", 'expected {"op": "before"|"after"|"within", "ago": <duration>}')
        self.only(occurrence, f"{path}.{measure}", {"op", "ago"})
        op = self.choice(occurrence.get("op"), OCCURRENCE_OPS, f"{path}.{measure}.op")
        if within is not None:
            self.fail(f"{path}.within", f"{measure} takes its time in {measure}.ago, not within")
        return EventCondition(name, filters, measure, op, ago=self.duration(occurrence.get("ago"),
                                                                              f"{path}.{measure}.ago"))

    def property_filter(self, tree: object, path: str) -> PropertyFilter:
        if not isinstance(tree, dict):
            self.fail(path, 'expected {"property": ..., "op": ..., "value": ...}')
        self.only(tree, path, {"property", "op", "value"})
        name = self.text(tree.get("property"), f"{path}.property")
        op = self.choice(tree.get("op"), PROPERTY_OPS, f"{path}.op")
        if op == "exists":
            return PropertyFilter(name, op)
        value = self.operand(op, tree.get("value"), f"{path}.value", "value" in tree)
        # A tuple, not a list: filters are part of the (hashable) key of the series they feed.
        return PropertyFilter(name, op, tuple(value) if isinstance(value, list) else value)

    def last_seen(self, tree: object, path: str) -> LastSeen:
        if not isinstance(tree, dict):
            self.fail(path, 'expected {"op": "more_than"|"less_than", "ago": <duration>}')
        self.only(tree, path, {"op", "ago"})
        return LastSeen(self.choice(tree.get("op"), RECENCY_OPS, f"{path}.op"),
                        self.duration(tree.get("ago"), f"{path}.ago"))

    def rfm(self, tree: object, path: str) -> RfmCondition:
        if isinstance(tree, str):
            return RfmCondition(group=self.choice(tree, RFM_GROUPS, path))
        if not isinstance(tree, dict):
            self.fail(path, "expected a group name or {\"score\": \"r\"|\"f\"|\"m\", \"op\": ..., \"value\": 1-5}")
        self.only(tree, path, {"score", "op", "value"})
        value = tree.get("value")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            self.fail(f"{path}.value", "expected a quintile score from 1 to 5")
        return RfmCondition(score=self.choice(tree.get("score"), RFM_SCORES, f"{path}.score"),
                            op=self.choice(tree.get("op"), COMPARISONS, f"{path}.op"), value=value)

    def consent(self, tree: object, path: str) -> ConsentCondition:
        if not isinstance(tree, dict):
            self.fail(path, 'expected {"purpose": "ads:sms", "state": "granted"|"withdrawn", "since"?: '
                            '{"op": "before"|"after"|"within", "ago": <duration>}}')
        self.only(tree, path, {"purpose", "state", "since"})
        purpose = self.choice(tree.get("purpose"), CONSENT_PURPOSES, f"{path}.purpose")
        state = self.choice(tree.get("state"), CONSENT_STATES, f"{path}.state")
        if "since" not in tree:
            return ConsentCondition(purpose, state)
        since = tree["since"]
        if not isinstance(since, dict):
            self.fail(f"{path}.since", 'expected {"op": "before"|"after"|"within", "ago": <duration>}')
        self.only(since, f"{path}.since", {"op", "ago"})
        return ConsentCondition(purpose, state, self.choice(since.get("op"), OCCURRENCE_OPS, f"{path}.since.op"),
                                self.duration(since.get("ago"), f"{path}.since.ago"))

    # -- leaves ---------------------------------------------------------------------
    def operand(self, op: str, value: object, path: str, given: bool) -> object:
        if not given:
            self.fail(path, f"{op} needs a value")
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                self.fail(path, f"{op} needs a non-empty array")
            if len(value) > MAX_VALUES:
                self.fail(path, f"{op} takes at most {MAX_VALUES} values")
        elif op in ("gt", "gte", "lt", "lte"):
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                self.fail(path, f"{op} needs a number or a string")
        elif isinstance(value, (dict, list)):
            self.fail(path, f"{op} needs a string, number, boolean or null")
        return value

    def duration(self, value: object, path: str) -> timedelta:
        if not isinstance(value, str) or not value.startswith("P"):
            self.fail(path, "expected an ISO-8601 duration such as P3D or PT1H")
        try:
            parsed = _durations.validate_python(value)
        except ValidationError:
            self.fail(path, "expected an ISO-8601 duration such as P3D or PT1H")
        if parsed <= timedelta(0):
            self.fail(path, "expected a positive duration")
        return limits.check_duration(parsed, path)

    def moment(self, value: object, path: str) -> datetime | date:
        if isinstance(value, str):
            for kind in (datetime, date):
                try:
                    moment = kind.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    continue
                return limits.check_moment(moment, path)
        self.fail(path, "expected an ISO-8601 date or date-time, or `ago` with a duration")

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, "expected a non-empty string")
        return limits.check_text(value, path, limits.MAX_ID_LENGTH)

    def choice(self, value: object, allowed: tuple[str, ...], path: str) -> str:
        if value not in allowed:
            self.fail(path, f"unknown {value!r}; expected one of {', '.join(allowed)}")
        return value  # type: ignore[return-value]

    def only(self, tree: dict, path: str, allowed: set[str]) -> None:
        extra = sorted(set(tree) - allowed)
        if extra:
            self.fail(f"{path}.{extra[0]}", "not allowed here")

    def fail(self, path: str, reason: str):
        raise InvalidArgument(f"{path}: {reason}", field=path)
