"""What every benchmark shares: arguments, the service processes (started as
`python -m services.<name>` / `python -m gateway` are), their databases, readiness waits,
the clean-up of what a run put in Redis, CPU time from /proc, and the results table.

A benchmark talks to Nudge only through its public entry points: the processes, their
gRPC stubs in gen/, the gateway's HTTP API and the documented stream contracts. It never
imports a service's modules; `tests/bench/` runs each one at a tiny size."""

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from kit.db import with_database

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/5"
TICK = os.sysconf("SC_CLK_TCK")


# -- arguments and running -------------------------------------------------------------
def parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """The benchmark's parser with the options every one has: --seed, --database-url, --redis-url."""
    found = argparse.ArgumentParser(prog=f"python -m {prog}", description=doc.split("\n\n")[0])
    found.add_argument("--seed", type=int, default=1)
    found.add_argument("--database-url", default=DATABASE_URL,
                       help="local PostgreSQL; the run creates and drops its own databases there")
    found.add_argument("--redis-url", default=REDIS_URL)
    return found


def reporter(prog: str) -> Callable[[str], None]:
    """status(message): a progress line on stderr (stdout is the table)."""
    def status(message: str) -> None:
        print(f"{prog}: {message}", file=sys.stderr, flush=True)
    return status


def run_bench(prog: str, main: Awaitable, cleaned: str) -> None:
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


# -- processes -------------------------------------------------------------------------
class Processes:
    """Subprocesses of this run, each logging to a file that is shown when it fails."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        """`python <args>` with this environment minus proxies and NUDGE_* settings, plus `env`."""
        base = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("NUDGE_")}
        with open(self.log_dir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env={**base, **env},
                                    stdout=log, stderr=subprocess.STDOUT)
        self.running[name] = proc
        return proc

    def service(self, name: str, module: str, env: dict[str, str]) -> str:
        """`python -m <module>` (services.segment, gateway, …) logging WARNING and above, on a
        free gRPC port unless `env` names one; returns its gRPC address."""
        env = {"NUDGE_LOG_LEVEL": "WARNING", "NUDGE_GRPC_PORT": str(free_port()), **env}
        self.start(name, ["-m", module], env)
        return f"{HOST}:{env['NUDGE_GRPC_PORT']}"

    def log(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        text = path.read_text(errors="replace").splitlines() if path.exists() else []
        return "\n".join(text[-lines:])

    def logs(self) -> list[str]:
        return sorted(p.stem for p in self.log_dir.glob("*.log"))

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.running.values()]

    def check(self, *names: str) -> None:
        """Fails with the log of a process (of `names`, or any) that has exited."""
        for name in names or list(self.running):
            proc = self.running.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")

    def pause(self, name: str) -> None:
        self.running[name].send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.running[name].send_signal(signal.SIGCONT)

    def stop(self, name: str) -> None:
        proc = self.running.pop(name)
        proc.send_signal(signal.SIGCONT)  # a paused process would not see SIGTERM
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


async def wait_http(client: httpx.AsyncClient, url: str, procs: Processes, name: str, timeout: float = 120) -> None:
    """Until `url` answers 200; the log of `name` in the error if a process exits or it does not."""
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        procs.check()
        with contextlib.suppress(httpx.TransportError):
            reply = await client.get(url)
            if reply.status_code == 200:
                return
            last = f"{reply.status_code} {reply.text[:300]}"
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{name} not ready after {timeout:.0f}s ({url}: {last}):\n{procs.log(name)}")


def channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)])


async def wait_grpc(address: str, procs: Processes, name: str, timeout: float = 120) -> None:
    """Until the process `name` answers gRPC health checks at `address` as SERVING (it has
    migrated its database by then); its log in the error if it exits or does not answer."""
    deadline = time.monotonic() + timeout
    async with channel(address) as chan:
        health = health_pb2_grpc.HealthStub(chan)
        while time.monotonic() < deadline:
            procs.check(name)
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{name} not serving after {timeout:.0f} s:\n{procs.log(name)}")


async def migrate(procs: Processes, module: str, url: str, redis_url: str, **env: str) -> None:
    """Migrates `url` the way the service does it: starts `python -m <module>` on it (it
    migrates at start), waits until it serves, stops it. For benchmarks that seed the
    service's tables before its measured processes start. `env`: more of its settings (a
    consumer group of the run's, so that it leaves none of its own behind)."""
    name = f"migrate-{module.rpartition('.')[2]}"
    address = procs.service(name, module, {"NUDGE_DATABASE_URL": url, "NUDGE_REDIS_URL": redis_url, **env})
    try:
        await wait_grpc(address, procs, name)
    finally:
        procs.stop(name)


