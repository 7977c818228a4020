"""python -m bench.ingest: events/s persisted through POST /v1/batch, next to two baselines
measured in the same run: a bare FastAPI endpoint that only parses the same JSON (served by
uvicorn like the gateway), and asyncpg COPY of the same rows into a plain table.

The profile service and the gateway run as subprocesses on fresh databases of the local
PostgreSQL; everything the run creates (databases, Redis stream keys) is removed at the end.
"""

import argparse
import asyncio
import contextlib
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import grpc
import httpx
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis

from kit.db import with_database

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
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
             c.get("event") or c.get("name") or c["type"], datetime.fromisoformat(c["timestamp"]), now,
             orjson.dumps(c).decode()) for c in calls]


# -- load --------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    items: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def drive(send, payloads: list, concurrency: int, result: Result) -> Result:
    """`concurrency` workers send the payloads one after another; times first send → last reply."""
    pending = iter(payloads)

    async def worker():
        for payload in pending:
            started = time.perf_counter()
            await send(payload)
            result.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


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


# -- processes and databases -------------------------------------------------------
def status(message: str) -> None:
    print(f"bench.ingest: {message}", file=sys.stderr, flush=True)


def run_bench(prog: str, main, cleaned: str) -> None:
    """Runs a benchmark's coroutine; a failure or Ctrl-C exits with one line saying what was cleaned up."""
    try:
        asyncio.run(main)
    except RuntimeError as err:
        sys.exit(f"{prog} failed: {err}")
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit(f"{prog}: interrupted; {cleaned}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Processes:
    """Subprocesses of this run, each logging to a file that is shown when it fails."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        base = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("NUDGE_")}
        with open(self.log_dir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env={**base, **env},
                                    stdout=log, stderr=subprocess.STDOUT)
        self.running[name] = proc
        return proc

    def log(self, name: str, lines: int = 30) -> str:
        text = (self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, name: str) -> None:
        proc = self.running.pop(name)
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


async def wait_ready(client: httpx.AsyncClient, url: str, procs: Processes, name: str, timeout: float = 120) -> None:
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        for proc_name, proc in procs.running.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{proc_name} exited with {proc.returncode}:\n{procs.log(proc_name)}")
        with contextlib.suppress(httpx.TransportError):
            reply = await client.get(url)
            if reply.status_code == 200:
                return
            last = f"{reply.status_code} {reply.text[:300]}"
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{name} not ready after {timeout:.0f}s ({url}: {last}):\n{procs.log(name)}")


async def wait_grpc(address: str, procs: Processes, name: str, timeout: float = 120) -> None:
    """Until the process `name` answers gRPC health checks at `address` as SERVING; its log
    in the error if it exits or does not answer in time."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            proc = procs.running[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{procs.log(name)}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{name} not serving after {timeout:.0f} s:\n{procs.log(name)}")


