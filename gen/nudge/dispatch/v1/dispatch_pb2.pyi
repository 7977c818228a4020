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

class SendRequest(_message.Message):
    __slots__ = ("context", "idempotency_key", "profile_id", "channels", "template_id", "advertising", "transactional", "journey_id", "node_id", "variables_json", "simulation", "journey_version", "variant", "order")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    ADVERTISING_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONAL_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_JSON_FIELD_NUMBER: _ClassVar[int]
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    idempotency_key: str
    profile_id: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    template_id: str
    advertising: bool
    transactional: bool
    journey_id: str
    node_id: str
    variables_json: str
    simulation: Simulation
    journey_version: int
    variant: str
    order: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., profile_id: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., template_id: _Optional[str] = ..., advertising: _Optional[bool] = ..., transactional: _Optional[bool] = ..., journey_id: _Optional[str] = ..., node_id: _Optional[str] = ..., variables_json: _Optional[str] = ..., simulation: _Optional[_Union[Simulation, _Mapping]] = ..., journey_version: _Optional[int] = ..., variant: _Optional[str] = ..., order: _Optional[str] = ...) -> None: ...

class Simulation(_message.Message):
    __slots__ = ("id", "at", "person_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    PERSON_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    at: _timestamp_pb2.Timestamp
    person_json: str
    def __init__(self, id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., person_json: _Optional[str] = ...) -> None: ...

class SendBatchRequest(_message.Message):
    __slots__ = ("context", "sends")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    SENDS_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    sends: _containers.RepeatedCompositeFieldContainer[SendRequest]
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., sends: _Optional[_Iterable[_Union[SendRequest, _Mapping]]] = ...) -> None: ...

class SendBatchReply(_message.Message):
    __slots__ = ("deliveries",)
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("channel", "provider", "outcome", "reason", "at")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    channel: str
    provider: str
    outcome: str
    reason: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, channel: _Optional[str] = ..., provider: _Optional[str] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("id", "idempotency_key", "profile_id", "status", "channel", "provider", "provider_message_id", "reason", "rule", "deferred_until", "next_allowed_at", "consent_json", "attempts", "template_id", "template_version", "advertising", "journey_id", "node_id", "created_at", "updated_at", "journey_version", "variant")
    ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    DEFERRED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    NEXT_ALLOWED_AT_FIELD_NUMBER: _ClassVar[int]
    CONSENT_JSON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADVERTISING_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    idempotency_key: str
    profile_id: str
    status: str
    channel: str
    provider: str
    provider_message_id: str
    reason: str
    rule: str
    deferred_until: _timestamp_pb2.Timestamp
    next_allowed_at: _timestamp_pb2.Timestamp
    consent_json: str
    attempts: _containers.RepeatedCompositeFieldContainer[Attempt]
    template_id: str
    template_version: int
    advertising: bool
    journey_id: str
    node_id: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    journey_version: int
    variant: str
    def __init__(self, id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., profile_id: _Optional[str] = ..., status: _Optional[str] = ..., channel: _Optional[str] = ..., provider: _Optional[str] = ..., provider_message_id: _Optional[str] = ..., reason: _Optional[str] = ..., rule: _Optional[str] = ..., deferred_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_allowed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., consent_json: _Optional[str] = ..., attempts: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., template_id: _Optional[str] = ..., template_version: _Optional[int] = ..., advertising: _Optional[bool] = ..., journey_id: _Optional[str] = ..., node_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., journey_version: _Optional[int] = ..., variant: _Optional[str] = ...) -> None: ...

class Template(_message.Message):
    __slots__ = ("id", "name", "version", "channels_json", "created_at", "variables")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    version: int
    channels_json: str
    created_at: _timestamp_pb2.Timestamp
    variables: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., channels_json: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., variables: _Optional[_Iterable[str]] = ...) -> None: ...

class PutTemplateRequest(_message.Message):
    __slots__ = ("context", "id", "name", "channels_json")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_JSON_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    id: str
    name: str
    channels_json: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., id: _Optional[str] = ..., name: _Optional[str] = ..., channels_json: _Optional[str] = ...) -> None: ...

class GetTemplateRequest(_message.Message):
    __slots__ = ("context", "id", "version")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    id: str
    version: int
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ...) -> None: ...

class ListTemplatesReply(_message.Message):
    __slots__ = ("templates",)
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[Template]
    def __init__(self, templates: _Optional[_Iterable[_Union[Template, _Mapping]]] = ...) -> None: ...

