import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from nudge.common.v1 import audit_pb2 as _audit_pb2
from nudge.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrackingCall(_message.Message):
    __slots__ = ("type", "message_id", "user_id", "anonymous_id", "event", "name", "group_id", "previous_id", "properties_json", "traits_json", "context_json", "original_timestamp", "sent_at", "received_at", "integrations_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_ID_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_JSON_FIELD_NUMBER: _ClassVar[int]
    TRAITS_JSON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_JSON_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    INTEGRATIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    message_id: str
    user_id: str
    anonymous_id: str
    event: str
    name: str
    group_id: str
    previous_id: str
    properties_json: str
    traits_json: str
    context_json: str
    original_timestamp: _timestamp_pb2.Timestamp
    sent_at: _timestamp_pb2.Timestamp
    received_at: _timestamp_pb2.Timestamp
    integrations_json: str
    def __init__(self, type: _Optional[str] = ..., message_id: _Optional[str] = ..., user_id: _Optional[str] = ..., anonymous_id: _Optional[str] = ..., event: _Optional[str] = ..., name: _Optional[str] = ..., group_id: _Optional[str] = ..., previous_id: _Optional[str] = ..., properties_json: _Optional[str] = ..., traits_json: _Optional[str] = ..., context_json: _Optional[str] = ..., original_timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., integrations_json: _Optional[str] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("context", "calls", "rejected_before")
    class RejectedBeforeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    calls: _containers.RepeatedCompositeFieldContainer[TrackingCall]
    rejected_before: _containers.ScalarMap[str, int]
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., calls: _Optional[_Iterable[_Union[TrackingCall, _Mapping]]] = ..., rejected_before: _Optional[_Mapping[str, int]] = ...) -> None: ...

class IngestResult(_message.Message):
    __slots__ = ("outcome", "profile_id", "event_id", "field", "reason")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[IngestResult.Outcome]
        STORED: _ClassVar[IngestResult.Outcome]
        DUPLICATE: _ClassVar[IngestResult.Outcome]
        REJECTED: _ClassVar[IngestResult.Outcome]
        ERASED: _ClassVar[IngestResult.Outcome]
    OUTCOME_UNSPECIFIED: IngestResult.Outcome
    STORED: IngestResult.Outcome
    DUPLICATE: IngestResult.Outcome
    REJECTED: IngestResult.Outcome
    ERASED: IngestResult.Outcome
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    outcome: IngestResult.Outcome
    profile_id: str
    event_id: str
    field: str
    reason: str
    def __init__(self, outcome: _Optional[_Union[IngestResult.Outcome, str]] = ..., profile_id: _Optional[str] = ..., event_id: _Optional[str] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class IngestReply(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[IngestResult]
    def __init__(self, results: _Optional[_Iterable[_Union[IngestResult, _Mapping]]] = ...) -> None: ...

class Identity(_message.Message):
    __slots__ = ("type", "value", "first_seen")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    type: str
    value: str
    first_seen: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[str] = ..., value: _Optional[str] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConsentState(_message.Message):
    __slots__ = ("purpose", "granted", "at", "source")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    granted: bool
    at: _timestamp_pb2.Timestamp
    source: str
    def __init__(self, purpose: _Optional[str] = ..., granted: _Optional[bool] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("id", "identities", "traits_json", "consent", "created_at", "last_seen_at", "merged_ids")
    ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    TRAITS_JSON_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    MERGED_IDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    identities: _containers.RepeatedCompositeFieldContainer[Identity]
    traits_json: str
    consent: _containers.RepeatedCompositeFieldContainer[ConsentState]
    created_at: _timestamp_pb2.Timestamp
    last_seen_at: _timestamp_pb2.Timestamp
    merged_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[Identity, _Mapping]]] = ..., traits_json: _Optional[str] = ..., consent: _Optional[_Iterable[_Union[ConsentState, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., merged_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("context", "profile_id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    profile_id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., profile_id: _Optional[str] = ...) -> None: ...

class LookupProfilesRequest(_message.Message):
    __slots__ = ("context", "identifier_type", "value")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    identifier_type: str
    value: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., identifier_type: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class LookupProfilesReply(_message.Message):
    __slots__ = ("profiles",)
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[Profile]
    def __init__(self, profiles: _Optional[_Iterable[_Union[Profile, _Mapping]]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "profile_id", "call", "timestamp")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    id: str
    profile_id: str
    call: TrackingCall
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., profile_id: _Optional[str] = ..., call: _Optional[_Union[TrackingCall, _Mapping]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("context", "profile_id", "page")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    profile_id: str
    page: _common_pb2.PageRequest
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., profile_id: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListEventsReply(_message.Message):
    __slots__ = ("events", "next_cursor")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    next_cursor: str
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class ConsentChange(_message.Message):
    __slots__ = ("purpose", "granted", "at", "source")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    granted: bool
    at: _timestamp_pb2.Timestamp
    source: str
    def __init__(self, purpose: _Optional[str] = ..., granted: _Optional[bool] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ...) -> None: ...

class UpdateConsentRequest(_message.Message):
    __slots__ = ("context", "profile_id", "changes")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    profile_id: str
    changes: _containers.RepeatedCompositeFieldContainer[ConsentChange]
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., profile_id: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[ConsentChange, _Mapping]]] = ...) -> None: ...

class ExportProfileRequest(_message.Message):
    __slots__ = ("context", "profile_id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    profile_id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., profile_id: _Optional[str] = ...) -> None: ...

class ExportProfileReply(_message.Message):
    __slots__ = ("export_json",)
    EXPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    export_json: str
    def __init__(self, export_json: _Optional[str] = ...) -> None: ...

class DeleteProfileRequest(_message.Message):
    __slots__ = ("context", "profile_id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    profile_id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., profile_id: _Optional[str] = ...) -> None: ...

class DeleteProfileReply(_message.Message):
    __slots__ = ("events_erased",)
    EVENTS_ERASED_FIELD_NUMBER: _ClassVar[int]
    events_erased: int
    def __init__(self, events_erased: _Optional[int] = ...) -> None: ...

class IdentityPolicy(_message.Message):
    __slots__ = ("unique_identifiers",)
    UNIQUE_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    unique_identifiers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, unique_identifiers: _Optional[_Iterable[str]] = ...) -> None: ...

class GetIdentityPolicyRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ...) -> None: ...

class SetIdentityPolicyRequest(_message.Message):
    __slots__ = ("context", "policy")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    policy: IdentityPolicy
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., policy: _Optional[_Union[IdentityPolicy, _Mapping]] = ...) -> None: ...
