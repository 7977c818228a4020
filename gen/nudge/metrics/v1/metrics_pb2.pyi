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

class Filter(_message.Message):
    __slots__ = ("journey_id", "journey_version", "node_id", "variant", "channel", "template_id", "until")
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    journey_id: str
    journey_version: int
    node_id: str
    variant: str
    channel: str
    template_id: str
    until: _timestamp_pb2.Timestamp
    def __init__(self, journey_id: _Optional[str] = ..., journey_version: _Optional[int] = ..., node_id: _Optional[str] = ..., variant: _Optional[str] = ..., channel: _Optional[str] = ..., template_id: _Optional[str] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., **kwargs) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("context", "filter", "group_by")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    filter: Filter
    group_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., group_by: _Optional[_Iterable[str]] = ...) -> None: ...

class Counts(_message.Message):
    __slots__ = ("sent", "delivered", "failed", "suppressed", "suppressed_by_reason", "deferred", "opened", "machine_opened", "clicked", "clicks", "unsubscribed", "converted", "revenue", "delivery_rate", "open_rate", "click_rate", "click_to_open_rate", "conversion_rate", "unsubscribe_rate", "impressions")
    class SuppressedByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    DEFERRED_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    MACHINE_OPENED_FIELD_NUMBER: _ClassVar[int]
    CLICKED_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_RATE_FIELD_NUMBER: _ClassVar[int]
    OPEN_RATE_FIELD_NUMBER: _ClassVar[int]
    CLICK_RATE_FIELD_NUMBER: _ClassVar[int]
    CLICK_TO_OPEN_RATE_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBE_RATE_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    sent: int
    delivered: int
    failed: int
    suppressed: int
    suppressed_by_reason: _containers.ScalarMap[str, int]
    deferred: int
    opened: int
    machine_opened: int
    clicked: int
    clicks: int
    unsubscribed: int
    converted: int
    revenue: float
    delivery_rate: float
    open_rate: float
    click_rate: float
    click_to_open_rate: float
    conversion_rate: float
    unsubscribe_rate: float
    impressions: int
    def __init__(self, sent: _Optional[int] = ..., delivered: _Optional[int] = ..., failed: _Optional[int] = ..., suppressed: _Optional[int] = ..., suppressed_by_reason: _Optional[_Mapping[str, int]] = ..., deferred: _Optional[int] = ..., opened: _Optional[int] = ..., machine_opened: _Optional[int] = ..., clicked: _Optional[int] = ..., clicks: _Optional[int] = ..., unsubscribed: _Optional[int] = ..., converted: _Optional[int] = ..., revenue: _Optional[float] = ..., delivery_rate: _Optional[float] = ..., open_rate: _Optional[float] = ..., click_rate: _Optional[float] = ..., click_to_open_rate: _Optional[float] = ..., conversion_rate: _Optional[float] = ..., unsubscribe_rate: _Optional[float] = ..., impressions: _Optional[int] = ...) -> None: ...

class StatsRow(_message.Message):
    __slots__ = ("group", "counts")
    class GroupEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GROUP_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    group: _containers.ScalarMap[str, str]
    counts: Counts
    def __init__(self, group: _Optional[_Mapping[str, str]] = ..., counts: _Optional[_Union[Counts, _Mapping]] = ...) -> None: ...

class StatsReply(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[StatsRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[StatsRow, _Mapping]]] = ...) -> None: ...

class ExperimentRequest(_message.Message):
    __slots__ = ("context", "journey_id", "journey_version", "control", "confidence")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    journey_id: str
    journey_version: int
    control: str
    confidence: float
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., journey_id: _Optional[str] = ..., journey_version: _Optional[int] = ..., control: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("against", "lift", "relative_lift", "p_value", "z", "ci_low", "ci_high", "significant")
    AGAINST_FIELD_NUMBER: _ClassVar[int]
    LIFT_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_LIFT_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    against: str
    lift: float
    relative_lift: float
    p_value: float
    z: float
    ci_low: float
    ci_high: float
    significant: bool
    def __init__(self, against: _Optional[str] = ..., lift: _Optional[float] = ..., relative_lift: _Optional[float] = ..., p_value: _Optional[float] = ..., z: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., significant: _Optional[bool] = ...) -> None: ...

