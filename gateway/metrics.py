"""Metrics with the admin key: counts and rates by any dimension (also the time series of
charts, grouped by day), a journey's experiment and funnel, customer value, data quality,
and the workspace's order and attribution settings."""

from collections.abc import Awaitable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from grpc import aio
from pydantic import BaseModel, Field

from gateway import auth
from gateway.edge import AwareMoment, CheckedRoute
from gateway.errors import ADMIN_ERRORS, from_rpc
from gateway.rpc import context_of, rpc, time_json
from gateway.workspaces import Principal
from kit.transport import timestamp
from nudge.metrics.v1 import metrics_pb2 as pb

router = APIRouter(tags=["metrics"], route_class=CheckedRoute, responses=ADMIN_ERRORS)
Admin = Annotated[Principal, Depends(auth.admin)]
T = TypeVar("T")

# What stats can be grouped by (the metrics service's dimensions).
GROUP_BY = ("journey", "version", "node", "variant", "channel", "template", "day")
# A journey version travels as int32; absent = every version.
Version = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="one version; default every version")]
From = Annotated[AwareMoment | None, Query(alias="from", description="inclusive; default the beginning")]
Until = Annotated[AwareMoment | None, Query(description="exclusive; default now")]
# The service's names of settings fields → the names of this API.
_SETTINGS_FIELDS = {"settings.order_event": "orderEvent", "settings.revenue_property": "revenueProperty",
                    "settings.attribution_window": "attributionWindow"}


class SettingsIn(BaseModel):
    # Their length is the metrics service's to check (200 characters), naming the field.
    orderEvent: str = Field(..., min_length=1, description="the event that is an order, e.g. Order Completed")
    revenueProperty: str = Field(..., min_length=1, description="its revenue property, e.g. revenue")
    attributionWindow: str = Field("P3D", max_length=40,
                                   description="ISO-8601 duration from a minute to 90 days: an order "
                                               "counts for the last message sent within it")


async def _metrics(reply: Awaitable[T], fields: dict[str, str] | None = None) -> T:
    """The reply of a call to the metrics service; `fields` renames the fields its errors name to ours."""
    try:
        return await reply
    except aio.AioRpcError as err:
        error = from_rpc(err)
        field = error.details.get("field")
        if fields and field in fields:
            error.details = {"field": fields[field]}
            error.message = error.message.replace(field, fields[field], 1)
        raise error from None


