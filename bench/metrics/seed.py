"""The stats run's facts, written with set-based SQL into the service's (migrated) tables:
ten million facts through the streams would take hours."""

import time
from datetime import datetime, timezone

import asyncpg

from bench import harness
from bench.harness import admin_execute
from bench.metrics.workload import CLICK_URL, RULES

SEED_DAYS = 180
status = harness.reporter("bench.metrics")

# Seeding. r(n, salt) is a number in [0, 1) drawn from n, the same every time; a delivery,
# a run and an event are each a number n, and everything about them is drawn from it.
SEED_FUNCTIONS = [
    "CREATE SCHEMA seed",
    "CREATE FUNCTION seed.r(n bigint, salt bigint) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE "
    "AS $$ SELECT (hashint8extended(n, salt) & 4294967295)::float8 / 4294967296 $$",
]
# Delivery {d}: its journey, version, node, variant, channel, person, moment, outcome, and
# how often it was opened and clicked ($4 the run's moment, $5 profiles, $6 days).
DELIVERY = """
    SELECT 'j-' || lpad(x.j::text, 2, '0') AS journey_id, 1 + floor(seed.r(x.d, 3) * (1 + x.j % 3))::int AS version,
           y.node_id, CASE WHEN x.j % 3 = 0 THEN CASE WHEN seed.r(x.d, 5) < 0.5 THEN 'a' ELSE 'b' END ELSE '' END
           AS variant, y.channel, 'tpl-j-' || lpad(x.j::text, 2, '0') || '-' || y.node_id || '-' || y.channel
           AS template_id, 'd-' || x.d AS delivery_id, 'p-' || floor($5 * seed.r(x.d, 7))::bigint AS profile_id,
           $4::timestamptz - $6 * seed.r(x.d, 8) * interval '1 day' AS at,
           CASE WHEN y.o < 0.85 THEN 'sent' WHEN y.o < 0.94 THEN 'suppressed' WHEN y.o < 0.97 THEN 'failed'
                ELSE 'deferred' END AS outcome,
           CASE WHEN y.u < 0.55 THEN 0 WHEN y.u < 0.85 THEN 1 WHEN y.u < 0.95 THEN 2 ELSE 3 END AS opens,
           CASE WHEN y.u < 0.55 OR y.c < 0.7 THEN 0 WHEN y.c < 0.9 THEN 1 ELSE 2 END AS clicks
    FROM (SELECT {d} AS d, floor(50 * seed.r({d}, 2) ^ 1.5)::int AS j) AS x,
    LATERAL (SELECT 'n' || (2 + floor(seed.r(x.d, 4) * (1 + (x.j + 2) % 3))::int) AS node_id,
                    CASE WHEN seed.r(x.d, 6) < 0.5 THEN 'email' WHEN seed.r(x.d, 6) < 0.7 THEN 'sms'
                         WHEN seed.r(x.d, 6) < 0.85 THEN 'kakao' ELSE 'push' END AS channel,
                    seed.r(x.d, 9) AS o, seed.r(x.d, 10) AS u, seed.r(x.d, 11) AS c) AS y"""
SEED_MESSAGES = f"""
    INSERT INTO facts (workspace_id, id, kind, at, day, profile_id, journey_id, journey_version, node_id, variant,
                       channel, template_id, delivery_id, reason, machine, detail)
    SELECT $1, gen_random_uuid(), k.kind, t.at, (t.at AT TIME ZONE 'Asia/Seoul')::date, m.profile_id, m.journey_id,
           m.version, m.node_id, m.variant, m.channel, m.template_id, m.delivery_id,
           CASE WHEN k.kind = 'suppressed' THEN (ARRAY{RULES!r})[1 + floor(4 * seed.r(d, 12))::int] ELSE '' END,
           k.kind = 'opened' AND seed.r(d * 8 + k.i, 13) < 0.1,
           CASE k.kind WHEN 'clicked' THEN '{{"link_id": 0, "url": "{CLICK_URL}",
                                           "utm": {{"source": "nudge", "campaign": "cart"}}}}'::jsonb
                       WHEN 'opened' THEN '{{"utm": {{}}}}'::jsonb END
    FROM generate_series($2::bigint, $3::bigint) AS d
    CROSS JOIN LATERAL ({DELIVERY.format(d="d")}) AS m
    CROSS JOIN LATERAL unnest(ARRAY[m.outcome] || CASE WHEN m.outcome = 'sent' THEN
        array_fill('delivered'::text, ARRAY[(seed.r(d, 14) < 0.8)::int]) || array_fill('opened'::text, ARRAY[m.opens])
        || array_fill('clicked'::text, ARRAY[m.clicks])
        || array_fill('unsubscribed'::text, ARRAY[(seed.r(d, 15) < 0.005)::int]) ELSE '{{}}' END)
        WITH ORDINALITY AS k(kind, i)
    CROSS JOIN LATERAL (SELECT m.at + (k.i - 1) * interval '7 minutes' AS at) AS t"""