async def admin_execute(server_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def count_rows(url: str, table: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await conn.close()


# -- the three measurements --------------------------------------------------------
async def bench_bare(args, procs: Processes, client: httpx.AsyncClient, warm: list, bodies: list) -> Result:
    port = free_port()
    procs.start("bare", ["-m", "bench.ingest", "--serve-bare", str(port)], {})
    base = f"http://{HOST}:{port}"
    try:
        await wait_ready(client, f"{base}/healthz", procs, "bare")
        stored = [0]
        send = http_sender(client, f"{base}/v1/batch", None, stored)
        await drive(send, warm, args.concurrency, Result("warm-up"))
        result = await drive(send, bodies, args.concurrency, Result("bare FastAPI endpoint"))
        result.items = args.events
        return result
    finally:
        procs.stop("bare")


async def bench_copy(args, url: str, warm: list, records: list) -> Result:
    await admin_execute(url, "CREATE TABLE events_copy (id uuid, workspace_id text, profile_id uuid, "
                             "message_id text, type text, name text, timestamp timestamptz, "
                             "received_at timestamptz, call jsonb)")
    async with asyncpg.create_pool(url, min_size=args.concurrency, max_size=args.concurrency) as pool:
        async def send(rows: list[tuple]) -> None:
            async with pool.acquire() as conn:
                await conn.copy_records_to_table("events_copy", records=rows, columns=COPY_COLUMNS)

        await drive(send, warm, args.concurrency, Result("warm-up"))
        before = await count_rows(url, "events_copy")
        result = await drive(send, records, args.concurrency, Result("asyncpg COPY, plain table"))
    result.items = await count_rows(url, "events_copy") - before
    return result


async def start_nudge(procs: Processes, client: httpx.AsyncClient, server_url: str, dbs: dict, redis_url: str):
    """Profile service and gateway as subprocesses; returns (gateway base URL, write key)."""
    grpc_port, http_port = free_port(), free_port()
    common = {"NUDGE_REDIS_URL": redis_url, "NUDGE_API_KEY_PEPPER": "bench-" + secrets.token_hex(8),
              "NUDGE_RATE_LIMIT_PER_SECOND": "1000000", "NUDGE_LOG_LEVEL": "WARNING"}
    gateway_env = {**common, "NUDGE_DATABASE_URL": with_database(server_url, dbs["gateway"]),
                   "NUDGE_HTTP_PORT": str(http_port), "NUDGE_PROFILE_ADDR": f"{HOST}:{grpc_port}"}
    procs.start("profile", ["-m", "services.profile"], {
        **common, "NUDGE_DATABASE_URL": with_database(server_url, dbs["profile"]), "NUDGE_GRPC_PORT": str(grpc_port)})
    procs.start("gateway", ["-m", "gateway"], gateway_env)
    base = f"http://{HOST}:{http_port}"
    await wait_ready(client, f"{base}/readyz", procs, "gateway")
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
    before, stored[0] = await count_rows(profile_url, "events"), 0
    result = await drive(send, bodies, args.concurrency, Result("Nudge POST /v1/batch"))
    result.items = await count_rows(profile_url, "events") - before
    if result.items != args.events or stored[0] != args.events:
        raise RuntimeError(f"sent {args.events} events, replies say {stored[0]} stored, "
                           f"the events table gained {result.items}")
    return result


# -- the run -----------------------------------------------------------------------
async def run(args) -> None:
    # SIGTERM stops the run like Ctrl-C does, through the clean-up below.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    rng, run_id = random.Random(args.seed), secrets.token_hex(4)
    calls = make_calls(args.warmup + args.events, args.users, rng, run_id)
    warm_calls, calls = chunks(calls[:args.warmup], args.batch), chunks(calls[args.warmup:], args.batch)
    profile_ids = {f"user-{u}": uuid.uuid4() for u in range(args.users)}
    dbs = {name: f"bench_{name}_{run_id}" for name in ("profile", "gateway", "copy")}
    redis = Redis.from_url(args.redis_url)
    keys_before = set(await redis.keys("*"))
    results = []
    with tempfile.TemporaryDirectory(prefix="nudge-bench-") as log_dir:
        procs = Processes(Path(log_dir))
        try:
            await admin_execute(args.database_url, *(f'CREATE DATABASE "{db}"' for db in dbs.values()))
            limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
            async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:
                # Nudge first, so its start-up (migrations) does not overlap the baselines.
                status("starting the profile service and the gateway")
                base, key = await start_nudge(procs, client, args.database_url, dbs, args.redis_url)
                status("bare endpoint")
                results.append(await bench_bare(args, procs, client, [batch_body(b) for b in warm_calls],
                                                [batch_body(b) for b in calls]))
                status("asyncpg COPY")
                results.append(await bench_copy(args, with_database(args.database_url, dbs["copy"]),
                                                [copy_records(b, profile_ids) for b in warm_calls],
                                                [copy_records(b, profile_ids) for b in calls]))
                status("Nudge POST /v1/batch")
                nudge = await bench_nudge(args, client, base, key, with_database(args.database_url, dbs["profile"]),
                                          [batch_body(b) for b in warm_calls], [batch_body(b) for b in calls])
                results.insert(0, nudge)
        except Exception:
            for name in ("profile", "gateway"):
                print(f"--- last lines of the {name} log ---\n{procs.log(name)}", file=sys.stderr)
            raise
        finally:
            procs.stop_all()
            await admin_execute(args.database_url,
                                *(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in dbs.values()))
            created = set(await redis.keys("*")) - keys_before
            if created:
                await redis.delete(*created)
            await redis.aclose()
    print_table(args, results)


def print_table(args, results: list[Result]) -> None:
    nudge = results[0]
    print(f"\n{args.events} events in batches of {args.batch}, {args.concurrency} concurrent senders, "
          f"{args.users} users, {os.cpu_count()} CPUs")
    print(f"{'':28}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'Nudge ÷ this':>14}")
    for r in results:
        ratio = "" if r is nudge else f"{nudge.rate / r.rate:.1%}"
        print(f"{r.name:<28}{r.rate:>10,.0f}{r.percentile(50):>9.1f}{r.percentile(99):>9.1f}{ratio:>14}")
    share = nudge.rate / results[1].rate
    verdict = "met" if nudge.rate >= AIM_EVENTS_PER_SECOND and share >= AIM_SHARE_OF_BARE else "NOT met"
    print(f"aim ≥ {AIM_EVENTS_PER_SECOND:,} events/s and ≥ {AIM_SHARE_OF_BARE:.0%} of the bare endpoint: {verdict}")


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
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events in the measured run")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent senders")
    parser.add_argument("--batch", type=int, default=100, help="events per POST /v1/batch")
    parser.add_argument("--users", type=int, default=2_000, help="distinct userIds")
    parser.add_argument("--warmup", type=int, default=2_000, help="events sent before measuring")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="local PostgreSQL; the run creates and drops its own databases there")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.events, args.concurrency, args.batch, args.users) < 1 or args.warmup < 0:
        parser.error("--events, --concurrency, --batch and --users must be positive, --warmup not negative")
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    run_bench("bench.ingest", run(args), "processes stopped and databases dropped")


if __name__ == "__main__":
    main()
