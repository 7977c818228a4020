"""python -m bench.ingest: events/s persisted through POST /v1/batch, next to two baselines
measured in the same run: a bare FastAPI endpoint that only parses the same JSON (served by
uvicorn like the gateway), and asyncpg COPY of the same rows into a plain table.

The profile service and the gateway run as subprocesses on fresh databases of the local
PostgreSQL; everything the run creates (databases, Redis stream keys) is removed at the end.
"""

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
import orjson

from bench import harness
from bench.harness import HOST, REPO, Processes, Result, drive, fetchval, free_port, wait_http
from kit.payloads import label_of

status = harness.reporter("bench.ingest")
TRACK_EVENTS = ["Product Viewed", "Product Added", "Search", "Checkout Started", "Order Completed"]
PAGES = ["Home", "Category", "Product", "Cart", "Pricing"]
CONTEXT = {"library": {"name": "analytics.js", "version": "4.1.0"}, "locale": "ko-KR",
           "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"}
AIM_EVENTS_PER_SECOND, AIM_SHARE_OF_BARE = 5_000, 0.30
COPY_COLUMNS = ["id", "workspace_id", "profile_id", "message_id", "type", "name", "timestamp",
                "received_at", "call"]


# -- workload ----------------------------------------------------------------------
def make_calls(count: int, users: int, rng: random.Random, run_id: str) -> list[dict]:
    """Mostly track, some page, a few identify (email, phone) over `users` users."""
    start = datetime.now(timezone.utc)
    calls = []
    for i in range(count):
        user = rng.randrange(users)
        call = {"userId": f"user-{user}", "messageId": f"bench-{run_id}-{i}", "context": CONTEXT,
                "timestamp": (start + timedelta(milliseconds=i)).isoformat()}
        roll = rng.random()
        if roll < 0.05:
            call.update(type="identify", traits={
                "email": f"user{user}@example.com", "phone": f"+8210{20000000 + user}",
                "name": f"User {user}", "plan": rng.choice(["free", "pro"])})
        elif roll < 0.15:
            page = rng.choice(PAGES)
            call.update(type="page", name=page, properties={
                "path": f"/{page.lower()}", "url": f"https://shop.example.com/{page.lower()}", "title": page})
        else:
            call.update(type="track", event=rng.choice(TRACK_EVENTS), properties={
                "product_id": f"p-{rng.randrange(500)}", "price": round(rng.uniform(1, 200), 2),
                "currency": "KRW", "category": rng.choice(["shoes", "bags", "hats"])})
        calls.append(call)
    return calls


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def batch_body(calls: list[dict]) -> bytes:
    return orjson.dumps({"batch": calls, "sentAt": datetime.now(timezone.utc).isoformat()})


def copy_records(calls: list[dict], profile_ids: dict[str, uuid.UUID]) -> list[tuple]:
    """The rows the events table would get for these calls."""
    now = datetime.now(timezone.utc)
    return [(uuid.uuid4(), "bench", profile_ids[c["userId"]], c["messageId"], c["type"],
             label_of(c["type"], c.get("event"), c.get("name")), datetime.fromisoformat(c["timestamp"]), now,
             orjson.dumps(c).decode()) for c in calls]


# -- load --------------------------------------------------------------------------
def http_sender(client: httpx.AsyncClient, url: str, auth: tuple[str, str] | None, stored: list[int]):
    async def send(body: bytes) -> None:
        reply = await client.post(url, content=body, auth=auth, headers={"Content-Type": "application/json"})
        if reply.status_code != 200:
            raise RuntimeError(f"POST {url} → {reply.status_code}: {reply.text[:500]}")
        answer = reply.json()
        if answer.get("rejected"):
            raise RuntimeError(f"POST {url} rejected calls: {answer['rejected'][:3]}")
        stored[0] += answer["stored"]
    return send


# -- the three measurements --------------------------------------------------------
async def bench_bare(args, procs: Processes, client: httpx.AsyncClient, warm: list, bodies: list) -> Result:
    port = free_port()
    procs.start("bare", ["-m", "bench.ingest", "--serve-bare", str(port)], {})
    base = f"http://{HOST}:{port}"
    try:
        await wait_http(client, f"{base}/healthz", procs, "bare")
        stored = [0]
        send = http_sender(client, f"{base}/v1/batch", None, stored)
        await drive(send, warm, args.concurrency, Result("warm-up"))
        result = await drive(send, bodies, args.concurrency, Result("bare FastAPI endpoint"))
        result.items = args.events
        return result
    finally:
        procs.stop("bare")


async def bench_copy(args, url: str, warm: list, records: list) -> Result:
    await harness.admin_execute(url, "CREATE TABLE events_copy (id uuid, workspace_id text, profile_id uuid, "
                             "message_id text, type text, name text, timestamp timestamptz, "
                             "received_at timestamptz, call jsonb)")
    async with asyncpg.create_pool(url, min_size=args.concurrency, max_size=args.concurrency) as pool:
        async def send(rows: list[tuple]) -> None:
            async with pool.acquire() as conn:
                await conn.copy_records_to_table("events_copy", records=rows, columns=COPY_COLUMNS)

        await drive(send, warm, args.concurrency, Result("warm-up"))
        before = await fetchval(url, "SELECT count(*) FROM events_copy")
        result = await drive(send, records, args.concurrency, Result("asyncpg COPY, plain table"))
    result.items = await fetchval(url, "SELECT count(*) FROM events_copy") - before
    return result