class DeleteTemplateRequest(_message.Message):
    __slots__ = ("context", "id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., id: _Optional[str] = ...) -> None: ...

class DeleteTemplateReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChannelConfig(_message.Message):
    __slots__ = ("channel", "provider", "config_json", "updated_at")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    channel: str
    provider: str
    config_json: str
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, channel: _Optional[str] = ..., provider: _Optional[str] = ..., config_json: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PutChannelConfigRequest(_message.Message):
    __slots__ = ("context", "channel", "provider", "config_json")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    channel: str
    provider: str
    config_json: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., channel: _Optional[str] = ..., provider: _Optional[str] = ..., config_json: _Optional[str] = ...) -> None: ...

class ListChannelConfigsRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ...) -> None: ...

class ListChannelConfigsReply(_message.Message):
    __slots__ = ("configs",)
    CONFIGS_FIELD_NUMBER: _ClassVar[int]
    configs: _containers.RepeatedCompositeFieldContainer[ChannelConfig]
    def __init__(self, configs: _Optional[_Iterable[_Union[ChannelConfig, _Mapping]]] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("policy_json",)
    POLICY_JSON_FIELD_NUMBER: _ClassVar[int]
    policy_json: str
    def __init__(self, policy_json: _Optional[str] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ...) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ("context", "policy_json", "merge_patch")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    POLICY_JSON_FIELD_NUMBER: _ClassVar[int]
    MERGE_PATCH_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    policy_json: str
    merge_patch: bool
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., policy_json: _Optional[str] = ..., merge_patch: _Optional[bool] = ...) -> None: ...

class GetDeliveryRequest(_message.Message):
    __slots__ = ("context", "id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., id: _Optional[str] = ...) -> None: ...

class ListDeliveriesRequest(_message.Message):
    __slots__ = ("context", "profile_id", "page")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    profile_id: str
    page: _common_pb2.PageRequest
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., profile_id: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListDeliveriesReply(_message.Message):
    __slots__ = ("deliveries", "next_cursor")
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    next_cursor: str
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class InAppMessage(_message.Message):
    __slots__ = ("id", "delivery_id", "title", "body", "url", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    delivery_id: str
    title: str
    body: str
    url: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., delivery_id: _Optional[str] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., url: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FetchInAppRequest(_message.Message):
    __slots__ = ("context", "profile_id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    profile_id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., profile_id: _Optional[str] = ...) -> None: ...

class FetchInAppReply(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[InAppMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[InAppMessage, _Mapping]]] = ...) -> None: ...

class MarkInAppSeenRequest(_message.Message):
    __slots__ = ("context", "profile_id", "ids")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    profile_id: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., profile_id: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class MarkInAppSeenReply(_message.Message):
    __slots__ = ("marked",)
    MARKED_FIELD_NUMBER: _ClassVar[int]
    marked: int
    def __init__(self, marked: _Optional[int] = ...) -> None: ...

class RecordReceiptRequest(_message.Message):
    __slots__ = ("context", "provider", "payload_json")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    provider: str
    payload_json: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., provider: _Optional[str] = ..., payload_json: _Optional[str] = ...) -> None: ...

class RecordReceiptReply(_message.Message):
    __slots__ = ("updated",)
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    updated: int
    def __init__(self, updated: _Optional[int] = ...) -> None: ...

class RecordEngagementRequest(_message.Message):
    __slots__ = ("context", "token", "kind", "user_agent", "ip", "request_id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    token: str
    kind: str
    user_agent: str
    ip: str
    request_id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., token: _Optional[str] = ..., kind: _Optional[str] = ..., user_agent: _Optional[str] = ..., ip: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RecordEngagementReply(_message.Message):
    __slots__ = ("url", "delivery_id", "recorded")
    URL_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    url: str
    delivery_id: str
    recorded: bool
    def __init__(self, url: _Optional[str] = ..., delivery_id: _Optional[str] = ..., recorded: _Optional[bool] = ...) -> None: ...

class CheckEngagementTokenRequest(_message.Message):
    __slots__ = ("context", "token", "kind")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    token: str
    kind: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., token: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class CheckEngagementTokenReply(_message.Message):
    __slots__ = ("delivery_id", "channel", "category")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    channel: str
    category: str
    def __init__(self, delivery_id: _Optional[str] = ..., channel: _Optional[str] = ..., category: _Optional[str] = ...) -> None: ...

class RecordInAppEngagementRequest(_message.Message):
    __slots__ = ("context", "delivery_id", "profile_id", "kind", "user_agent", "ip", "request_id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    delivery_id: str
    profile_id: str
    kind: str
    user_agent: str
    ip: str
    request_id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., delivery_id: _Optional[str] = ..., profile_id: _Optional[str] = ..., kind: _Optional[str] = ..., user_agent: _Optional[str] = ..., ip: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...
