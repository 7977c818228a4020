import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from nudge.common.v1 import audit_pb2 as _audit_pb2
from nudge.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Journey(_message.Message):
    __slots__ = ("id", "name", "description", "status", "version", "definition_json", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    status: str
    version: int
    definition_json: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[str] = ..., version: _Optional[int] = ..., definition_json: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class JourneyRef(_message.Message):
    __slots__ = ("context", "id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., id: _Optional[str] = ...) -> None: ...

class CreateJourneyRequest(_message.Message):
    __slots__ = ("context", "id", "name", "description", "definition_json")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_JSON_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    id: str
    name: str
    description: str
    definition_json: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., definition_json: _Optional[str] = ...) -> None: ...

class UpdateJourneyRequest(_message.Message):
    __slots__ = ("context", "id", "name", "description", "definition_json")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_JSON_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    id: str
    name: str
    description: str
    definition_json: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., definition_json: _Optional[str] = ...) -> None: ...

class ListJourneysRequest(_message.Message):
    __slots__ = ("context", "status")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    status: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., status: _Optional[str] = ...) -> None: ...

class ListJourneysReply(_message.Message):
    __slots__ = ("journeys",)
    JOURNEYS_FIELD_NUMBER: _ClassVar[int]
    journeys: _containers.RepeatedCompositeFieldContainer[Journey]
    def __init__(self, journeys: _Optional[_Iterable[_Union[Journey, _Mapping]]] = ...) -> None: ...

class DeleteJourneyReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Version(_message.Message):
    __slots__ = ("version", "definition_json", "published_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_JSON_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    version: int
    definition_json: str
    published_at: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., definition_json: _Optional[str] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListVersionsReply(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[Version]
    def __init__(self, versions: _Optional[_Iterable[_Union[Version, _Mapping]]] = ...) -> None: ...

class Step(_message.Message):
    __slots__ = ("seq", "node_id", "kind", "outcome", "detail_json", "at")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    node_id: str
    kind: str
    outcome: str
    detail_json: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, seq: _Optional[int] = ..., node_id: _Optional[str] = ..., kind: _Optional[str] = ..., outcome: _Optional[str] = ..., detail_json: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "journey_id", "version", "profile_id", "status", "node_id", "variant", "end_reason", "entered_at", "ended_at", "next_at", "steps")
    ID_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    ENTERED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_AT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    id: str
    journey_id: str
    version: int
    profile_id: str
    status: str
    node_id: str
    variant: str
    end_reason: str
    entered_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    next_at: _timestamp_pb2.Timestamp
    steps: _containers.RepeatedCompositeFieldContainer[Step]
    def __init__(self, id: _Optional[str] = ..., journey_id: _Optional[str] = ..., version: _Optional[int] = ..., profile_id: _Optional[str] = ..., status: _Optional[str] = ..., node_id: _Optional[str] = ..., variant: _Optional[str] = ..., end_reason: _Optional[str] = ..., entered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[Step, _Mapping]]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("context", "profile_id", "journey_id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    profile_id: str
    journey_id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., profile_id: _Optional[str] = ..., journey_id: _Optional[str] = ...) -> None: ...

class ListRunsReply(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("context", "id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., id: _Optional[str] = ...) -> None: ...

class NodeStats(_message.Message):
    __slots__ = ("node_id", "reached", "waiting", "outcomes")
    class OutcomesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    REACHED_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    reached: int
    waiting: int
    outcomes: _containers.ScalarMap[str, int]
    def __init__(self, node_id: _Optional[str] = ..., reached: _Optional[int] = ..., waiting: _Optional[int] = ..., outcomes: _Optional[_Mapping[str, int]] = ...) -> None: ...

class JourneyStats(_message.Message):
    __slots__ = ("journey_id", "entered", "active", "converted", "exited", "completed", "nodes")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    ENTERED_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_FIELD_NUMBER: _ClassVar[int]
    EXITED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    entered: int
    active: int
    converted: int
    exited: int
    completed: int
    nodes: _containers.RepeatedCompositeFieldContainer[NodeStats]
    def __init__(self, journey_id: _Optional[str] = ..., entered: _Optional[int] = ..., active: _Optional[int] = ..., converted: _Optional[int] = ..., exited: _Optional[int] = ..., completed: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[NodeStats, _Mapping]]] = ...) -> None: ...

class TimelineEvent(_message.Message):
    __slots__ = ("event", "at", "properties_json")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_JSON_FIELD_NUMBER: _ClassVar[int]
    event: str
    at: _timestamp_pb2.Timestamp
    properties_json: str
    def __init__(self, event: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., properties_json: _Optional[str] = ...) -> None: ...

class SimulateRequest(_message.Message):
    __slots__ = ("context", "id", "definition_json", "profile_json", "start_at", "timeline", "until")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_JSON_FIELD_NUMBER: _ClassVar[int]
    PROFILE_JSON_FIELD_NUMBER: _ClassVar[int]
    START_AT_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    id: str
    definition_json: str
    profile_json: str
    start_at: _timestamp_pb2.Timestamp
    timeline: _containers.RepeatedCompositeFieldContainer[TimelineEvent]
    until: _timestamp_pb2.Timestamp
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., id: _Optional[str] = ..., definition_json: _Optional[str] = ..., profile_json: _Optional[str] = ..., start_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., timeline: _Optional[_Iterable[_Union[TimelineEvent, _Mapping]]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SimulatedStep(_message.Message):
    __slots__ = ("at", "node_id", "kind", "outcome", "channel", "template_id", "reason", "detail_json")
    AT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    node_id: str
    kind: str
    outcome: str
    channel: str
    template_id: str
    reason: str
    detail_json: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., node_id: _Optional[str] = ..., kind: _Optional[str] = ..., outcome: _Optional[str] = ..., channel: _Optional[str] = ..., template_id: _Optional[str] = ..., reason: _Optional[str] = ..., detail_json: _Optional[str] = ...) -> None: ...

class SimulateReply(_message.Message):
    __slots__ = ("steps", "end_status", "end_reason", "ended_at")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    END_STATUS_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[SimulatedStep]
    end_status: str
    end_reason: str
    ended_at: _timestamp_pb2.Timestamp
    def __init__(self, steps: _Optional[_Iterable[_Union[SimulatedStep, _Mapping]]] = ..., end_status: _Optional[str] = ..., end_reason: _Optional[str] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FindUsagesRequest(_message.Message):
    __slots__ = ("context", "segment_id", "template_id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    segment_id: str
    template_id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., segment_id: _Optional[str] = ..., template_id: _Optional[str] = ...) -> None: ...

class FindUsagesReply(_message.Message):
    __slots__ = ("journeys",)
    JOURNEYS_FIELD_NUMBER: _ClassVar[int]
    journeys: _containers.RepeatedCompositeFieldContainer[Journey]
    def __init__(self, journeys: _Optional[_Iterable[_Union[Journey, _Mapping]]] = ...) -> None: ...

class StarterTemplateSlot(_message.Message):
    __slots__ = ("slot", "description", "channels", "advertising")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    ADVERTISING_FIELD_NUMBER: _ClassVar[int]
    slot: str
    description: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    advertising: bool
    def __init__(self, slot: _Optional[str] = ..., description: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., advertising: _Optional[bool] = ...) -> None: ...

class StarterSegmentSlot(_message.Message):
    __slots__ = ("slot", "description", "rules_json")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RULES_JSON_FIELD_NUMBER: _ClassVar[int]
    slot: str
    description: str
    rules_json: str
    def __init__(self, slot: _Optional[str] = ..., description: _Optional[str] = ..., rules_json: _Optional[str] = ...) -> None: ...

class JourneyStarter(_message.Message):
    __slots__ = ("id", "name", "description", "source", "templates", "segments", "definition_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    source: str
    templates: _containers.RepeatedCompositeFieldContainer[StarterTemplateSlot]
    segments: _containers.RepeatedCompositeFieldContainer[StarterSegmentSlot]
    definition_json: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., source: _Optional[str] = ..., templates: _Optional[_Iterable[_Union[StarterTemplateSlot, _Mapping]]] = ..., segments: _Optional[_Iterable[_Union[StarterSegmentSlot, _Mapping]]] = ..., definition_json: _Optional[str] = ...) -> None: ...

class ListStartersRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ...) -> None: ...

class ListStartersReply(_message.Message):
    __slots__ = ("starters",)
    STARTERS_FIELD_NUMBER: _ClassVar[int]
    starters: _containers.RepeatedCompositeFieldContainer[JourneyStarter]
    def __init__(self, starters: _Optional[_Iterable[_Union[JourneyStarter, _Mapping]]] = ...) -> None: ...

class StarterRef(_message.Message):
    __slots__ = ("context", "id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., id: _Optional[str] = ...) -> None: ...

class CreateFromStarterRequest(_message.Message):
    __slots__ = ("context", "id", "name", "description", "starter", "templates", "segments")
    class TemplatesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SegmentsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STARTER_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    id: str
    name: str
    description: str
    starter: str
    templates: _containers.ScalarMap[str, str]
    segments: _containers.ScalarMap[str, str]
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., starter: _Optional[str] = ..., templates: _Optional[_Mapping[str, str]] = ..., segments: _Optional[_Mapping[str, str]] = ...) -> None: ...
