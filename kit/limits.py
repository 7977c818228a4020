"""What any request may carry, checked at every edge: the gateway's (request bodies, path and
query parameters) and each gRPC service's (every string field of a request, every JSON text
it decodes). PostgreSQL text and JSONB cannot hold NUL, UTF-8 cannot encode a lone surrogate,
protobuf and bigint hold 64-bit integers, and one tenant must not store what slows the others:
such input is refused as InvalidArgument naming its field (`rules.all[2].value`), never a 500.

The limits below are those of free-form JSON (rules, definitions, template bodies, configs,
properties) and of single strings; each domain states its own tighter caps beside its parser
(README, "Limits").
"""

import math
from datetime import date, datetime, timedelta, timezone

from kit.errors import InvalidArgument

MAX_DEPTH = 32                 # nesting of arrays and objects in one JSON value
MAX_ITEMS = 1_000              # items of one array, keys of one object
MAX_KEY_LENGTH = 256           # characters of one object key
MAX_STRING_LENGTH = 100_000    # characters of one string value (an email body fits)
MAX_TEXT_LENGTH = 10_000       # characters of a plain (non-JSON) string field of a gRPC request
MAX_ID_LENGTH = 200            # characters of an id or a name in a path, a query or an id field
MAX_QUERY_LENGTH = 1_000       # characters of one query parameter (cursors, filters)
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)   # dates are within 1970–2099
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)     # exclusive
MAX_DURATION = timedelta(days=3660)                    # about ten years: windows, waits, offsets
_EARLIEST_SECONDS, _LATEST_SECONDS = int(EARLIEST.timestamp()), int(LATEST.timestamp())


def child(field: str, key: str | int) -> str:
    """The path of an object key or array index below `field`: `rules.all[2]`, `config.url`."""
    if isinstance(key, int):
        return f"{field}[{key}]"
    return f"{field}.{printable(key)}" if field else printable(key)


def printable(text: str) -> str:
    """`text` with NUL and lone surrogates escaped, so a message naming it can always be sent."""
    if "\x00" not in text and _encodes(text):
        return text
    return "".join(f"\\u{ord(c):04x}" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text)


def check_text(value: str, field: str, max_length: int = MAX_STRING_LENGTH) -> str:
    """A string PostgreSQL and protobuf can hold, of at most `max_length` characters."""
    if "\x00" in value:
        _fail(field, "contains a NUL character (\\u0000)")
    if not _encodes(value):
        _fail(field, "contains a lone surrogate (not valid Unicode text)")
    if len(value) > max_length:
        _fail(field, f"longer than {max_length} characters")
    return value


def check_json(value: object, field: str = "") -> object:
    """A decoded JSON value within the limits above; returns it unchanged."""
    _check(value, field, 0)
    return value


def _check(value: object, field: str, depth: int) -> None:
    if isinstance(value, str):
        check_text(value, field or "body")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            _fail(field or "body", "integer outside the 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            _fail(field or "body", "number outside the range of a double")
    elif isinstance(value, (dict, list)):
        if depth >= MAX_DEPTH:
            _fail(field or "body", f"nested deeper than {MAX_DEPTH} levels")
        if len(value) > MAX_ITEMS:
            kind = "keys" if isinstance(value, dict) else "items"
            _fail(field or "body", f"more than {MAX_ITEMS} {kind}")
        if isinstance(value, dict):
            for key, item in value.items():
                path = child(field, key)
                check_text(key, path, MAX_KEY_LENGTH)
                _check(item, path, depth + 1)
        else:
            for index, item in enumerate(value):
                _check(item, child(field, index), depth + 1)
    else:
        _fail(field or "body", f"not a JSON value ({type(value).__name__})")


def check_moment(value: datetime | date, field: str) -> datetime | date:
    """A date or date-time within 1970–2099 (a naive date-time is read as UTC)."""
    moment = value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if not EARLIEST <= moment < LATEST:
        _fail(field, "expected a date between 1970 and 2099")
    return value


def check_duration(value: timedelta, field: str, minimum: timedelta = timedelta(seconds=1)) -> timedelta:
    """A duration from `minimum` to MAX_DURATION (about ten years)."""
    if not minimum <= value <= MAX_DURATION:
        _fail(field, f"expected a duration from {_days(minimum)} to {MAX_DURATION.days} days")
    return value


def check_int(value: int, field: str, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """A whole number the column or proto field holds (int64 unless narrower)."""
    if not low <= value <= high:
        _fail(field, f"expected a whole number from {low} to {high}")
    return value


def _days(value: timedelta) -> str:
    return f"{value.total_seconds():g} seconds" if value < timedelta(days=1) else f"{value.days} days"


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fail(field: str, reason: str):
    raise InvalidArgument(f"{field}: {reason}", field=field)


def check_message(message, field: str = "") -> None:
    """Every string of a protobuf request (fields, repeated items, map keys and values, nested
    messages): no NUL, at most MAX_TEXT_LENGTH characters; every Timestamp within 1970–2099. A
    `*_json` field is checked when it is decoded (kit.transport.json_argument), so here only for NUL."""
    for descriptor, value in message.ListFields():
        path = f"{field}.{descriptor.name}" if field else descriptor.name
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            value_field = descriptor.message_type.fields_by_name["value"]
            for key, item in value.items():
                item_path = child(path, str(key))
                if isinstance(key, str):
                    check_text(key, item_path, MAX_ID_LENGTH)
                _check_field(value_field, item, item_path)
        elif descriptor.is_repeated:
            for index, item in enumerate(value):
                _check_field(descriptor, item, f"{path}[{index}]")
        else:
            _check_field(descriptor, value, path)


def _check_field(descriptor, value, path: str) -> None:
    if descriptor.type == descriptor.TYPE_MESSAGE:
        if descriptor.message_type.full_name == "google.protobuf.Timestamp":
            if not _EARLIEST_SECONDS <= value.seconds < _LATEST_SECONDS:
                _fail(path, "expected a date between 1970 and 2099")
        else:
            check_message(value, path)
    elif descriptor.type == descriptor.TYPE_STRING:
        check_text(value, path, MAX_STRING_LENGTH * 1000 if descriptor.name.endswith("_json") else MAX_TEXT_LENGTH)
