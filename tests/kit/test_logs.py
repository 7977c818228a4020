"""Logs are JSON lines carrying the trace and span of the work they describe."""

import json
import subprocess
import sys

from kit.settings import REPO_ROOT

SCRIPT = """
from opentelemetry import trace
from kit.logs import get_logger, setup_logging
from kit.tracing import setup_tracing
setup_logging("probe")
setup_tracing("probe", None)
with trace.get_tracer("t").start_as_current_span("work") as span:
    get_logger("x").info("inside", n=1)
    ctx = span.get_span_context()
    print(format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))
get_logger("x").info("outside")
"""


def test_log_lines_are_json_with_the_active_trace_and_span_ids():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    trace_id, span_id = done.stdout.split()
    inside, outside = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert inside["event"] == "inside" and inside["n"] == 1 and inside["service"] == "probe"
    assert (inside["trace_id"], inside["span_id"]) == (trace_id, span_id)
    assert "trace_id" not in outside