# Run r: entered, the split draw, a step at each node (a send at the message nodes), and
# for 80% of runs its end.
SEED_RUNS = """
    INSERT INTO facts (workspace_id, id, kind, at, day, profile_id, journey_id, journey_version, node_id, variant,
                       delivery_id, run_id, reason)
    SELECT $1, gen_random_uuid(), s.kind, t.at, (t.at AT TIME ZONE 'Asia/Seoul')::date,
           'p-' || floor($5 * seed.r(r, 22))::bigint, 'j-' || lpad(x.j::text, 2, '0'), x.version, s.node_id,
           CASE WHEN s.kind = 'entered' THEN '' ELSE x.variant END, s.delivery_id, 'r-' || r, s.reason
    FROM generate_series($2::bigint, $3::bigint) AS r
    CROSS JOIN LATERAL (
        SELECT y.j, 1 + floor(seed.r(r, 23) * (1 + y.j % 3))::int AS version,
               CASE WHEN y.j % 3 <> 0 THEN '' WHEN y.v < 0.45 THEN 'a' WHEN y.v < 0.9 THEN 'b' ELSE 'holdout' END
               AS variant, 3 + (y.j + 2) % 3 + y.j % 2 AS nodes, 1 + (y.j + 2) % 3 AS messages,
               $4::timestamptz - $6 * seed.r(r, 25) * interval '1 day' AS at, seed.r(r, 26) AS ending
        FROM (SELECT floor(50 * seed.r(r, 21) ^ 1.5)::int AS j, seed.r(r, 24) AS v) AS y) AS x
    CROSS JOIN LATERAL (
        SELECT 0 AS i, 'entered' AS kind, '' AS node_id, '' AS delivery_id, '' AS reason
        UNION ALL SELECT 0, 'split', 'split', '', '' WHERE x.j % 3 = 0
        UNION ALL SELECT n, 'step', 'n' || n,
                         CASE WHEN n BETWEEN 2 AND 1 + x.messages AND x.variant <> 'holdout'
                              THEN 'd-r' || r || '-' || n ELSE '' END,
                         CASE WHEN n BETWEEN 2 AND 1 + x.messages AND x.variant <> 'holdout'
                              THEN 'send:sent' ELSE 'wait:waited' END
                  FROM generate_series(1, x.nodes) AS n
        UNION ALL SELECT x.nodes + 1, CASE WHEN x.ending < 0.08 THEN 'converted' WHEN x.ending < 0.56 THEN 'completed'
                                           ELSE 'exited' END, 'n' || x.nodes, '', 'end'
                  WHERE x.ending < 0.8) AS s
    CROSS JOIN LATERAL (SELECT x.at + s.i * interval '1 hour' AS at) AS t"""
# Event e: a tracked event or page (3% of them orders, with revenue).
SEED_EVENTS = """
    INSERT INTO facts (workspace_id, id, kind, at, day, profile_id, reason, revenue, lag_seconds)
    SELECT $1, gen_random_uuid(), CASE WHEN x.o THEN 'order' ELSE 'event' END, x.at,
           (x.at AT TIME ZONE 'Asia/Seoul')::date, 'p-' || floor($5 * seed.r(e, 32))::bigint,
           CASE WHEN x.o THEN 'Order Completed'
                ELSE (ARRAY['Product Viewed', 'Product Added', 'Search', 'Checkout Started', 'Home', 'Category',
                            'Product', 'Cart'])[1 + floor(8 * seed.r(e, 33))::int] END,
           CASE WHEN x.o THEN 5000 + 100 * floor(1950 * seed.r(e, 34)) ELSE 0 END,
           round((-2 * ln(1 - seed.r(e, 35)))::numeric, 3)
    FROM generate_series($2::bigint, $3::bigint) AS e
    CROSS JOIN LATERAL (SELECT seed.r(e, 31) < 0.03 AS o,
                               $4::timestamptz - $6 * seed.r(e, 36) * interval '1 day' AS at) AS x"""
