"""A send as asked (`SendSpec`), what it is decided on (`Setup`), a channel that passed every
rule (`Cleared`) and what it came to (`Outcome`): the shapes the send use case
(`service.py`), its decisions (`pipeline.py`) and the other use cases share."""

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson

from services.dispatch import fatigue
from services.dispatch.channels import Content
from services.dispatch.reach import Address

STRICT, FIRST_ALLOWED = "strict", "first_allowed"  # a send's channel order (SendSpec.order)


class TakenOver(Exception):
    """Another runner owns this send now (this one looked dead); this one stops."""


@dataclass
class SendSpec:
    idempotency_key: str
    profile_id: str
    channels: list[str]
    template_id: str
    advertising: bool = False
    transactional: bool = False
    journey_id: str = ""
    node_id: str = ""
    variables: dict = field(default_factory=dict)
    journey_version: int = 0
    variant: str = ""
    order: str = FIRST_ALLOWED   # a channel that must wait: strict waits, first_allowed tries the next


@dataclass
class Outcome:
    """What the pipeline decided, written to the delivery row in one transaction."""
    status: str
    channel: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    reason: str = ""
    rule: str = ""
    deferred_until: datetime | None = None
    next_allowed_at: datetime | None = None
    consent: dict = field(default_factory=dict)
    # An in-app message is stored in the transaction that records this outcome, with its links.
    inapp: Content | None = None
    links: list[str] | None = None


@dataclass(frozen=True)
class Setup:
    """What the workspace configured that a send is decided on."""
    template: Any              # the template row; None when it was deleted
    policy: dict
    configs: dict              # channel → channel config row
    limits: fatigue.Policy

    @property
    def template_version(self) -> int | None:
        return self.template.version if self.template else None


@dataclass(frozen=True)
class Cleared:
    """A channel that passed every rule, with the message rendered for it."""
    channel: str
    provider: str
    config: dict
    address: Address
    content: Content
    consent: dict              # the consent evidence the decision rests on


def request_hash(spec: SendSpec) -> str:
    """What makes two sends the same: everything asked but the key (JSON with sorted keys). A
    journey step's key names its run, node and step; the run's person can change only by a
    merge (the same person), so a step replayed for the survivor is not another send."""
    ignored = {"idempotency_key", "profile_id"} if spec.journey_id else {"idempotency_key"}
    asked = {k: v for k, v in asdict(spec).items() if k not in ignored}
    return hashlib.sha256(orjson.dumps(asked, option=orjson.OPT_SORT_KEYS)).hexdigest()
