"""The JSON-argument helper every service's transport uses: JSON text in a request field,
decoded, or InvalidArgument naming that field."""

import pytest

from kit.errors import InvalidArgument
from kit.transport import json_argument, json_object_argument


def test_json_text_is_decoded_and_empty_text_stands_for_what_the_caller_says():
    assert json_argument('{"a": [1, 2]}', "rules") == {"a": [1, 2]}
    assert json_argument("", "rules", empty="null") is None
    assert json_argument("", "profile", empty="{}") == {}
    assert json_object_argument("", "variables") == {}
    assert json_object_argument('{"x": 1}', "variables") == {"x": 1}


@pytest.mark.parametrize("call, field", [
    (lambda: json_argument("{not json", "rules"), "rules"),
    (lambda: json_argument("", "payload"), "payload"),  # empty is not JSON unless the caller says so
    (lambda: json_object_argument("[1]", "timeline[2].properties"), "timeline[2].properties"),
    (lambda: json_object_argument("{", "calls[0].traits"), "calls[0].traits"),
])
def test_text_that_is_not_json_or_not_an_object_names_the_field(call, field):
    with pytest.raises(InvalidArgument) as raised:
        call()
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