async def until(check: Callable[[], Awaitable[bool]], procs: Processes, what: str, timeout: float,
                poll: float = 0.1) -> None:
    """Polls `check` until it is true; fails if a process exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not await check():
        procs.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} after {timeout:.0f} s")
        await asyncio.sleep(poll)


# -- databases -------------------------------------------------------------------------
async def admin_execute(server_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def fetchval(url: str, query: str, *params):
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query, *params)
    finally:
        await conn.close()


async def server_note(url: str, redis: Redis) -> str:
    conn = await asyncpg.connect(url)
    try:
        version = await conn.fetchval("SHOW server_version")
        autovacuum = await conn.fetchval("SHOW autovacuum")
    finally:
        await conn.close()
    redis_version = (await redis.info("server"))["redis_version"]
    return f"PostgreSQL {version.split()[0]} (autovacuum {autovacuum}), Redis {redis_version}"


# -- Redis clean-up --------------------------------------------------------------------
class RedisUndo:
    """Removes what this run put in Redis and nothing else, since another run may share the
    database: keys matching the run's `patterns`, the stream entries of its `workspaces`,
    the consumer groups it created, the streams it created once they are empty, and (with
    `new_keys`, for a run that cannot name its keys) every key that appeared meanwhile."""

    def __init__(self, redis: Redis, workspaces: Iterable[str] = (), patterns: Iterable[str] = (),
                 new_keys: bool = False) -> None:
        self.redis, self.new_keys = redis, new_keys
        self.workspaces, self.patterns = {w.encode() for w in workspaces}, list(patterns)
        self.tails: dict[bytes, bytes] = {}
        self.keys_before: set[bytes] = set()
        self.groups: set[tuple[str, str]] = set()

    async def snapshot(self) -> None:
        if self.new_keys:
            self.keys_before = set(await self.redis.keys("*"))
        async for stream in self.redis.scan_iter(_type="stream", count=1000):
            last = await self.redis.xrevrange(stream, count=1)
            self.tails[stream] = last[0][0] if last else b"0-0"

    async def create_group(self, stream: str, group: str, start: str = "$") -> None:
        await self.redis.xgroup_create(stream, group, id=start, mkstream=True)
        self.groups.add((stream, group))

    async def delete_keys(self, pattern: str) -> int:
        deleted, batch = 0, []
        async for key in self.redis.scan_iter(match=pattern, count=5000):
            batch.append(key)
            if len(batch) == 5000:
                deleted += await self.redis.unlink(*batch)
                batch = []
        if batch:
            deleted += await self.redis.unlink(*batch)
        return deleted

    async def restore(self) -> None:
        if self.new_keys:
            created = set(await self.redis.keys("*")) - self.keys_before
            if created:
                await self.redis.delete(*created)
        for pattern in self.patterns:
            await self.delete_keys(pattern)
        for stream, group in self.groups:
            with contextlib.suppress(ResponseError):
                await self.redis.xgroup_destroy(stream, group)
        async for stream in self.redis.scan_iter(_type="stream", count=1000):
            start = self.tails.get(stream, b"0-0")
            while entries := await self.redis.xrange(stream, min=b"(" + start, count=2000):
                start = entries[-1][0]
                mine = [entry_id for entry_id, fields in entries if fields.get(b"workspace_id") in self.workspaces]
                if mine:
                    await self.redis.xdel(stream, *mine)
            created = stream not in self.tails
            if created and await self.redis.xlen(stream) == 0 and not await self.redis.xinfo_groups(stream):
                await self.redis.delete(stream)


# -- streams ---------------------------------------------------------------------------
# The platform's streams are kit.payloads' families, one partition each (the default).
def entry_tuple(entry_id) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


async def xadd_all(redis: Redis, stream: str, entries: list[dict], chunk: int = 1000) -> bytes:
    """Appends pre-encoded entries in pipelines; returns the id of the last one."""
    last = b""
    for start in range(0, len(entries), chunk):
        async with redis.pipeline(transaction=False) as pipe:
            for fields in entries[start:start + chunk]:
                pipe.xadd(stream, fields)
            last = (await pipe.execute())[-1]
    return last


# -- one run ---------------------------------------------------------------------------
class Run:
    """One benchmark run: its id, its log directory and processes, its databases and its
    Redis undo. On the way out, whatever happened (failure, Ctrl-C, SIGTERM), the processes
    stop, the databases are dropped and Redis is put back; on a failure the end of every
    process log is shown.

        async with harness.Run(args, "bench.x") as run:
            url = await run.database("x")
            run.undo.workspaces.add(workspace_id.encode())"""

    def __init__(self, args, prog: str, *, workspaces: Iterable[str] = (), patterns: Iterable[str] = (),
                 new_keys: bool = False) -> None:
        self.args, self.status = args, reporter(prog)
        self.id = secrets.token_hex(4)
        self.redis = Redis.from_url(args.redis_url)
        self.undo = RedisUndo(self.redis, workspaces, patterns, new_keys)
        self.databases: list[str] = []
        self._logs = tempfile.TemporaryDirectory(prefix="nudge-bench-")
        self.procs = Processes(Path(self._logs.name))

    async def __aenter__(self) -> "Run":
        # SIGTERM stops the run like Ctrl-C does, through the clean-up below.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
        await self.undo.snapshot()
        return self

    async def database(self, name: str) -> str:
        """A fresh database `bench_<name>_<run id>`, dropped at the end; returns its URL."""
        database = f"bench_{name}_{self.id}"
        self.databases.append(database)
        await admin_execute(self.args.database_url, f'CREATE DATABASE "{database}"')
        return with_database(self.args.database_url, database)

    async def __aexit__(self, kind, error, tb) -> None:
        try:
            if kind is not None:
                for name in self.procs.logs():
                    print(f"--- last lines of the {name} log ---\n{self.procs.log(name)}", file=sys.stderr)
            self.procs.stop_all()
            if self.databases:
                await admin_execute(self.args.database_url,
                                    *(f'DROP DATABASE IF EXISTS "{d}" WITH (FORCE)' for d in self.databases))
            await self.undo.restore()
        finally:
            await self.redis.aclose()
            self._logs.cleanup()


# -- CPU time from /proc ---------------------------------------------------------------
def cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far; None where /proc has no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


async def backends(conn) -> list[int]:
    """The PostgreSQL backends serving `conn`'s database, other than `conn`'s."""
    return [r["pid"] for r in await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]


@dataclass
class Cpu:
    """CPU seconds of some processes and of some PostgreSQL backends between start and
    stop. A backend gone before stop is not counted (the pools here keep theirs)."""
    own: float = 0.0
    postgres: float = 0.0
    _backends: dict[int, float] = field(default_factory=dict)

    def start(self, pids: list[int], backend_pids: list[int]) -> "Cpu":
        self.own = -sum(cpu_seconds(p) or 0.0 for p in pids)
        self._backends = {pid: cpu_seconds(pid) or 0.0 for pid in backend_pids}
        return self

    def stop(self, pids: list[int], backend_pids: list[int]) -> "Cpu":
        self.own += sum(cpu_seconds(p) or 0.0 for p in pids)
        self.postgres = sum((cpu_seconds(p) or 0.0) - self._backends.get(p, 0.0) for p in backend_pids)
        return self


# -- load ------------------------------------------------------------------------------
@dataclass
class Result:
    """A measured row: `items` done in `seconds`, single-call latencies (s), CPU seconds."""
    name: str
    items: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    def percentile(self, p: float) -> float:
        """ms"""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def drive(send, payloads: Iterable, concurrency: int, result: Result) -> Result:
    """`concurrency` workers send the payloads one after another; times first send → last
    reply, and the CPU time this process spent meanwhile (result.cpu)."""
    pending = iter(payloads)

    async def worker():
        for payload in pending:
            started = time.perf_counter()
            await send(payload)
            result.latencies.append(time.perf_counter() - started)

    before, started = os.times(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    after = os.times()
    result.cpu = (after.user + after.system) - (before.user + before.system)
    return result


# -- the table -------------------------------------------------------------------------
def table(label: int, headings: list[tuple[str, int]], rows: list[tuple[str, list[str]]]) -> None:
    """A heading line and one line a row: the name left in `label` columns, then each cell
    right-aligned in its heading's width. Cells come formatted (the ratio cells with share()
    / times())."""
    print(" " * label + "".join(f"{h:>{w}}" for h, w in headings))
    for name, cells in rows:
        print(f"{name:<{label}}" + "".join(f"{c:>{w}}" for c, (_, w) in zip(cells, headings, strict=True)))


def share(nudge: float, baseline: float) -> str:
    """Nudge's rate as a share of a same-run baseline's: '41.2%'."""
    return f"{nudge / baseline:.1%}"


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"
