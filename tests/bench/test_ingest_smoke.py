"""`make bench` keeps working: bench.ingest run end to end at a tiny size (seconds), so a
change that stops it from starting (as a gateway readiness that needed every service once
did) fails here. Figures are printed, never asserted."""

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kit import db, embedded
from kit.settings import REPO_ROOT


@pytest.fixture
def private_redis_url():
    """A Redis of the benchmark's own: its profile service publishes on the platform streams,
    and its clean-up deletes the keys that appeared during the run, so it must not share the
    Redis the rest of the suite's services are using."""
    with tempfile.TemporaryDirectory(prefix="nb-") as path:  # short: a unix socket path is at most 107 bytes
        yield embedded.redis_url(Path(path))
        embedded.stop_redis(Path(path))


def test_ingest_benchmark_runs_at_a_tiny_size_and_prints_its_table(database_server_url, private_redis_url):
    done = subprocess.run(
        [sys.executable, "-m", "bench.ingest", "--events", "200", "--warmup", "50", "--batch", "25",
         "--concurrency", "2", "--users", "20", "--database-url", db.asyncpg_dsn(database_server_url),
         "--redis-url", private_redis_url],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"bench.ingest failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    rows = {line[:28].strip(): line[28:].split() for line in done.stdout.splitlines()}
    # Each row has its rate, p50 and p99; the baselines add Nudge's share of them. The run
    # itself fails unless the events table gained exactly the events sent.
    assert len(rows["Nudge POST /v1/batch"]) == 3, done.stdout
    assert len(rows["bare FastAPI endpoint"]) == 4 and rows["bare FastAPI endpoint"][3].endswith("%"), done.stdout
    assert len(rows["asyncpg COPY, plain table"]) == 4, done.stdout
    assert "200 events in batches of 25, 2 concurrent senders, 20 users" in done.stdout