class VariantResult(_message.Message):
    __slots__ = ("variant", "runs", "conversions", "rate", "revenue", "comparisons")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    variant: str
    runs: int
    conversions: int
    rate: float
    revenue: float
    comparisons: _containers.RepeatedCompositeFieldContainer[Comparison]
    def __init__(self, variant: _Optional[str] = ..., runs: _Optional[int] = ..., conversions: _Optional[int] = ..., rate: _Optional[float] = ..., revenue: _Optional[float] = ..., comparisons: _Optional[_Iterable[_Union[Comparison, _Mapping]]] = ...) -> None: ...

class ExperimentReply(_message.Message):
    __slots__ = ("variants",)
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    variants: _containers.RepeatedCompositeFieldContainer[VariantResult]
    def __init__(self, variants: _Optional[_Iterable[_Union[VariantResult, _Mapping]]] = ...) -> None: ...

class FunnelRequest(_message.Message):
    __slots__ = ("context", "journey_id", "journey_version")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    journey_id: str
    journey_version: int
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., journey_id: _Optional[str] = ..., journey_version: _Optional[int] = ...) -> None: ...

class FunnelStage(_message.Message):
    __slots__ = ("stage", "runs", "of_entered")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    OF_ENTERED_FIELD_NUMBER: _ClassVar[int]
    stage: str
    runs: int
    of_entered: float
    def __init__(self, stage: _Optional[str] = ..., runs: _Optional[int] = ..., of_entered: _Optional[float] = ...) -> None: ...

class FunnelReply(_message.Message):
    __slots__ = ("stages",)
    STAGES_FIELD_NUMBER: _ClassVar[int]
    stages: _containers.RepeatedCompositeFieldContainer[FunnelStage]
    def __init__(self, stages: _Optional[_Iterable[_Union[FunnelStage, _Mapping]]] = ...) -> None: ...

class CustomerValueRequest(_message.Message):
    __slots__ = ("context", "profile_id")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    profile_id: str
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., profile_id: _Optional[str] = ...) -> None: ...

class CustomerValue(_message.Message):
    __slots__ = ("profile_id", "orders", "revenue", "average_order_value", "days_since_last_order", "recency_score", "frequency_score", "monetary_score", "churn_risk", "first_order_at", "last_order_at")
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_ORDER_VALUE_FIELD_NUMBER: _ClassVar[int]
    DAYS_SINCE_LAST_ORDER_FIELD_NUMBER: _ClassVar[int]
    RECENCY_SCORE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_SCORE_FIELD_NUMBER: _ClassVar[int]
    MONETARY_SCORE_FIELD_NUMBER: _ClassVar[int]
    CHURN_RISK_FIELD_NUMBER: _ClassVar[int]
    FIRST_ORDER_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ORDER_AT_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    orders: int
    revenue: float
    average_order_value: float
    days_since_last_order: int
    recency_score: int
    frequency_score: int
    monetary_score: int
    churn_risk: float
    first_order_at: _timestamp_pb2.Timestamp
    last_order_at: _timestamp_pb2.Timestamp
    def __init__(self, profile_id: _Optional[str] = ..., orders: _Optional[int] = ..., revenue: _Optional[float] = ..., average_order_value: _Optional[float] = ..., days_since_last_order: _Optional[int] = ..., recency_score: _Optional[int] = ..., frequency_score: _Optional[int] = ..., monetary_score: _Optional[int] = ..., churn_risk: _Optional[float] = ..., first_order_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_order_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ValueDistributionRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ...) -> None: ...

class Bucket(_message.Message):
    __slots__ = ("label", "profiles")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    label: str
    profiles: int
    def __init__(self, label: _Optional[str] = ..., profiles: _Optional[int] = ...) -> None: ...

