"""What the routes answer, declared for the OpenAPI document (and checked against real answers
by tests/gateway/test_openapi_conformance.py). Routes still build their answers as dicts;
`answer(Model)` puts the model in the route's `responses`, so nothing is filtered at run time."""

from typing import Any

from pydantic import BaseModel

Json = Any  # free-form JSON a caller gave (rules, definitions, traits, a policy): as given


def answer(model: type[BaseModel], status: int = 200) -> dict[int, dict]:
    return {status: {"model": model}}


class Accepted(BaseModel):
    success: bool
    outcome: str


class BatchRejected(BaseModel):
    index: int
    field: str
    reason: str


class BatchAccepted(BaseModel):
    success: bool
    stored: int
    duplicates: int
    rejected: list[BatchRejected]


class Identity(BaseModel):
    type: str
    value: str
    firstSeen: str


class Profile(BaseModel):
    id: str
    identities: list[Identity]
    traits: dict[str, Json]
    consent: dict[str, dict[str, Json]]
    createdAt: str
    lastSeenAt: str | None
    mergedIds: list[str]


class Profiles(BaseModel):
    profiles: list[Profile]


class Events(BaseModel):
    events: list[dict[str, Json]]
    nextCursor: str | None


class Erased(BaseModel):
    deleted: bool
    eventsErased: int


class IdentityPolicy(BaseModel):
    uniqueIdentifiers: list[str]


class AuditEntry(BaseModel):
    at: str
    service: str
    keyId: str
    action: str
    target: str | None
    profileId: str | None
    detail: dict[str, Json]


class Audit(BaseModel):
    entries: list[AuditEntry]
    nextCursor: str | None


class Backfill(BaseModel):
    state: str
    done: int
    total: int
    version: int
    startedAt: str | None
    finishedAt: str | None


class Segment(BaseModel):
    id: str
    name: str
    description: str
    rules: Json
    version: int
    createdAt: str | None
    updatedAt: str | None
    backfill: Backfill


class Segments(BaseModel):
    segments: list[Segment]
    nextCursor: str | None


class Preview(BaseModel):
    count: int
    total: int
    sample: list[str]


class ConditionExplained(BaseModel):
    path: str
    condition: Json
    satisfied: bool
    value: Json
    reason: str


class Explained(BaseModel):
    member: bool
    profileId: str
    conditions: list[ConditionExplained]
    nextChange: str | None


class MemberCount(BaseModel):
    count: int
    version: int
    backfill: Backfill


class Member(BaseModel):
    profileId: str
    since: str
    version: int


class Members(BaseModel):
    members: list[Member]
    nextCursor: str | None


class Membership(BaseModel):
    member: bool
    profileId: str


class RfmSettings(BaseModel):
    orderEvent: str
    revenueProperty: str


class Attempt(BaseModel):
    channel: str
    provider: str | None
    outcome: str
    reason: str | None
    at: str | None


class Delivery(BaseModel):
    id: str
    idempotencyKey: str
    profileId: str
    status: str
    channel: str | None
    provider: str | None
    reason: str | None
    consent: dict[str, Json]
    attempts: list[Attempt]
    templateId: str
    advertising: bool
    createdAt: str | None
    updatedAt: str | None


class Deliveries(BaseModel):
    deliveries: list[Delivery]
    nextCursor: str | None


class Template(BaseModel):
    id: str
    name: str
    version: int
    channels: dict[str, Json]
    variables: list[str]
    createdAt: str | None


class Templates(BaseModel):
    templates: list[Template]


class ChannelConfig(BaseModel):
    channel: str
    provider: str
    config: dict[str, Json]
    updatedAt: str | None


class ChannelConfigs(BaseModel):
    channels: list[ChannelConfig]


class ReceiptUrl(BaseModel):
    url: str


class ReceiptsRecorded(BaseModel):
    updated: int


class Journey(BaseModel):
    id: str
    name: str
    description: str
    status: str
    version: int
    definition: Json
    createdAt: str | None
    updatedAt: str | None


class Journeys(BaseModel):
    journeys: list[Journey]


class Run(BaseModel):
    id: str
    journeyId: str
    version: int
    profileId: str
    status: str
    nodeId: str | None
    variant: str | None
    endReason: str | None
    enteredAt: str | None
    endedAt: str | None
    nextAt: str | None


class Runs(BaseModel):
    runs: list[Run]


class Step(BaseModel):
    seq: int
    nodeId: str | None
    kind: str
    outcome: str | None
    detail: Json
    at: str | None


class RunWithSteps(Run):
    steps: list[Step]


class NodeStats(BaseModel):
    nodeId: str
    reached: int
    waiting: int
    outcomes: dict[str, int]


class JourneyStats(BaseModel):
    journeyId: str
    entered: int
    active: int
    converted: int
    exited: int
    completed: int
    nodes: list[NodeStats]


class Version(BaseModel):
    version: int
    definition: Json
    publishedAt: str | None


class Versions(BaseModel):
    versions: list[Version]


class SimulatedStep(BaseModel):
    at: str | None
    nodeId: str | None
    kind: str
    outcome: str | None
    channel: str | None
    templateId: str | None
    reason: str | None
    detail: Json


class Simulation(BaseModel):
    steps: list[SimulatedStep]
    endStatus: str
    endReason: str | None
    endedAt: str | None


class Starter(BaseModel):
    id: str
    name: str
    description: str
    source: str
    templates: list[dict[str, Json]]
    segments: list[dict[str, Json]]
    definition: Json


class Starters(BaseModel):
    journeyTemplates: list[Starter]
