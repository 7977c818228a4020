"""What every service's gRPC transport does the same way: the workspace every request
must carry, who is asking (an API key, or another service), and datetimes as protobuf Timestamps."""

from datetime import datetime

import orjson
from google.protobuf.timestamp_pb2 import Timestamp

from kit.errors import InvalidArgument
from kit.limits import check_json
from nudge.common.v1 import common_pb2


def workspace_of(request) -> str:
    if not request.context.workspace_id:
        raise InvalidArgument("context.workspace_id: required", field="context.workspace_id")
    return request.context.workspace_id


def profiles_to_export(request: common_pb2.ExportProfileRequest) -> list[str]:
    """The live profile and the profiles merged into it, whose data a GDPR export gathers."""
    if not request.profile_id:
        raise InvalidArgument("profile_id: required", field="profile_id")
    return [request.profile_id, *request.merged_ids]


def export_reply(held: dict) -> common_pb2.ExportProfileReply:
    """What a service holds about a person, as JSON text (times ISO-8601, ids as text)."""
    # default=str: the driver's own UUID type is not the standard library's
    return common_pb2.ExportProfileReply(export_json=orjson.dumps(held, default=str).decode())


def json_argument(text: str | bytes, field: str, empty: str = "") -> object:
    """The JSON text a request carries in `field`, decoded and within kit.limits; InvalidArgument naming
    the field (or the path inside it) otherwise. `empty` is the JSON an empty text stands for (e.g. "{}");
    by default empty is not JSON."""
    try:
        value = orjson.loads(text or empty)
    except orjson.JSONDecodeError as err:
        raise InvalidArgument(f"{field}: not valid JSON ({err})", field=field) from None
    return check_json(value, field)


def json_object_argument(text: str | bytes, field: str) -> dict:
    """A JSON object argument (empty text is `{}`); InvalidArgument naming the field otherwise."""
    value = json_argument(text, field, empty="{}")
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field}: expected a JSON object", field=field)
    return value


SERVICE_ACTOR = "service:"  # the actor of a call one service makes to another: `service:<name>`


def service_actor(name: str) -> str:
    return f"{SERVICE_ACTOR}{name}"


def is_service_actor(actor: str) -> bool:
    """A call another service makes on its own account (a send reading a contact), not a person's or a key's."""
    return actor.startswith(SERVICE_ACTOR)


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
