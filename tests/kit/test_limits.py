"""The limits every edge enforces (kit.limits): what PostgreSQL, protobuf and the other tenants
cannot take is refused naming the field, down to the key or index that holds it."""

from datetime import date, datetime, timedelta, timezone

import pytest

from kit import limits
from kit.errors import InvalidArgument
from kit.transport import json_argument
from nudge.common.v1 import common_pb2
from nudge.profile.v1 import profile_pb2


def _field(call) -> str:
    with pytest.raises(InvalidArgument) as raised:
        call()
    assert str(raised.value).startswith(f"{raised.value.field}: ")
    return raised.value.field


@pytest.mark.parametrize("value, field", [
    ({"rules": {"all": [{"trait": "a\x00b"}]}}, "rules.all[0].trait"),
    ({"traits": {"ke\x00y": 1}}, "traits.ke\\u0000y"),
    ({"name": "half \ud800 pair"}, "name"),
    ({"n\udc00": 1}, "n\\udc00"),
    ({"count": 2**63}, "count"),
    ({"count": -2**63 - 1}, "count"),
    ({"x": float("inf")}, "x"),
    ({"list": list(range(limits.MAX_ITEMS + 1))}, "list"),
    ({"text": "x" * (limits.MAX_STRING_LENGTH + 1)}, "text"),
    ({"k" * (limits.MAX_KEY_LENGTH + 1): 1}, "k" * (limits.MAX_KEY_LENGTH + 1)),
])
def test_what_no_column_or_tenant_can_hold_is_refused_at_its_path(value, field):
    assert _field(lambda: limits.check_json(value)) == field


def test_nesting_beyond_the_limit_names_where_it_went_too_deep():
    deep: object = 1
    for _ in range(limits.MAX_DEPTH + 1):
        deep = [deep]
    assert _field(lambda: limits.check_json({"d": deep})) == "d" + "[0]" * (limits.MAX_DEPTH - 1)


def test_values_within_the_limits_pass_unchanged():
    value = {"a": [1, 2.5, None, True, "한글 ✓ 𝒳"], "b": {"c": 2**63 - 1, "d": -2**63}}
    assert limits.check_json(value) is value


def test_json_arguments_of_a_service_are_checked_as_they_are_decoded():
    assert _field(lambda: json_argument('{"a": {"b": "\\u0000"}}', "config")) == "config.a.b"
    assert _field(lambda: json_argument('{"n": 9223372036854775808}', "policy")) == "policy.n"


def test_every_string_of_a_grpc_request_is_checked_with_its_path():
    request = profile_pb2.IngestRequest(context=common_pb2.RequestContext(workspace_id="w"), calls=[
        profile_pb2.TrackingCall(type="track", event="fine"), profile_pb2.TrackingCall(type="track", event="b\x00d")])
    assert _field(lambda: limits.check_message(request)) == "calls[1].event"
    request = profile_pb2.IngestRequest(rejected_before={"x\x00": 1})
    assert _field(lambda: limits.check_message(request)) == "rejected_before.x\\u0000"
    long = profile_pb2.IngestRequest(calls=[profile_pb2.TrackingCall(user_id="u" * (limits.MAX_TEXT_LENGTH + 1))])
    assert _field(lambda: limits.check_message(long)) == "calls[0].user_id"
    late = profile_pb2.IngestRequest(calls=[profile_pb2.TrackingCall(sent_at={"seconds": 4_200_000_000})])
    assert _field(lambda: limits.check_message(late)) == "calls[0].sent_at"


def test_dates_from_1970_to_2099_and_durations_up_to_about_ten_years():
    assert limits.check_moment(date(2099, 12, 31), "at") == date(2099, 12, 31)
    assert _field(lambda: limits.check_moment(datetime(1969, 12, 31, 23, tzinfo=timezone.utc), "at")) == "at"
    assert _field(lambda: limits.check_moment(datetime(2100, 1, 1), "until")) == "until"
    assert limits.check_duration(timedelta(days=3660), "within") == timedelta(days=3660)
    assert _field(lambda: limits.check_duration(timedelta(days=3661), "within")) == "within"
    assert _field(lambda: limits.check_duration(timedelta(0), "ago")) == "ago"
