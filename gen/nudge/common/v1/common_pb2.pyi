from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RequestContext(_message.Message):
    __slots__ = ("workspace_id", "actor")
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    workspace_id: str
    actor: str
    def __init__(self, workspace_id: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class PageRequest(_message.Message):
    __slots__ = ("size", "cursor")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    size: int
    cursor: str
    def __init__(self, size: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class FieldError(_message.Message):
    __slots__ = ("index", "field", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    field: str
    reason: str
    def __init__(self, index: _Optional[int] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ExportProfileRequest(_message.Message):
    __slots__ = ("context", "profile_id", "merged_ids")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    MERGED_IDS_FIELD_NUMBER: _ClassVar[int]
    context: RequestContext
    profile_id: str
    merged_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, context: _Optional[_Union[RequestContext, _Mapping]] = ..., profile_id: _Optional[str] = ..., merged_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ExportProfileReply(_message.Message):
    __slots__ = ("export_json",)
    EXPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    export_json: str
    def __init__(self, export_json: _Optional[str] = ...) -> None: ...