async def start_nudge(procs: Processes, client: httpx.AsyncClient, urls: dict, redis_url: str, run_id: str):
    """Profile service and gateway as subprocesses; returns (gateway base URL, write key)."""
    http_port = free_port()
    common = {"NUDGE_REDIS_URL": redis_url, "NUDGE_API_KEY_PEPPER": "bench-" + run_id,
              "NUDGE_RATE_LIMIT_WRITE": "1000000/second", "NUDGE_LOG_LEVEL": "WARNING"}
    profile_addr = procs.service("profile", "services.profile", {**common, "NUDGE_DATABASE_URL": urls["profile"]})
    gateway_env = {**common, "NUDGE_DATABASE_URL": urls["gateway"], "NUDGE_HTTP_PORT": str(http_port),
                   "NUDGE_PROFILE_ADDR": profile_addr}
    procs.start("gateway", ["-m", "gateway"], gateway_env)
    base = f"http://{HOST}:{http_port}"
    await wait_http(client, f"{base}/readyz", procs, "gateway")
    created = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "gateway.workspaces", "create", "bench"], cwd=REPO,
        env={**os.environ, **gateway_env}, capture_output=True, text=True, timeout=120)
    found = re.search(r"^write\s+key\s+(\S+)", created.stdout, re.MULTILINE)
    if created.returncode != 0 or not found:
        raise RuntimeError(f"gateway.workspaces create failed:\n{created.stdout}\n{created.stderr}")
    return base, found.group(1)


async def bench_nudge(args, client: httpx.AsyncClient, base: str, key: str, profile_url: str,
                      warm: list, bodies: list) -> Result:
    stored = [0]
    send = http_sender(client, f"{base}/v1/batch", (key, ""), stored)
    await drive(send, warm, args.concurrency, Result("warm-up"))
    before, stored[0] = await fetchval(profile_url, "SELECT count(*) FROM events"), 0
    result = await drive(send, bodies, args.concurrency, Result("Nudge POST /v1/batch"))
    result.items = await fetchval(profile_url, "SELECT count(*) FROM events") - before
    if result.items != args.events or stored[0] != args.events:
        raise RuntimeError(f"sent {args.events} events, replies say {stored[0]} stored, "
                           f"the events table gained {result.items}")
    return result


# -- the run -----------------------------------------------------------------------
async def run(args) -> None:
    # The gateway makes the workspace's id: the run removes every Redis key that appeared.
    async with harness.Run(args, "bench.ingest", new_keys=True) as bench:
        rng, procs = random.Random(args.seed), bench.procs
        calls = make_calls(args.warmup + args.events, args.users, rng, bench.id)
        warm_calls, calls = chunks(calls[:args.warmup], args.batch), chunks(calls[args.warmup:], args.batch)
        profile_ids = {f"user-{u}": uuid.uuid4() for u in range(args.users)}
        urls = {name: await bench.database(name) for name in ("profile", "gateway", "copy")}
        results = []
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:
            # Nudge first, so its start-up (migrations) does not overlap the baselines.
            status("starting the profile service and the gateway")
            base, key = await start_nudge(procs, client, urls, args.redis_url, bench.id)
            status("bare endpoint")
            results.append(await bench_bare(args, procs, client, [batch_body(b) for b in warm_calls],
                                            [batch_body(b) for b in calls]))
            status("asyncpg COPY")
            results.append(await bench_copy(args, urls["copy"], [copy_records(b, profile_ids) for b in warm_calls],
                                            [copy_records(b, profile_ids) for b in calls]))
            status("Nudge POST /v1/batch")
            nudge = await bench_nudge(args, client, base, key, urls["profile"],
                                      [batch_body(b) for b in warm_calls], [batch_body(b) for b in calls])
            results.insert(0, nudge)
    print_table(args, results)


def print_table(args, results: list[Result]) -> None:
    nudge = results[0]
    print(f"\n{args.events} events in batches of {args.batch}, {args.concurrency} concurrent senders, "
          f"{args.users} users, {os.cpu_count()} CPUs")
    harness.table(28, [("events/s", 10), ("p50 ms", 9), ("p99 ms", 9), ("Nudge ÷ this", 14)], [
        (r.name, [f"{r.rate:,.0f}", f"{r.percentile(50):.1f}", f"{r.percentile(99):.1f}",
                  "" if r is nudge else harness.share(nudge.rate, r.rate)]) for r in results])
    met = nudge.rate >= AIM_EVENTS_PER_SECOND and nudge.rate / results[1].rate >= AIM_SHARE_OF_BARE
    print(f"aim ≥ {AIM_EVENTS_PER_SECOND:,} events/s and ≥ {AIM_SHARE_OF_BARE:.0%} of the bare endpoint: "
          f"{harness.verdict(met)}")


# -- the bare endpoint, served in its own process -------------------------------------
def serve_bare(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.post("/v1/batch")
    async def batch(request: Request) -> dict:
        payload = orjson.loads(await request.body())
        return {"success": True, "stored": len(payload["batch"]), "duplicates": 0, "rejected": []}

    # as gateway/__main__.py serves the gateway
    uvicorn.run(app, host=HOST, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=10)


def main() -> None:
    parser = harness.parser("bench.ingest", __doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events in the measured run")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent senders")
    parser.add_argument("--batch", type=int, default=100, help="events per POST /v1/batch")
    parser.add_argument("--users", type=int, default=2_000, help="distinct userIds")
    parser.add_argument("--warmup", type=int, default=2_000, help="events sent before measuring")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.events, args.concurrency, args.batch, args.users) < 1 or args.warmup < 0:
        parser.error("--events, --concurrency, --batch and --users must be positive, --warmup not negative")
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    harness.run_bench("bench.ingest", run(args), "processes stopped and databases dropped")


if __name__ == "__main__":
    main()
