"""Every benchmark keeps working: each runs end to end at a tiny size (seconds), so a change
that stops one from starting or finishing (as a gateway readiness that needed every service
once did for bench.ingest) fails here. Each must print its table, every row with its cells;
the figures themselves are never asserted."""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kit import db, embedded
from kit.settings import REPO_ROOT

# benchmark → (its tiny-size arguments, {row: how many cells follow its name, in each table
# that has it}, lines it must print)
BENCHMARKS = {
    "ingest": (
        ["--events", "200", "--warmup", "50", "--batch", "25", "--concurrency", "2", "--users", "20"],
        # rate, p50, p99; the baselines add Nudge's share of them
        {"Nudge POST /v1/batch": [3], "bare FastAPI endpoint": [4], "asyncpg COPY, plain table": [4]},
        ["200 events in batches of 25, 2 concurrent senders, 20 users", "aim ≥ 5,000 events/s"]),
    "segments": (
        ["--events", "200", "--warmup", "20", "--users", "20", "--history", "2", "--segments", "25", "--rate",
         "50", "--seconds", "1", "--batch", "50", "--profiles", "500", "--backfill-batch", "100"],
        {"Nudge segment service": [2, 3], "bare XREADGROUP + XACK": [3], "asyncpg INSERT, same rows": [3],
         "bare Redis hop": [4], "Nudge backfill": [2], "hand-written SQL count": [3]},
        ["1. 200 events evaluated", "2. event stored → segment.entered published", "added p99:",
         "3. backfill of a new segment over 500 profiles", "slowest backfill batch:"]),
    "dispatch": (
        ["--profiles", "50", "--decisions", "100", "--warmup", "10", "--sends", "20", "--send-warmup", "5",
         "--concurrency", "2"],
        {"Nudge fatigue.decide": [4], "bare EVALSHA (return 1)": [5], "bare INCR": [5],
         "Nudge Send over gRPC": [4], "bare httpx POST, keep-alive": [5], "bare httpx POST, Connection: close": [5]},
        ["fatigue: 100 decisions over 50 distinct profiles", "sends: 20 webhooks", "CPU per send elsewhere:"]),
    "timers": (
        ["--timers", "300", "--steady-seconds", "1", "--steady-rate", "50", "--processes", "1", "--batch", "50"],
        {"Nudge journey service (1 proc)": [6, 3], "bare claim SQL (1 asyncpg loops)": [7],
         "bare claim SQL, same polling": [4]},
        ["1. 300 timers due at once", "2. 50 timers due at 50/s for 1 s, lateness", "fired/s by tenth of the burst"]),
    "metrics": (
        ["--ingest-facts", "300", "--query-facts", "3000", "--query-runs", "2"],
        {"Nudge metrics service (1 proc)": [4], "bare asyncpg loop (1 conn)": [5], "GetStats over gRPC": [5],
         "asyncpg, the same SQL by hand": [3]},
        ["1. 300 facts from", "2. stats of journey j-00", "metrics process start → first transaction"]),
}


@pytest.fixture(scope="module")
def private_redis_url():
    """A Redis of the benchmarks' own: the services they start publish on the platform streams,
    and bench.ingest deletes every key that appeared during its run, so they must not share
    the Redis the rest of the suite's services are using. The benchmarks run one after the
    other, each removing what it put there."""
    with tempfile.TemporaryDirectory(prefix="nb-") as path:  # short: a unix socket path is at most 107 bytes
        yield embedded.redis_url(Path(path))
        embedded.stop_redis(Path(path))


def cells(stdout: str, row: str) -> list[list[str]]:
    """The cells after a row's name, in each line printed for that row (a name, then cells
    set apart by two spaces or more)."""
    return [re.split(r"\s{2,}", line[len(row):].strip()) for line in stdout.splitlines()
            if re.match(rf"{re.escape(row)}\s{{2,}}\S", line)]


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_benchmark_runs_at_a_tiny_size_and_prints_its_table(name, database_server_url, private_redis_url):
    args, rows, lines = BENCHMARKS[name]
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *args, "--database-url", db.asyncpg_dsn(database_server_url),
         "--redis-url", private_redis_url],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"bench.{name} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    for row, counts in rows.items():
        found = cells(done.stdout, row)
        assert [len(c) for c in found] == counts, f"{row}: {found}\n{done.stdout}"
    for line in lines:
        assert line in done.stdout, f"{line!r} not printed:\n{done.stdout}"
    assert re.search(r"^aim .*: (met|NOT met)$", done.stdout, re.MULTILINE), done.stdout


def test_the_timers_benchmark_claims_with_the_journey_services_own_statement():
    """bench.timers writes the claim statement out (it imports no service); this keeps it the
    service's: the bare loops would measure another query otherwise."""
    import asyncio
    from datetime import datetime, timedelta, timezone

    from bench.timers import CLAIM_SQL
    from services.journey.repository import JourneyRepository

    class Recorder:  # stands in for the session: keeps the statement claim_timers executes
        statement = None

        async def execute(self, statement, params=None):
            self.statement = statement
            return []

    recorder = Recorder()
    asyncio.run(JourneyRepository(recorder).claim_timers(datetime.now(timezone.utc), 1, "bench", timedelta(seconds=1)))
    assert str(recorder.statement) == CLAIM_SQL