def _group_by(values: list[str]) -> list[str]:
    """Repeated and/or comma-separated dimensions, in order, once each."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in GROUP_BY]
    if unknown:
        raise RequestValidationError([{"loc": ("query", "groupBy"), "type": "enum",
                                       "msg": f"unknown {', '.join(unknown)}; expected any of {', '.join(GROUP_BY)}"}])
    return list(dict.fromkeys(names))


def _counts_json(c: pb.Counts) -> dict:
    return {"sent": c.sent, "delivered": c.delivered, "failed": c.failed, "suppressed": c.suppressed,
            "suppressedByReason": dict(c.suppressed_by_reason), "deferred": c.deferred, "opened": c.opened,
            "machineOpened": c.machine_opened, "impressions": c.impressions, "clicked": c.clicked, "clicks": c.clicks,
            "unsubscribed": c.unsubscribed, "converted": c.converted, "revenue": c.revenue,
            "deliveryRate": c.delivery_rate, "openRate": c.open_rate, "clickRate": c.click_rate,
            "clickToOpenRate": c.click_to_open_rate, "conversionRate": c.conversion_rate,
            "unsubscribeRate": c.unsubscribe_rate}


def _group_json(group) -> dict:
    return {name: int(value) if name == "version" else value for name, value in group.items()}


def _buckets(buckets) -> list[dict]:
    return [{"label": b.label, "profiles": b.profiles} for b in buckets]


def _settings_json(s: pb.Settings) -> dict:
    return {"orderEvent": s.order_event, "revenueProperty": s.revenue_property,
            "attributionWindow": s.attribution_window}


@router.get("/v1/metrics/stats", summary="Counts and rates, one row per group (groupBy=day: a time series)")
async def get_stats(
        request: Request, principal: Admin, journeyId: str = "", version: Version = None, nodeId: str = "",
        variant: str = "", channel: str = "", templateId: str = "", since: From = None, until: Until = None,
        groupBy: Annotated[list[str], Query(description=f"repeated or comma-separated: any of {', '.join(GROUP_BY)}; "
                                                        "none = one total row")] = []) -> dict:
    group_by = _group_by(groupBy)
    selected = pb.Filter(journey_id=journeyId, journey_version=version or 0, node_id=nodeId, variant=variant,
                         channel=channel, template_id=templateId)
    if since is not None:
        getattr(selected, "from").CopyFrom(timestamp(since))
    if until is not None:
        selected.until.CopyFrom(timestamp(until))
    reply = await _metrics(rpc(request).metrics.GetStats(pb.StatsRequest(
        context=context_of(principal), filter=selected, group_by=group_by)))
    return {"rows": [{"group": _group_json(r.group), "counts": _counts_json(r.counts)} for r in reply.rows]}


@router.get("/v1/journeys/{journey_id}/experiment",
            summary="Per variant of the journey's split: conversion, and lift over the control and the holdout")
async def get_experiment(
        journey_id: str, request: Request, principal: Admin, version: Version = None,
        control: Annotated[str, Query(description="the variant the others are compared with")] = "a",
        confidence: Annotated[float, Query(description="confidence level, 0.5 to below 1")] = 0.95) -> dict:
    reply = await _metrics(rpc(request).metrics.GetExperiment(pb.ExperimentRequest(
        context=context_of(principal), journey_id=journey_id, journey_version=version or 0, control=control,
        confidence=confidence)))
    return {"variants": [{
        "variant": v.variant, "runs": v.runs, "conversions": v.conversions, "rate": v.rate, "revenue": v.revenue,
        "comparisons": [{"against": c.against, "lift": c.lift, "relativeLift": c.relative_lift, "pValue": c.p_value,
                         "z": c.z, "ciLow": c.ci_low, "ciHigh": c.ci_high, "significant": c.significant}
                        for c in v.comparisons]} for v in reply.variants]}


@router.get("/v1/journeys/{journey_id}/funnel", summary="Entered, each node in the order runs reached it, converted")
async def get_funnel(journey_id: str, request: Request, principal: Admin, version: Version = None) -> dict:
    reply = await _metrics(rpc(request).metrics.GetFunnel(pb.FunnelRequest(
        context=context_of(principal), journey_id=journey_id, journey_version=version or 0)))
    return {"stages": [{"stage": s.stage, "runs": s.runs, "ofEntered": s.of_entered} for s in reply.stages]}


@router.get("/v1/profiles/{profile_id}/value", summary="A profile's orders, revenue, RFM scores and churn risk")
async def get_customer_value(profile_id: str, request: Request, principal: Admin) -> dict:
    v = await _metrics(rpc(request).metrics.GetCustomerValue(pb.CustomerValueRequest(
        context=context_of(principal), profile_id=profile_id)))
    return {"profileId": v.profile_id, "orders": v.orders, "revenue": v.revenue,
            "averageOrderValue": v.average_order_value,
            "daysSinceLastOrder": v.days_since_last_order if v.days_since_last_order >= 0 else None,
            "recencyScore": v.recency_score, "frequencyScore": v.frequency_score, "monetaryScore": v.monetary_score,
            "churnRisk": v.churn_risk, "firstOrderAt": time_json(v, "first_order_at"),
            "lastOrderAt": time_json(v, "last_order_at")}


@router.get("/v1/metrics/customer-value", summary="The workspace's distributions of customer value")
async def get_value_distribution(request: Request, principal: Admin) -> dict:
    d = await _metrics(rpc(request).metrics.GetValueDistribution(
        pb.ValueDistributionRequest(context=context_of(principal))))
    return {"customers": d.customers, "revenue": d.revenue, "averageOrderValue": d.average_order_value,
            "repeatRate": d.repeat_rate, "orders": _buckets(d.orders), "revenueBuckets": _buckets(d.revenue_buckets),
            "recency": _buckets(d.recency), "churnRisk": _buckets(d.churn_risk)}


@router.get("/v1/metrics/data-quality", summary="Ingest and reach problems per day")
async def get_data_quality(request: Request, principal: Admin, since: From = None, until: Until = None) -> dict:
    message = pb.DataQualityRequest(context=context_of(principal))
    if since is not None:
        getattr(message, "from").CopyFrom(timestamp(since))
    if until is not None:
        message.until.CopyFrom(timestamp(until))
    reply = await _metrics(rpc(request).metrics.GetDataQuality(message))
    return {"days": [{"day": d.day, "events": d.events, "duplicatesDropped": d.duplicates_dropped,
                      "erasedDropped": d.erased_dropped,
                      "rejectedByReason": dict(d.rejected_by_reason),
                      "missingContactByChannel": dict(d.missing_contact_by_channel),
                      "ingestLagP50Seconds": d.ingest_lag_p50_seconds,
                      "ingestLagP95Seconds": d.ingest_lag_p95_seconds} for d in reply.days]}


@router.get("/v1/metrics/settings", summary="Which event is an order, and the attribution window")
async def get_settings(request: Request, principal: Admin) -> dict:
    return _settings_json(await _metrics(rpc(request).metrics.GetSettings(
        pb.GetSettingsRequest(context=context_of(principal)))))


@router.put("/v1/metrics/settings", summary="Set which event is an order, and the attribution window")
async def set_settings(body: SettingsIn, request: Request, principal: Admin) -> dict:
    return _settings_json(await _metrics(rpc(request).metrics.SetSettings(pb.SetSettingsRequest(
        context=context_of(principal), settings=pb.Settings(
            order_event=body.orderEvent, revenue_property=body.revenueProperty,
            attribution_window=body.attributionWindow))), _SETTINGS_FIELDS))
