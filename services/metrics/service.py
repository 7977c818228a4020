"""Metrics use cases: facts from the streams (idempotent by fact id), order attribution, and
the views — stats by any dimension, experiments, funnels, customer value, data quality."""

import re
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.clock import Clock
from kit.errors import InvalidArgument
from kit.payloads import Erased, Merged
from kit.streams import StreamEvent
from services.metrics import stats
from services.metrics.facts import Orders, fact_of
from services.metrics.models import audit_log
from services.metrics.repository import DIMENSIONS, MESSAGE_KINDS, MetricsRepository

DEFAULT_WINDOW = timedelta(days=3)
_DURATION = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?")
COUNTERS = (*MESSAGE_KINDS, "opened", "machine_opened", "impressions", "clicked", "clicks", "unsubscribed")


class MetricsService:
    def __init__(self, sessions: async_sessionmaker, clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    # -- the streams -------------------------------------------------------------------------
    async def handle(self, session: AsyncSession, batch: list[StreamEvent]) -> None:
        repo = MetricsRepository(session)
        configured = await repo.settings_of({e.workspace_id for e in batch})
        rows = []
        for event in batch:
            setting = configured.get(event.workspace_id)
            orders = Orders(setting.order_event, setting.revenue_property) if setting else Orders()
            if (row := fact_of(event, orders)) is not None:
                rows.append(row)
        # a fact of a profile merged or erased before it arrived goes where that profile went
        for workspace_id in {row["workspace_id"] for row in rows}:
            mine = [row for row in rows if row["workspace_id"] == workspace_id and row["profile_id"]]
            moved = await repo.moved(workspace_id, {row["profile_id"] for row in mine})
            for row in mine:
                row["profile_id"] = moved.get(row["profile_id"], row["profile_id"])
        new = await repo.insert_facts(rows)
        # orders and sends change attributions: recompute those of the profiles involved
        touched: dict[str, set[str]] = {}
        for row in rows:
            if row["id"] in new and row["kind"] in ("order", "sent") and row["profile_id"]:
                touched.setdefault(row["workspace_id"], set()).add(row["profile_id"])
        # after the facts of the batch, so a fact that came with its profile's merge or erasure moves too
        for event in batch:
            if isinstance(event.data, Merged):
                gone, survivor = event.data.merged_id, event.data.survivor_id
                await repo.move_profile(event.workspace_id, gone, survivor)
                touched.setdefault(event.workspace_id, set()).add(survivor)  # their orders meet their sends
            elif isinstance(event.data, Erased):
                await repo.move_profile(event.workspace_id, event.profile_id, "")
                touched.get(event.workspace_id, set()).discard(event.profile_id)
        for workspace_id, profile_ids in sorted(touched.items()):
            setting = configured.get(workspace_id)
            window = timedelta(seconds=setting.attribution_window_seconds) if setting else DEFAULT_WINDOW
            await repo.attribute(workspace_id, sorted(profile_ids), window)

    # -- settings ----------------------------------------------------------------------------
    async def get_settings(self, workspace_id: str) -> dict:
        async with self.sessions() as session:
            found = (await MetricsRepository(session).settings_of({workspace_id})).get(workspace_id)
        if found is None:
            return {"order_event": Orders.event, "revenue_property": Orders.revenue_property,
                    "attribution_window": "P3D"}
        return {"order_event": found.order_event, "revenue_property": found.revenue_property,
                "attribution_window": _iso(found.attribution_window_seconds)}

    async def set_settings(self, workspace_id: str, actor: str, order_event: str, revenue_property: str,
                           window: str) -> dict:
        for field, value in (("settings.order_event", order_event), ("settings.revenue_property", revenue_property)):
            if not value or len(value) > 200:
                raise InvalidArgument(f"{field}: expected 1 to 200 characters", field=field)
        seconds = _seconds(window or "P3D")
        async with self.sessions() as session, session.begin():
            await MetricsRepository(session).put_settings(dict(
                workspace_id=workspace_id, order_event=order_event, revenue_property=revenue_property,
                attribution_window_seconds=seconds))
            await audit_log.record(session, workspace_id, actor, "metrics_settings.update", detail={
                "order_event": order_event, "revenue_property": revenue_property, "attribution_window": _iso(seconds)})
        return await self.get_settings(workspace_id)

    async def export_profile(self, workspace_id: str, profile_ids: list[str]) -> dict:
        """A person's facts and attributed orders (GDPR export); after an erasure they count on
        for nobody (profile "") and are no longer theirs."""
        async with self.sessions() as session:
            return await MetricsRepository(session).held_about(workspace_id, profile_ids)

    # -- views -------------------------------------------------------------------------------
    async def stats(self, workspace_id: str, filters: dict, group_by: list[str]) -> list[dict]:
        for i, name in enumerate(group_by):
            if name not in DIMENSIONS:
                raise InvalidArgument(f"group_by[{i}]: expected one of {', '.join(DIMENSIONS)}",
                                      field=f"group_by[{i}]")
        group = list(dict.fromkeys(DIMENSIONS[g] for g in group_by))
        where = _where(filters)
        async with self.sessions() as session:
            repo = MetricsRepository(session)
            messages = await repo.message_counts(workspace_id, where, group)
            suppressed = await repo.suppressions(workspace_id, where, group)
            converted = await repo.conversions(workspace_id, where, group)
        rows: dict[tuple, dict] = {}

        def row(key: tuple) -> dict:
            return rows.setdefault(key, {**{c: 0 for c in COUNTERS}, "suppressed_by_reason": {},
                                         "converted": 0, "revenue": 0.0})

        width = len(group)
        for r in messages:
            counts = row(tuple(r[:width]))
            counts.update({c: getattr(r, c) for c in COUNTERS})
        for r in suppressed:
            row(tuple(r[:width]))["suppressed_by_reason"][r[width] or "unknown"] = r[width + 1]
        for r in converted:
            counts = row(tuple(r[:width]))
            counts["converted"], counts["revenue"] = r.converted, float(r.revenue)
        return [{"group": {name: str(value) for name, value in zip(group_by_names(group), key)},
                 "counts": counts | stats.rates(counts)} for key, counts in sorted(rows.items(), key=_sortable)]

    async def experiment(self, workspace_id: str, journey_id: str, version: int, control: str,
                         confidence: float) -> list[dict]:
        if not journey_id:
            raise InvalidArgument("journey_id: required", field="journey_id")
        confidence = confidence or 0.95
        if not 0.5 <= confidence < 1:
            raise InvalidArgument("confidence: expected a level from 0.5 to 0.999…", field="confidence")
        async with self.sessions() as session:
            found = await MetricsRepository(session).experiment(workspace_id, journey_id, version)
        by_variant = {v: (int(runs), int(conversions), float(revenue)) for v, runs, conversions, revenue in found}
        control = control or "a"
        results = []
        for variant, (runs, conversions, revenue) in by_variant.items():
            comparisons = [stats.compare(runs, conversions, *by_variant[baseline][:2], baseline, confidence)
                           for baseline in (control, "holdout") if baseline in by_variant and baseline != variant]
            results.append({"variant": variant, "runs": runs, "conversions": conversions,
                            "rate": conversions / runs if runs else 0.0, "revenue": revenue,
                            "comparisons": comparisons})
        return results

    async def funnel(self, workspace_id: str, journey_id: str, version: int) -> list[dict]:
        if not journey_id:
            raise InvalidArgument("journey_id: required", field="journey_id")
        async with self.sessions() as session:
            found = await MetricsRepository(session).funnel(workspace_id, journey_id, version)
        entered = next((runs for stage, runs, _ in found if stage == "entered"), 0)
        order = {"entered": 0, "converted": 2}
        stages = sorted(found, key=lambda r: (order.get(r[0], 1), r[2]))
        return [{"stage": stage, "runs": runs, "of_entered": runs / entered if entered else 0.0}
                for stage, runs, _ in stages]

    async def customer_value(self, workspace_id: str, actor: str, profile_id: str) -> dict:
        if not profile_id:
            raise InvalidArgument("profile_id: required", field="profile_id")
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            customers = await MetricsRepository(session).customers(workspace_id)
            await audit_log.record(session, workspace_id, actor, "customer_value.read", profile_id, profile_id)
        mine = next((c for c in customers if c[0] == profile_id), None)
        if mine is None:
            return {"profile_id": profile_id, "orders": 0, "revenue": 0.0, "average_order_value": 0.0,
                    "days_since_last_order": -1, "recency_score": 0, "frequency_score": 0, "monetary_score": 0,
                    "churn_risk": stats.churn_risk(0, 0, None), "first_order_at": None, "last_order_at": None}
        _, orders, revenue, first, last = mine
        recency_days = [(now - c[4]).total_seconds() / 86400 for c in customers]
        days_since = (now - last).total_seconds() / 86400
        between = (last - first).total_seconds() / 86400 / (orders - 1) if orders > 1 else None
        return {"profile_id": profile_id, "orders": orders, "revenue": float(revenue),
                "average_order_value": float(revenue) / orders, "days_since_last_order": int(days_since),
                # recent is good: score recency on the negated days so 5 is the most recent fifth
                "recency_score": stats.quintile(-days_since, _edges([-d for d in recency_days])),
                "frequency_score": stats.quintile(orders, _edges([c[1] for c in customers])),
                "monetary_score": stats.quintile(float(revenue), _edges([float(c[2]) for c in customers])),
                "churn_risk": stats.churn_risk(orders, days_since, between), "first_order_at": first,
                "last_order_at": last}

    async def distribution(self, workspace_id: str) -> dict:
        now = self.clock.now()
        async with self.sessions() as session:
            customers = await MetricsRepository(session).customers(workspace_id)
        orders = sum(c[1] for c in customers)
        revenue = sum(float(c[2]) for c in customers)
        risks = []
        for _, count, total, first, last in customers:
            between = (last - first).total_seconds() / 86400 / (count - 1) if count > 1 else None
            risks.append(stats.churn_risk(count, (now - last).total_seconds() / 86400, between))
        return {
            "customers": len(customers), "revenue": revenue,
            "average_order_value": revenue / orders if orders else 0.0,
            "repeat_rate": sum(c[1] >= 2 for c in customers) / len(customers) if customers else 0.0,
            "orders": _buckets([c[1] for c in customers], [(1, "1"), (2, "2"), (3, "3–4"), (5, "5–9"), (10, "10+")]),
            "revenue_buckets": _buckets([float(c[2]) for c in customers], [
                (0, "< 10,000"), (10_000, "10,000–49,999"), (50_000, "50,000–99,999"), (100_000, "100,000–499,999"),
                (500_000, "500,000+")]),
            "recency": _buckets([(now - c[4]).days for c in customers], [
                (0, "0–7 days"), (8, "8–30 days"), (31, "31–90 days"), (91, "91–180 days"), (181, "181+ days")]),
            "churn_risk": _buckets(risks, [(0, "low (< 0.3)"), (0.3, "medium (0.3–0.7)"), (0.7, "high (≥ 0.7)")]),
        }

    async def data_quality(self, workspace_id: str, since: datetime | None, until: datetime | None) -> list[dict]:
        async with self.sessions() as session:
            events, dropped, unreachable = await MetricsRepository(session).quality(workspace_id, since, until)
        days: dict = {}

        def day(d) -> dict:
            return days.setdefault(d, {"day": d.isoformat(), "events": 0, "duplicates_dropped": 0,
                                       "erased_dropped": 0, "rejected_by_reason": {}, "missing_contact_by_channel": {},
                                       "ingest_lag_p50_seconds": 0.0, "ingest_lag_p95_seconds": 0.0})

        for d, count, p50, p95 in events:
            day(d).update(events=count, ingest_lag_p50_seconds=p50 or 0.0, ingest_lag_p95_seconds=p95 or 0.0)
        for d, detail in dropped:
            entry = day(d)
            entry["duplicates_dropped"] += detail.get("duplicates", 0)
            entry["erased_dropped"] += detail.get("erased", 0)
            for reason, count in detail.get("rejected", {}).items():
                entry["rejected_by_reason"][reason] = entry["rejected_by_reason"].get(reason, 0) + count
        people: dict = {}  # (day, channel) → the profiles a send found no address for
        for d, profile_id, detail in unreachable:
            for channel in detail.get("unreachable", []):
                people.setdefault((d, channel), set()).add(profile_id)
        for (d, channel), profiles in people.items():
            day(d)["missing_contact_by_channel"][channel] = len(profiles)
        return [days[d] for d in sorted(days)]


def group_by_names(columns: list[str]) -> list[str]:
    names = {column: name for name, column in DIMENSIONS.items()}
    return [names[c] for c in columns]


def _where(filters: dict) -> list[tuple]:
    where = []
    for name, column in (("journey_id", "journey_id"), ("node_id", "node_id"), ("variant", "variant"),
                         ("channel", "channel"), ("template_id", "template_id")):
        if filters.get(name):
            where.append((column, "eq", filters[name]))
    if filters.get("journey_version"):
        where.append(("journey_version", "eq", filters["journey_version"]))
    if filters.get("from"):
        where.append(("at", "gte", filters["from"]))
    if filters.get("until"):
        where.append(("at", "lt", filters["until"]))
    return where


def _sortable(item):
    return tuple(str(v) for v in item[0])


def _edges(values: list[float]) -> list[float]:
    """The 20/40/60/80th percentiles of the workspace's customers."""
    ordered = sorted(values)
    return [ordered[min(len(ordered) - 1, int(len(ordered) * q / 5))] for q in range(1, 5)] if ordered else []


def _buckets(values: list[float], bounds: list[tuple[float, str]]) -> list[dict]:
    counts = [0] * len(bounds)
    for value in values:
        index = max(i for i, (low, _) in enumerate(bounds) if value >= low) if value >= bounds[0][0] else 0
        counts[index] += 1
    return [{"label": label, "profiles": count} for (_, label), count in zip(bounds, counts)]


def _seconds(duration: str) -> int:
    match = _DURATION.fullmatch(duration) if duration not in ("P", "PT") else None
    if match is None or not any(match.groups()):
        raise InvalidArgument("settings.attribution_window: expected an ISO-8601 duration like P3D or PT12H",
                              field="settings.attribution_window")
    weeks, days, hours, minutes = (int(g or 0) for g in match.groups())
    seconds = int(timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes).total_seconds())
    if not 0 < seconds <= 90 * 86400:
        raise InvalidArgument("settings.attribution_window: from a minute to 90 days",
                              field="settings.attribution_window")
    return seconds


def _iso(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    time_part = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return "P" + (f"{days}D" if days else "") + (f"T{time_part}" if time_part else "") if seconds else "PT0M"
