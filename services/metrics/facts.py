"""Stream events as facts: which kind each event is and which dimensions it carries. Pure:
the service stores what this returns. A fact's id is the stream event's id, so an event
delivered twice is one fact."""

from dataclasses import dataclass
from datetime import datetime

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
    family, _, kind = event.type.partition(".")
    payload = event.payload
    # every row has every column: a batch is one multi-row INSERT, whose columns are the first row's
    base = {"workspace_id": event.workspace_id, "id": event.id, "at": event.occurred_at,
            "day": day_of(event.occurred_at), "profile_id": event.profile_id or "", "journey_id": "",
            "journey_version": 0, "node_id": "", "variant": "", "channel": "", "template_id": "", "delivery_id": "",
            "run_id": "", "reason": "", "revenue": 0.0, "machine": False, "lag_seconds": None, "detail": None}
    if family == "delivery" and kind in DELIVERY_KINDS:
        return base | _message_dims(payload) | {
            "kind": kind, "reason": payload.get("rule") or "",
            # channels tried that had no address for the person: data quality's missing contacts
            "detail": {"unreachable": payload["unreachable"]} if payload.get("unreachable") else None}
    if family == "engagement" and kind in ENGAGEMENT_KINDS:
        return base | _message_dims(payload) | {
            "kind": ENGAGEMENT_KINDS[kind], "machine": bool(payload.get("machine")),
            "reason": payload.get("category") or "",
            "detail": {k: payload[k] for k in ("link_id", "url", "utm") if payload.get(k) is not None}}
    if family == "journey":
        return base | _run_dims(payload) | _journey_kind(kind, payload)
    if family == "event":
        name = payload.get("event") or payload.get("name") or payload.get("type", "")
        fact = base | {"kind": "event", "reason": name, "lag_seconds": _lag(payload)}
        if kind == "track" and name == orders.event:
            fact |= {"kind": "order", "revenue": _number((payload.get("properties") or {}).get(orders.revenue_property))}
        return fact
    if event.type == "ingest.dropped":
        return base | {"kind": "dropped", "detail": {"duplicates": int(payload.get("duplicates", 0)),
                                                    "rejected": dict(payload.get("rejected") or {})}}
    return None


def _message_dims(payload: dict) -> dict:
    return {"delivery_id": payload.get("delivery_id") or "", "channel": payload.get("channel") or "",
            "template_id": payload.get("template_id") or "", "journey_id": payload.get("journey_id") or "",
            "journey_version": int(payload.get("journey_version") or 0), "node_id": payload.get("node_id") or "",
            "variant": payload.get("variant") or ""}


def _run_dims(payload: dict) -> dict:
    return {"journey_id": payload.get("journey_id") or "", "journey_version": int(payload.get("version") or 0),
            "node_id": payload.get("node_id") or "", "variant": payload.get("variant") or "",
            "run_id": payload.get("run_id") or "", "delivery_id": (payload.get("detail") or {}).get("delivery_id", "")}


def _journey_kind(kind: str, payload: dict) -> dict:
    if kind == "entered":
        return {"kind": "entered"}
    if kind == "ended":  # converted | exited | completed
        return {"kind": payload.get("kind") or "completed", "reason": payload.get("outcome") or ""}
    if payload.get("kind") == "split":  # the variant drawn at this step
        return {"kind": "split", "variant": payload.get("outcome") or ""}
    return {"kind": "step", "reason": f"{payload.get('kind')}:{payload.get('outcome')}"}


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
