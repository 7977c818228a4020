"""SQL of the metrics service: facts in, attribution kept current, and the aggregates the
views are made of."""

from datetime import datetime, timedelta

import orjson

from sqlalchemy import ARRAY, Text, and_, bindparam, case, distinct, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import rows_about
from services.metrics.models import attributions, facts, profile_moves, settings

# group_by names → columns (facts and attributions share their names)
DIMENSIONS = {"journey": "journey_id", "version": "journey_version", "node": "node_id", "variant": "variant",
              "channel": "channel", "template": "template_id", "day": "day"}
MESSAGE_KINDS = ("sent", "delivered", "failed", "suppressed", "deferred")
FACT_COLUMNS = (("workspace_id", "text"), ("id", "uuid"), ("kind", "text"), ("at", "timestamptz"), ("day", "date"),
                ("profile_id", "text"), ("journey_id", "text"), ("journey_version", "int"), ("node_id", "text"),
                ("variant", "text"), ("channel", "text"), ("template_id", "text"), ("delivery_id", "text"),
                ("run_id", "text"), ("reason", "text"), ("revenue", "float8"), ("machine", "bool"),
                ("lag_seconds", "float8"), ("detail", "text"))


class MetricsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_facts(self, rows: list[dict]) -> set:
        """The ids of the facts that were new (a replayed event inserts nothing). One array
        per column, so the statement is the same for every batch and not compiled again."""
        if not rows:
            return set()
        arrays = {name: [row[name] for row in rows] for name, _ in FACT_COLUMNS}
        arrays["detail"] = [None if d is None else orjson.dumps(d).decode() for d in arrays["detail"]]
        names = ", ".join(name for name, _ in FACT_COLUMNS)
        casts = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in FACT_COLUMNS)
        values = ", ".join("detail::jsonb" if name == "detail" else name for name, _ in FACT_COLUMNS)
        result = await self.session.execute(text(
            f"INSERT INTO facts ({names}) SELECT {values} "
            f"FROM unnest({casts}) AS u({names}) ON CONFLICT DO NOTHING RETURNING id"), arrays)
        return set(result.scalars())

    async def settings_of(self, workspace_ids: set[str]) -> dict:
        rows = await self.session.execute(select(settings).where(settings.c.workspace_id.in_(workspace_ids)))
        return {r.workspace_id: r for r in rows}

    async def put_settings(self, values: dict) -> None:
        stmt = insert(settings).values(**values)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[settings.c.workspace_id], set_={k: stmt.excluded[k] for k in values
                                                            if k != "workspace_id"}))

    # -- attribution -------------------------------------------------------------------------
    async def attribute(self, workspace_id: str, profile_ids: list[str], window: timedelta) -> None:
        """Every order of these profiles, attributed to the last message sent to them within
        `window` before it (or to none). Idempotent: the result depends only on the facts."""
        await self.session.execute(text(
            "INSERT INTO attributions (workspace_id, order_id, profile_id, at, day, revenue, delivery_id, sent_at,"
            "  journey_id, journey_version, node_id, variant, channel, template_id) "
            "SELECT o.workspace_id, o.id, o.profile_id, o.at, o.day, o.revenue, m.delivery_id, m.at, m.journey_id,"
            "  m.journey_version, m.node_id, m.variant, m.channel, m.template_id "
            "FROM facts AS o CROSS JOIN LATERAL ("
            "  SELECT s.delivery_id, s.at, s.journey_id, s.journey_version, s.node_id, s.variant, s.channel,"
            "    s.template_id FROM facts AS s"
            "  WHERE s.workspace_id = o.workspace_id AND s.profile_id = o.profile_id AND s.kind = 'sent'"
            "    AND s.at <= o.at AND s.at >= o.at - CAST(:window AS interval) ORDER BY s.at DESC LIMIT 1) AS m "
            "WHERE o.workspace_id = :workspace AND o.kind = 'order' AND o.profile_id = ANY(:profiles) "
            "ON CONFLICT (workspace_id, order_id) DO UPDATE SET delivery_id = EXCLUDED.delivery_id,"
            "  sent_at = EXCLUDED.sent_at, journey_id = EXCLUDED.journey_id,"
            "  journey_version = EXCLUDED.journey_version, node_id = EXCLUDED.node_id, variant = EXCLUDED.variant,"
            "  channel = EXCLUDED.channel, template_id = EXCLUDED.template_id "
            "WHERE attributions.sent_at < EXCLUDED.sent_at"),
            {"workspace": workspace_id, "profiles": profile_ids, "window": window})

    async def move_profile(self, workspace_id: str, source: str, target: str) -> None:
        """A merged profile's facts and attributions become the survivor's; an erased one's
        ("" as target) keep counting in every aggregate but name nobody. Recorded, so later
        facts of `source` (or of profiles merged into it) follow."""
        target = (await self.moved(workspace_id, {target})).get(target, target) if target else ""
        await self.session.execute(update(profile_moves).where(
            profile_moves.c.workspace_id == workspace_id, profile_moves.c.target == source).values(target=target))
        stmt = insert(profile_moves).values(workspace_id=workspace_id, profile_id=source, target=target)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[profile_moves.c.workspace_id, profile_moves.c.profile_id], set_={"target": target}))
        for table in (facts, attributions):
            await self.session.execute(update(table).where(
                table.c.workspace_id == workspace_id, table.c.profile_id == source).values(profile_id=target))

    async def moved(self, workspace_id: str, profile_ids: set[str]) -> dict[str, str]:
        """profile → where its facts go now, for those merged or erased."""
        rows = await self.session.execute(select(profile_moves.c.profile_id, profile_moves.c.target).where(
            profile_moves.c.workspace_id == workspace_id,
            profile_moves.c.profile_id == func.any(bindparam("ids", sorted(profile_ids), type_=ARRAY(Text)))))
        return dict(rows.all())

    async def held_about(self, workspace_id: str, profile_ids: list[str]) -> dict:
        """Everything kept about these profiles: their facts and their attributed orders."""
        return {"facts": await rows_about(self.session, facts, workspace_id, profile_ids, facts.c.at, facts.c.id),
                "attributed_orders": await rows_about(self.session, attributions, workspace_id, profile_ids,
                                                      attributions.c.at)}

    # -- views -------------------------------------------------------------------------------
    async def message_counts(self, workspace_id: str, where: list, group: list[str]) -> list:
        cols = [facts.c[c] for c in group]

        def count(kind: str, *more):
            return func.count().filter(and_(facts.c.kind == kind, *more))

        def distinct_deliveries(kind: str, machine: bool):
            return func.count(distinct(facts.c.delivery_id)).filter(and_(facts.c.kind == kind,
                                                                         facts.c.machine.is_(machine)))

        query = (select(*cols, *(count(k).label(k) for k in MESSAGE_KINDS),
                        distinct_deliveries("opened", False).label("opened"),
                        distinct_deliveries("opened", True).label("machine_opened"),
                        distinct_deliveries("impression", False).label("impressions"),
                        distinct_deliveries("clicked", False).label("clicked"),
                        count("clicked").label("clicks"), count("unsubscribed").label("unsubscribed"))
                 .where(facts.c.workspace_id == workspace_id, facts.c.delivery_id != "",
                        *_on(facts, where)).group_by(*cols))
        return list(await self.session.execute(query))

    async def suppressions(self, workspace_id: str, where: list, group: list[str]) -> list:
        cols = [facts.c[c] for c in group]
        return list(await self.session.execute(
            select(*cols, facts.c.reason, func.count()).where(
                facts.c.workspace_id == workspace_id, facts.c.kind == "suppressed", *_on(facts, where))
            .group_by(*cols, facts.c.reason)))

    async def conversions(self, workspace_id: str, where: list, group: list[str]) -> list:
        cols = [attributions.c[c] for c in group]
        return list(await self.session.execute(
            select(*cols, func.count().label("converted"), func.coalesce(func.sum(attributions.c.revenue), 0)
                   .label("revenue")).where(attributions.c.workspace_id == workspace_id, *_on(attributions, where))
            .group_by(*cols)))

    async def experiment(self, workspace_id: str, journey_id: str, version: int) -> list:
        """Per variant: runs that drew it, how many of those converted, their attributed revenue."""
        of_journey = [facts.c.workspace_id == workspace_id, facts.c.journey_id == journey_id]
        if version:
            of_journey.append(facts.c.journey_version == version)
        drawn = (select(facts.c.variant, func.count(distinct(facts.c.run_id)).label("runs"))
                 .where(*of_journey, facts.c.kind == "split").group_by(facts.c.variant).subquery())
        converted = (select(facts.c.variant, func.count(distinct(facts.c.run_id)).label("conversions"))
                     .where(*of_journey, facts.c.kind == "converted").group_by(facts.c.variant).subquery())
        revenue = (select(attributions.c.variant, func.sum(attributions.c.revenue).label("revenue"))
                   .where(attributions.c.workspace_id == workspace_id, attributions.c.journey_id == journey_id,
                          *([attributions.c.journey_version == version] if version else []))
                   .group_by(attributions.c.variant).subquery())
        return list(await self.session.execute(
            select(drawn.c.variant, drawn.c.runs, func.coalesce(converted.c.conversions, 0),
                   func.coalesce(revenue.c.revenue, 0))
            .select_from(drawn.outerjoin(converted, converted.c.variant == drawn.c.variant)
                         .outerjoin(revenue, revenue.c.variant == drawn.c.variant))
            .order_by(drawn.c.variant)))

    async def funnel(self, workspace_id: str, journey_id: str, version: int) -> list:
        """(stage, runs, first time reached) for entered, every node, and converted."""
        where = [facts.c.workspace_id == workspace_id, facts.c.journey_id == journey_id,
                 facts.c.kind.in_(("entered", "step", "split", "converted"))]
        if version:
            where.append(facts.c.journey_version == version)
        stage = case((facts.c.kind.in_(("entered", "converted")), facts.c.kind), else_=facts.c.node_id)
        return list(await self.session.execute(
            select(stage.label("stage"), func.count(distinct(facts.c.run_id)), func.min(facts.c.at))
            .where(*where).group_by(stage)))

    async def orders_of(self, workspace_id: str, profile_id: str) -> tuple:
        return (await self.session.execute(
            select(func.count(), func.coalesce(func.sum(facts.c.revenue), 0), func.min(facts.c.at),
                   func.max(facts.c.at)).where(facts.c.workspace_id == workspace_id,
                                               facts.c.profile_id == profile_id, facts.c.kind == "order"))).one()

    async def customers(self, workspace_id: str) -> list:
        """Per customer: orders, revenue, first and last order."""
        return list(await self.session.execute(
            select(facts.c.profile_id, func.count(), func.sum(facts.c.revenue), func.min(facts.c.at),
                   func.max(facts.c.at)).where(facts.c.workspace_id == workspace_id, facts.c.kind == "order",
                                               facts.c.profile_id != "")  # "": erased or never known
            .group_by(facts.c.profile_id)))

    async def quality(self, workspace_id: str, since: datetime | None, until: datetime | None) -> tuple[list, list, list]:
        where = [facts.c.workspace_id == workspace_id]
        if since is not None:
            where.append(facts.c.at >= since)
        if until is not None:
            where.append(facts.c.at < until)
        events = list(await self.session.execute(
            select(facts.c.day, func.count(),
                   func.percentile_cont(0.5).within_group(facts.c.lag_seconds),
                   func.percentile_cont(0.95).within_group(facts.c.lag_seconds))
            .where(*where, facts.c.kind.in_(("event", "order"))).group_by(facts.c.day)))
        dropped = list(await self.session.execute(
            select(facts.c.day, facts.c.detail).where(*where, facts.c.kind == "dropped")))
        unreachable = list(await self.session.execute(
            select(facts.c.day, facts.c.profile_id, facts.c.detail).where(
                *where, facts.c.kind.in_(MESSAGE_KINDS), facts.c.detail.is_not(None))))
        return events, dropped, unreachable


def _on(table, where: list) -> list:
    """The filter's (column name, op, value) triples on a table that has those columns."""
    clauses = []
    for column, op, value in where:
        col = table.c[column]
        clauses.append({"eq": col == value, "gte": col >= value, "lt": col < value}[op])
    return clauses
