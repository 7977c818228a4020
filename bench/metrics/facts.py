"""The service's fact rows as the run reads them back: each stored fact compared column by
column with fact_of's row, and the same rows written by the bare loop."""

import asyncpg
import orjson


FACT_COLUMNS: list[str] = []  # the service's `facts` columns in order, read once it has migrated
COLUMN_DEFAULTS = {"profile_id": "", "journey_id": "", "journey_version": 0, "node_id": "", "variant": "",
                   "channel": "", "template_id": "", "delivery_id": "", "run_id": "", "reason": "", "revenue": 0.0,
                   "machine": False, "lag_seconds": None, "detail": None}


async def read_fact_columns(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        FACT_COLUMNS[:] = [r["column_name"] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = 'facts' ORDER BY ordinal_position")]
    finally:
        await conn.close()


def bare_insert() -> str:
    return (f"INSERT INTO bare.facts ({', '.join(FACT_COLUMNS)}) "
            f"VALUES ({', '.join(f'${n}' for n in range(1, len(FACT_COLUMNS) + 1))}) ON CONFLICT DO NOTHING")


def fact_record(fact: dict) -> tuple:
    row = COLUMN_DEFAULTS | fact
    if row["detail"] is not None:
        row["detail"] = orjson.dumps(row["detail"]).decode()
    return tuple(row[c] for c in FACT_COLUMNS)


async def compare_facts(conn, table: str, workspace_id: str, expected: dict) -> dict[str, int]:
    """The run's stored facts column by column against fact_of's rows (`expected`, by id,
    with the columns' defaults): how many differ, as {"<kind>.<column>": n}, plus
    "missing" and "unexpected" facts."""
    wrong: dict[str, int] = {}

    def count(key: str) -> None:
        wrong[key] = wrong.get(key, 0) + 1

    seen = 0
    for row in await conn.fetch(f"SELECT {', '.join(FACT_COLUMNS)} FROM {table} WHERE workspace_id = $1",
                                workspace_id):
        want = expected.get(row["id"])
        if want is None:
            count("unexpected")
            continue
        seen += 1
        for column in FACT_COLUMNS:
            got = row[column]
            if column == "detail" and got is not None:
                got = orjson.loads(got)
            if got != want[column]:
                count(f"{want['kind']}.{column}")
    if seen < len(expected):
        wrong["missing"] = len(expected) - seen
    return wrong
