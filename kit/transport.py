"""What every service's gRPC transport does the same way: the workspace every request
must carry, and datetimes as protobuf Timestamps."""

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from kit.errors import InvalidArgument


def workspace_of(request) -> str:
    if not request.context.workspace_id:
        raise InvalidArgument("context.workspace_id: required", field="context.workspace_id")
    return request.context.workspace_id


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
