"""Stream events as facts: which kind each event is and which dimensions it carries. Pure:
the service stores what this returns. A fact's id is the stream event's id, so an event
delivered twice is one fact."""

from dataclasses import dataclass
from datetime import datetime

from kit.payloads import DeliveryOutcome, Dropped, Engagement, JourneyStep, Tracked
from kit.streams import StreamEvent
from kit.zones import SEOUL

# Delivery outcomes as dispatch announces them (delivery.<status>).
DELIVERY_KINDS = {"sent", "delivered", "failed", "suppressed", "deferred"}
ENGAGEMENT_KINDS = {"clicked": "clicked", "opened": "opened", "unsubscribed": "unsubscribed",
                    "impression": "impression", "inapp_clicked": "clicked"}


@dataclass(frozen=True)
class Orders:
    """Which events are orders in a workspace, and where their revenue is."""
    event: str = "Order Completed"
    revenue_property: str = "revenue"


def fact_of(event: StreamEvent, orders: Orders) -> dict | None:
    """The fact row an event makes, or None for events metrics does not count."""
    # every row has every column: a batch is one multi-row INSERT, whose columns are the first row's
    base = {"workspace_id": event.workspace_id, "id": event.id, "at": event.occurred_at,
            "day": day_of(event.occurred_at), "profile_id": event.profile_id or "", "journey_id": "",
            "journey_version": 0, "node_id": "", "variant": "", "channel": "", "template_id": "", "delivery_id": "",
            "run_id": "", "reason": "", "revenue": 0.0, "machine": False, "lag_seconds": None, "detail": None}
    match event.data:
        case DeliveryOutcome() as outcome if outcome.status in DELIVERY_KINDS:
            return base | _message_dims(outcome) | {
                "kind": outcome.status, "reason": outcome.rule or "",
                "detail": {"unreachable": outcome.unreachable} if outcome.unreachable else None}
        case Engagement() as fact if fact.kind in ENGAGEMENT_KINDS:
            return base | _message_dims(fact) | {
                "kind": ENGAGEMENT_KINDS[fact.kind], "machine": bool(fact.machine), "reason": fact.category or "",
                "detail": {k: v for k, v in (("link_id", fact.link_id), ("url", fact.url), ("utm", fact.utm))
                           if v is not None}}
        case JourneyStep() as step:
            return base | _run_dims(step) | _journey_kind(event.type.removeprefix("journey."), step)
        case Tracked() as tracked:
            fact = base | {"kind": "event", "reason": tracked.label, "lag_seconds": _lag(tracked.call)}
            if event.type == "event.track" and tracked.label == orders.event:
                fact |= {"kind": "order", "revenue": _number(tracked.properties.get(orders.revenue_property))}
            return fact
        case Dropped() as dropped:
            return base | {"kind": "dropped", "detail": {"duplicates": int(dropped.duplicates),
                                                        "rejected": dict(dropped.rejected),
                                                        "erased": int(dropped.erased)}}
    return None


def _message_dims(message: DeliveryOutcome | Engagement) -> dict:
    # a send decided before any channel was chosen announces none (null)
    return {"delivery_id": message.delivery_id or "", "channel": message.channel or "",
            "template_id": message.template_id or "", "journey_id": message.journey_id or "",
            "journey_version": int(message.journey_version or 0), "node_id": message.node_id or "",
            "variant": message.variant or ""}


def _run_dims(step: JourneyStep) -> dict:
    return {"journey_id": step.journey_id, "journey_version": int(step.version or 0), "node_id": step.node_id,
            "variant": step.variant, "run_id": step.run_id, "delivery_id": (step.detail or {}).get("delivery_id", "")}


def _journey_kind(kind: str, step: JourneyStep) -> dict:
    if kind == "entered":
        return {"kind": "entered"}
    if kind == "ended":  # converted | exited | completed
        return {"kind": step.kind or "completed", "reason": step.outcome}
    if step.kind == "split":  # the variant drawn at this step
        return {"kind": "split", "variant": step.outcome}
    return {"kind": "step", "reason": f"{step.kind}:{step.outcome}"}


def day_of(moment: datetime, zone=SEOUL):
    return moment.astimezone(zone).date()


def _number(value) -> float:
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            return 0.0
    return 0.0


def _lag(payload: dict) -> float | None:
    received, happened = payload.get("receivedAt"), payload.get("timestamp")
    if not (isinstance(received, str) and isinstance(happened, str)):
        return None
    try:
        return max(0.0, (datetime.fromisoformat(received) - datetime.fromisoformat(happened)).total_seconds())
    except ValueError:
        return None