class ValueDistributionReply(_message.Message):
    __slots__ = ("customers", "revenue", "average_order_value", "repeat_rate", "orders", "revenue_buckets", "recency", "churn_risk")
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_ORDER_VALUE_FIELD_NUMBER: _ClassVar[int]
    REPEAT_RATE_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    RECENCY_FIELD_NUMBER: _ClassVar[int]
    CHURN_RISK_FIELD_NUMBER: _ClassVar[int]
    customers: int
    revenue: float
    average_order_value: float
    repeat_rate: float
    orders: _containers.RepeatedCompositeFieldContainer[Bucket]
    revenue_buckets: _containers.RepeatedCompositeFieldContainer[Bucket]
    recency: _containers.RepeatedCompositeFieldContainer[Bucket]
    churn_risk: _containers.RepeatedCompositeFieldContainer[Bucket]
    def __init__(self, customers: _Optional[int] = ..., revenue: _Optional[float] = ..., average_order_value: _Optional[float] = ..., repeat_rate: _Optional[float] = ..., orders: _Optional[_Iterable[_Union[Bucket, _Mapping]]] = ..., revenue_buckets: _Optional[_Iterable[_Union[Bucket, _Mapping]]] = ..., recency: _Optional[_Iterable[_Union[Bucket, _Mapping]]] = ..., churn_risk: _Optional[_Iterable[_Union[Bucket, _Mapping]]] = ...) -> None: ...

class DataQualityRequest(_message.Message):
    __slots__ = ("context", "until")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    until: _timestamp_pb2.Timestamp
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., **kwargs) -> None: ...

class DataQualityDay(_message.Message):
    __slots__ = ("day", "events", "duplicates_dropped", "rejected_by_reason", "missing_contact_by_channel", "ingest_lag_p50_seconds", "ingest_lag_p95_seconds", "erased_dropped")
    class RejectedByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class MissingContactByChannelEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DAY_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    MISSING_CONTACT_BY_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    INGEST_LAG_P50_SECONDS_FIELD_NUMBER: _ClassVar[int]
    INGEST_LAG_P95_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERASED_DROPPED_FIELD_NUMBER: _ClassVar[int]
    day: str
    events: int
    duplicates_dropped: int
    rejected_by_reason: _containers.ScalarMap[str, int]
    missing_contact_by_channel: _containers.ScalarMap[str, int]
    ingest_lag_p50_seconds: float
    ingest_lag_p95_seconds: float
    erased_dropped: int
    def __init__(self, day: _Optional[str] = ..., events: _Optional[int] = ..., duplicates_dropped: _Optional[int] = ..., rejected_by_reason: _Optional[_Mapping[str, int]] = ..., missing_contact_by_channel: _Optional[_Mapping[str, int]] = ..., ingest_lag_p50_seconds: _Optional[float] = ..., ingest_lag_p95_seconds: _Optional[float] = ..., erased_dropped: _Optional[int] = ...) -> None: ...

class DataQualityReply(_message.Message):
    __slots__ = ("days",)
    DAYS_FIELD_NUMBER: _ClassVar[int]
    days: _containers.RepeatedCompositeFieldContainer[DataQualityDay]
    def __init__(self, days: _Optional[_Iterable[_Union[DataQualityDay, _Mapping]]] = ...) -> None: ...

class Settings(_message.Message):
    __slots__ = ("order_event", "revenue_property", "attribution_window")
    ORDER_EVENT_FIELD_NUMBER: _ClassVar[int]
    REVENUE_PROPERTY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_WINDOW_FIELD_NUMBER: _ClassVar[int]
    order_event: str
    revenue_property: str
    attribution_window: str
    def __init__(self, order_event: _Optional[str] = ..., revenue_property: _Optional[str] = ..., attribution_window: _Optional[str] = ...) -> None: ...

class GetSettingsRequest(_message.Message):
    __slots__ = ("context",)
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ...) -> None: ...

class SetSettingsRequest(_message.Message):
    __slots__ = ("context", "settings")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    context: _common_pb2.RequestContext
    settings: Settings
    def __init__(self, context: _Optional[_Union[_common_pb2.RequestContext, _Mapping]] = ..., settings: _Optional[_Union[Settings, _Mapping]] = ...) -> None: ...