# A share $3 of the orders (× 85% sent), each attributed to a delivery drawn from the $2
# seeded ones ($4 the run's moment, $5 profiles, $6 days, as above).
SEED_ATTRIBUTIONS = f"""
    INSERT INTO attributions (workspace_id, order_id, profile_id, at, day, revenue, delivery_id, sent_at, journey_id,
                              journey_version, node_id, variant, channel, template_id)
    SELECT o.workspace_id, o.id, o.profile_id, o.at, o.day, o.revenue, m.delivery_id,
           o.at - seed.r(o.n, 41) * interval '3 days', m.journey_id, m.version, m.node_id, m.variant, m.channel,
           m.template_id
    FROM (SELECT f.*, row_number() OVER () AS n FROM facts AS f WHERE f.workspace_id = $1 AND f.kind = 'order') AS o
    CROSS JOIN LATERAL ({DELIVERY.format(d="1 + floor($2 * seed.r(o.n, 42))::bigint")}) AS m
    WHERE m.outcome = 'sent' AND seed.r(o.n, 43) < $3"""
# What one unit of each generator makes, on average: facts per delivery, per run.
FACTS_PER_DELIVERY, FACTS_PER_RUN = 2.39, 6.4
SHARE_OF_MESSAGES, SHARE_OF_RUNS = 0.45, 0.20
SEED_CHUNK = 1_000_000  # facts per statement
ATTRIBUTED = 0.47       # of the orders drawn for an attribution; 85% of those draw a sent delivery


async def seed_query_facts(url: str, workspace_id: str, total: int) -> tuple[int, float]:
    """About 45% message facts (deliveries), 20% journey-run facts, then tracked events and
    orders up to exactly `total`, and attributions for about 40% of the orders; with the
    indexes of `facts` and `attributions` dropped meanwhile and built again at the end, then
    VACUUM ANALYZE. Returns the attributions and the seconds it took."""
    conn = await asyncpg.connect(url, server_settings={"TimeZone": "UTC"})
    started = time.perf_counter()
    try:
        await conn.execute(";".join(SEED_FUNCTIONS))
        indexes = await drop_indexes(conn, ["facts", "attributions"])
        base, profiles = datetime.now(timezone.utc), max(1_000, total // 20)
        deliveries = round(total * SHARE_OF_MESSAGES / FACTS_PER_DELIVERY)
        runs = round(total * SHARE_OF_RUNS / FACTS_PER_RUN)
        made = 0

        async def generate(statement: str, first: int, last: int, per_unit: float) -> int:
            nonlocal made
            step = max(1, round(SEED_CHUNK / per_unit))
            for start in range(first, last + 1, step):
                done = await conn.execute(statement, workspace_id, start, min(last, start + step - 1), base,
                                          profiles, SEED_DAYS)
                made += int(done.rpartition(" ")[2])
                status(f"  {made:,} facts ({time.perf_counter() - started:.0f} s)")
            return made

        await generate(SEED_MESSAGES, 1, deliveries, FACTS_PER_DELIVERY)
        await generate(SEED_RUNS, 1, runs, FACTS_PER_RUN)
        if made < total:
            await generate(SEED_EVENTS, 1, total - made, 1)
        if made != total:  # the last events statement cut short would have said so; this is a guard
            raise RuntimeError(f"seeded {made:,} facts instead of {total:,}")
        attributed = int((await conn.execute(SEED_ATTRIBUTIONS, workspace_id, deliveries, ATTRIBUTED, base, profiles,
                                             SEED_DAYS)).rpartition(" ")[2])
        status(f"  {attributed:,} attributions; building the indexes ({time.perf_counter() - started:.0f} s)")
        await conn.execute("SET maintenance_work_mem = '1GB'")
        for statement in indexes:
            await conn.execute(statement)
        await conn.execute("DROP SCHEMA seed CASCADE")
    finally:
        await conn.close()
    status(f"  VACUUM ANALYZE ({time.perf_counter() - started:.0f} s)")
    await admin_execute(url, "VACUUM (ANALYZE) facts", "VACUUM (ANALYZE) attributions")
    return attributed, time.perf_counter() - started


async def drop_indexes(conn, tables: list[str]) -> list[str]:
    """Drops the tables' indexes and primary keys; returns the statements that make them again."""
    keys = await conn.fetch("SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS definition "
                            "FROM pg_constraint WHERE contype = 'p' AND conrelid::regclass::text = ANY($1)", tables)
    indexes = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                               "AND tablename = ANY($1) AND indexname <> ALL($2)", tables, [k["conname"] for k in keys])
    for k in keys:
        await conn.execute(f'ALTER TABLE {k["t"]} DROP CONSTRAINT "{k["conname"]}"')
    for i in indexes:
        await conn.execute(f'DROP INDEX "{i["indexname"]}"')
    return ([f'ALTER TABLE {k["t"]} ADD CONSTRAINT "{k["conname"]}" {k["definition"]}' for k in keys]
            + [i["indexdef"] for i in indexes])
