"""python -m bench.dispatch: the dispatch service's fatigue decisions per second and its sends
per second, each next to baselines measured by the same client in the same run.

1. fatigue: `services.dispatch.fatigue.decide` with a realistic policy over 100,000 distinct
   profiles (each once, then random repeats), against a bare EVALSHA of `return 1` and a bare
   INCR from the same Redis client at the same concurrency;
2. sends: the real pipeline (`Send` over gRPC to `python -m services.dispatch`, with its
   outbox relay running) sending webhooks to a local HTTP server, against the same server
   hit directly by httpx at the same concurrency.

The dispatch service, the profile service (`python -m services.profile`) and the webhook
receiver run as subprocesses; the dispatch service and the profile service each get a
fresh database of the local PostgreSQL. Everything the run creates (databases, its Redis keys and stream
entries) is removed at the end, and only that: other runs may share the Redis database.
"""

import argparse
import cProfile
import io
import os
import pstats
import random
import uuid
from datetime import datetime, timezone

import httpx
import orjson
from google.protobuf.timestamp_pb2 import Timestamp
from redis.asyncio import Redis

from bench import harness
from bench.harness import HOST, Processes, Result, cpu_seconds, drive, fetchval, free_port, wait_grpc, wait_http
from kit.payloads import EVENTS
from kit.streams import family_streams
from nudge.common.v1 import common_pb2
from nudge.dispatch.v1 import dispatch_pb2, dispatch_pb2_grpc
from nudge.profile.v1 import profile_pb2, profile_pb2_grpc
POLICY = {"rules": [{"kind": "channel", "limit": 2, "window": "day"},
                    {"kind": "template", "limit": 1, "window": "P7D"},
                    {"kind": "all_channels", "limit": 5, "window": "P7D"}]}
FATIGUE_CHANNELS = ["sms", "email", "push", "alimtalk"]
FATIGUE_WEIGHTS = [0.3, 0.3, 0.25, 0.15]
TEMPLATE = '{"webhook": {"body": {"text": "hi {{ profile.name }}"}}}'
AIM_FATIGUE_SHARE, AIM_SENDS_PER_SECOND = 0.50, 2_000


status = harness.reporter("bench.dispatch")


class Profiler:
    """cProfile around one measured run when --cprofile is given; writes PREFIX-<name>.pstats."""

    def __init__(self, prefix: str | None, name: str) -> None:
        self.prefix, self.name = prefix, name
        self.profile = cProfile.Profile() if prefix else None

    def __enter__(self):
        if self.profile:
            self.profile.enable()
        return self

    def __exit__(self, *exc) -> None:
        if not self.profile:
            return
        self.profile.disable()
        path = f"{self.prefix}-{self.name}.pstats"
        self.profile.dump_stats(path)
        text = io.StringIO()
        pstats.Stats(self.profile, stream=text).sort_stats("tottime").print_stats(25)
        status(f"cProfile of {self.name} written to {path}; by own time:\n{text.getvalue()}")


# -- 1. fatigue decisions ------------------------------------------------------------
def fatigue_workload(profiles: int, decisions: int, rng: random.Random, prefix: str) -> list[tuple]:
    """Every profile once, then random repeats, shuffled: (profile, channel, template, journey, send id)."""
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(profiles)]
    order = ids[:decisions] + [rng.choice(ids) for _ in range(decisions - profiles)]
    rng.shuffle(order)
    channels = rng.choices(FATIGUE_CHANNELS, FATIGUE_WEIGHTS, k=len(order))
    return [(f"{prefix}{profile}", channel, f"t-{rng.randrange(20)}",
             f"j-{rng.randrange(10)}" if rng.random() < 0.5 else None, str(uuid.uuid4()))
            for profile, channel in zip(order, channels)]


async def bench_fatigue(args, redis: Redis, workspace_id: str, run_id: str, rng: random.Random) -> tuple:
    from services.dispatch import fatigue

    policy = fatigue.parse_policy(POLICY)
    measured = fatigue_workload(args.profiles, args.decisions, rng, "")
    warm = fatigue_workload(args.warmup, args.warmup, rng, "warm-")
    tally = {"allowed": 0, "denied": 0}

    async def decide(item: tuple) -> None:
        profile, channel, template, journey, send_id = item
        decision = await fatigue.decide(redis, policy, workspace_id=workspace_id, profile_id=profile,
                                        channel=channel, template_id=template, journey_id=journey,
                                        transactional=False, now=datetime.now(timezone.utc), zone="Asia/Seoul",
                                        send_id=send_id)
        tally["allowed" if decision.allowed else "denied"] += 1

    sha = await redis.script_load("return 1")

    async def evalsha(item: tuple) -> None:
        await redis.evalsha(sha, 0)

    async def incr(item: tuple) -> None:
        await redis.incr(f"bench:dispatch:{run_id}:incr:{item[0]}")

    results = []
    for name, send in (("bare EVALSHA (return 1)", evalsha), ("bare INCR", incr)):
        status(f"fatigue: {name}")
        await drive(send, warm, args.concurrency, Result("warm-up"))
        result = await drive(send, measured, args.concurrency, Result(name))
        result.items = len(measured)
        results.append(result)
    status(f"fatigue: decide() over {len(measured):,} decisions")
    await drive(decide, warm, args.concurrency, Result("warm-up"))
    tally.update(allowed=0, denied=0)
    with Profiler(args.cprofile, "fatigue"):
        nudge = await drive(decide, measured, args.concurrency, Result("Nudge fatigue.decide"))
    nudge.items = len(measured)
    if tally["allowed"] + tally["denied"] != len(measured):
        raise RuntimeError(f"{len(measured)} decisions asked, {tally} answered")
    distinct = len({item[0] for item in measured})
    return nudge, results, tally, distinct


# -- 2. sends ------------------------------------------------------------------------
async def create_profiles(address: str, workspace_id: str, count: int, run_id: str) -> list[str]:
    """`count` people through the profile service's Ingest (identify calls), in batches of 500."""
    now = Timestamp()
    now.FromDatetime(datetime.now(timezone.utc))
    ids: list[str] = []
    async with harness.channel(address) as channel:
        profiles = profile_pb2_grpc.ProfileServiceStub(channel)
        for start in range(0, count, 500):
            calls = [profile_pb2.TrackingCall(
                type="identify", message_id=f"bench-{run_id}-identify-{n}", user_id=f"user-{n}",
                traits_json=orjson.dumps({"name": f"User {n}", "email": f"user{n}@example.com"}).decode(),
                context_json="{}", received_at=now) for n in range(start, min(count, start + 500))]
            reply = await profiles.Ingest(profile_pb2.IngestRequest(
                context=common_pb2.RequestContext(workspace_id=workspace_id, actor="bench"), calls=calls), timeout=120)
            for result in reply.results:
                if result.outcome != profile_pb2.IngestResult.STORED:
                    raise RuntimeError(f"Ingest did not store a call: {result}")
                ids.append(result.profile_id)
    if len(set(ids)) != count:
        raise RuntimeError(f"asked for {count} profiles, got {len(set(ids))}")
    return ids


async def receiver_count(client: httpx.AsyncClient, base: str) -> dict:
    return (await client.get(f"{base}/count")).json()


async def bench_sends(args, procs: Processes, client: httpx.AsyncClient, keys: harness.RedisUndo, run_id: str,
                      workspace_id: str, urls: dict) -> tuple:
    """The webhook receiver hit directly (the baselines), then through the dispatch service's
    Send; both at the same concurrency."""
    base, profile_addr = await start_receiver_and_profiles(args, procs, client, urls["profile"])
    status(f"sends: {args.sends + args.send_warmup:,} profiles through the profile service's Ingest")
    people = await create_profiles(profile_addr, workspace_id, args.sends + args.send_warmup, run_id)

    # The baselines: the same server, hit directly with the same concurrency.
    body = orjson.dumps({"delivery_id": str(uuid.uuid4()), "workspace_id": workspace_id, "profile_id": people[0],
                         "data": {"text": "hi User 0"}})
    baselines = [await bare_posts(args, client, base, body, name, headers)
                 for name, headers in (("bare httpx POST, keep-alive", {}),
                                       ("bare httpx POST, Connection: close", {"Connection": "close"}))]

    status("sends: the dispatch service (channel config, template, policy)")
    address = await start_dispatch(args, procs, keys, run_id, urls["dispatch"], profile_addr)
    context = common_pb2.RequestContext(workspace_id=workspace_id, actor="bench")
    async with harness.channel(address) as channel:
        dispatch = dispatch_pb2_grpc.DispatchServiceStub(channel)
        await configure_dispatch(dispatch, context, f"{base}/hook")
        status(f"sends: warm-up ({args.send_warmup:,}), then {args.sends:,} sends")
        sender = Sender(dispatch, context, run_id)
        await drive(sender.send, list(enumerate(people[args.sends:], start=args.sends)), args.concurrency,
                    Result("warm-up"))
        before = await receiver_count(client, base)
        sender.outcomes.clear()
        others = {name: cpu_seconds(procs.running[name].pid) for name in ("dispatch", "profile", "receiver")}
        with Profiler(args.cprofile, "sends"):
            nudge = await drive(sender.send, list(enumerate(people[:args.sends])), args.concurrency,
                                Result("Nudge Send over gRPC"))
    for name, cpu in others.items():
        now = cpu_seconds(procs.running[name].pid)
        others[name] = None if cpu is None or now is None else now - cpu
    after = await receiver_count(client, base)
    nudge.items = after["requests"] - before["requests"]
    await check_sends(args, urls["dispatch"], workspace_id, nudge, sender.outcomes,
                      after["deliveries"] - before["deliveries"])
    return nudge, baselines, others


async def start_receiver_and_profiles(args, procs: Processes, client: httpx.AsyncClient,
                                      profile_url: str) -> tuple[str, str]:
    """The profile service and the webhook receiver, once both answer; returns the receiver's
    base URL and the profile service's gRPC address."""
    http_port = free_port()
    profile_addr = procs.service("profile", "services.profile", {"NUDGE_DATABASE_URL": profile_url,
                                                                 "NUDGE_REDIS_URL": args.redis_url})
    procs.start("receiver", ["-m", "bench.dispatch", "--serve-receiver", str(http_port)], {})
    base = f"http://{HOST}:{http_port}"
    await wait_http(client, f"{base}/healthz", procs, "receiver")
    await wait_grpc(profile_addr, procs, "profile")
    return base, profile_addr


async def bare_posts(args, client: httpx.AsyncClient, base: str, body: bytes, name: str, headers: dict) -> Result:
    """`--sends` POSTs of one webhook body straight to the receiver, after the warm-up ones;
    fails unless the receiver counted each."""
    url = f"{base}/hook"
    status(f"sends: {name}")

    async def post(_) -> None:
        reply = await client.post(url, content=body, headers={"Content-Type": "application/json", **headers})
        if reply.status_code != 200:
            raise RuntimeError(f"POST {url} → {reply.status_code}")

    await drive(post, range(args.send_warmup), args.concurrency, Result("warm-up"))
    before = (await receiver_count(client, base))["requests"]
    result = await drive(post, range(args.sends), args.concurrency, Result(name))
    result.items = (await receiver_count(client, base))["requests"] - before
    if result.items != args.sends:
        raise RuntimeError(f"{name}: {args.sends} requests made, the server counted {result.items}")
    return result


async def start_dispatch(args, procs: Processes, keys: harness.RedisUndo, run_id: str, url: str,
                         profile_addr: str) -> str:
    """`python -m services.dispatch` on its database, reading the events stream in a consumer
    group of the run's; returns its gRPC address once it serves."""
    group = f"bench-dispatch-{run_id}"
    for stream in family_streams(EVENTS, 1):  # its consumer group: the run's, at the end of the stream
        await keys.create_group(stream, group)
    address = procs.service("dispatch", "services.dispatch", {
        "NUDGE_DATABASE_URL": url, "NUDGE_REDIS_URL": args.redis_url, "NUDGE_PROFILE_ADDR": profile_addr,
        "NUDGE_CONSUMER_GROUP": group, "NUDGE_EGRESS_ALLOW": HOST})  # the receiver is local: the operator allows it
    await wait_grpc(address, procs, "dispatch")
    return address


async def configure_dispatch(dispatch: dispatch_pb2_grpc.DispatchServiceStub, context: common_pb2.RequestContext,
                             hook_url: str) -> None:
    """The template, the webhook channel pointing at the receiver (its rate limit out of the
    way) and the fatigue policy, through the dispatch API."""
    await dispatch.PutTemplate(dispatch_pb2.PutTemplateRequest(
        context=context, id="t", name="t", channels_json=TEMPLATE), timeout=60)
    await dispatch.PutChannelConfig(dispatch_pb2.PutChannelConfigRequest(
        context=context, channel="webhook", provider="webhook", config_json=orjson.dumps({
            "url": hook_url, "secret": "x", "allowed_hosts": [HOST], "rate_per_second": 100_000,
            "burst": 100_000}).decode()), timeout=60)
    await dispatch.SetPolicy(dispatch_pb2.SetPolicyRequest(
        context=context, policy_json=orjson.dumps({"fatigue": POLICY}).decode()), timeout=60)


class Sender:
    """Send over gRPC for (n, profile id), counting the replies by status; any but "sent" fails."""

    def __init__(self, dispatch: dispatch_pb2_grpc.DispatchServiceStub, context: common_pb2.RequestContext,
                 run_id: str) -> None:
        self.dispatch, self.context, self.run_id = dispatch, context, run_id
        self.outcomes: dict[str, int] = {}

    async def send(self, item: tuple[int, str]) -> None:
        n, profile_id = item
        delivery = await self.dispatch.Send(dispatch_pb2.SendRequest(
            context=self.context, idempotency_key=f"bench-{self.run_id}-{n}", profile_id=profile_id,
            channels=["webhook"], template_id="t"), timeout=60)
        self.outcomes[delivery.status] = self.outcomes.get(delivery.status, 0) + 1
        if delivery.status != "sent":
            raise RuntimeError(f"send {n}: {delivery.status} ({delivery.rule}: {delivery.reason})")


async def check_sends(args, dispatch_url: str, workspace_id: str, nudge: Result, outcomes: dict,
                      new_ids: int) -> None:
    """Every measured send answered "sent" and reached the receiver once, with a delivery id
    of its own, and the deliveries table holds every send of the run (warm-up included)."""
    sent = await fetchval(dispatch_url, "SELECT count(*) FROM deliveries WHERE workspace_id = $1 "
                                        "AND status = 'sent'", workspace_id)
    expected = args.sends + args.send_warmup
    if not (nudge.items == new_ids == outcomes.get("sent", 0) == args.sends and sent == expected):
        raise RuntimeError(f"{args.sends} sends: replies {outcomes}, the server got {nudge.items} requests "
                           f"for {new_ids} new deliveries, the deliveries table has {sent} sent "
                           f"(with {args.send_warmup} warm-up sends)")


# -- the run -------------------------------------------------------------------------
async def run(args) -> None:
    fatigue_part = sends_part = None
    async with harness.Run(args, "bench.dispatch") as bench:
        rng, run_id, redis, undo = random.Random(args.seed), bench.id, bench.redis, bench.undo
        fatigue_ws, send_ws = f"bench-fatigue-{run_id}", f"bench-dispatch-{run_id}"
        undo.workspaces.update({fatigue_ws.encode(), send_ws.encode()})
        undo.patterns += [f"nudge:dispatch:fatigue:{{{fatigue_ws}:*", f"nudge:dispatch:fatigue:{{{send_ws}:*",
                          f"nudge:dispatch:rate:{send_ws}:*", f"bench:dispatch:{run_id}:*"]
        if args.part in ("all", "fatigue"):
            fatigue_part = await bench_fatigue(args, redis, fatigue_ws, run_id, rng)
            await undo.delete_keys(f"nudge:dispatch:fatigue:{{{fatigue_ws}:*")
        if args.part in ("all", "sends"):
            urls = {name: await bench.database(name) for name in ("dispatch", "profile")}
            limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
            async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:
                sends_part = await bench_sends(args, bench.procs, client, undo, run_id, send_ws, urls)
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d}, {os.cpu_count()} CPUs, {args.concurrency} concurrent tasks"
          + ("  (under cProfile: rates not comparable)" if args.cprofile else ""))
    if fatigue_part:
        print_fatigue(args, *fatigue_part)
    if sends_part:
        print_sends(args, *sends_part)


def print_rows(unit: str, nudge: Result, baselines: list[Result]) -> None:
    harness.table(36, [(unit, 12), ("p50 ms", 9), ("p99 ms", 9), ("CPU µs", 9), ("Nudge ÷ this", 14)], [
        (r.name, [f"{r.rate:,.0f}", f"{r.percentile(50):.2f}", f"{r.percentile(99):.2f}",
                  f"{r.cpu / r.items * 1e6:.0f}", "" if r is nudge else harness.share(nudge.rate, r.rate)])
        for r in (nudge, *baselines)])


def print_fatigue(args, nudge: Result, baselines: list[Result], tally: dict, distinct: int) -> None:
    print(f"\nfatigue: {nudge.items:,} decisions over {distinct:,} distinct profiles, "
          f"{tally['allowed']:,} allowed / {tally['denied']:,} denied, one redis-py client "
          f"(CPU µs: this process's CPU time per decision)")
    print_rows("decisions/s", nudge, baselines)
    print(f"aim ≥ {AIM_FATIGUE_SHARE:.0%} of bare EVALSHA: "
          f"{harness.verdict(nudge.rate / baselines[0].rate >= AIM_FATIGUE_SHARE)}")


def print_sends(args, nudge: Result, baselines: list[Result], others: dict) -> None:
    print(f"\nsends: {nudge.items:,} webhooks through the pipeline to a local uvicorn server "
          f"(requests received = sends; CPU µs: this process's CPU time per send)")
    print_rows("sends/s", nudge, baselines)
    if None not in others.values():
        print(f"CPU per send elsewhere: dispatch service {others['dispatch'] / nudge.items * 1e6:,.0f} µs, "
              f"profile service {others['profile'] / nudge.items * 1e6:,.0f} µs, "
              f"receiver {others['receiver'] / nudge.items * 1e6:,.0f} µs (PostgreSQL and Redis not counted)")
    print(f"aim ≥ {AIM_SENDS_PER_SECOND:,} sends/s: {harness.verdict(nudge.rate >= AIM_SENDS_PER_SECOND)}")


# -- the webhook receiver, served in its own process ------------------------------------
def serve_receiver(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    counts = {"requests": 0}
    deliveries: set[str] = set()

    async def hook(request: Request) -> JSONResponse:
        await request.body()
        counts["requests"] += 1
        if delivery := request.headers.get("x-nudge-delivery-id"):
            deliveries.add(delivery)
        return JSONResponse({"ok": True})

    async def count(request: Request) -> JSONResponse:
        return JSONResponse({"requests": counts["requests"], "deliveries": len(deliveries)})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"]), Route("/count", count),
                            Route("/healthz", healthz)])
    uvicorn.run(app, host=HOST, port=port, log_config=None, access_log=False, lifespan="off",
                timeout_graceful_shutdown=5)


def main() -> None:
    parser = harness.parser("bench.dispatch", __doc__)
    parser.add_argument("--part", choices=("all", "fatigue", "sends"), default="all")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent tasks, for every row")
    parser.add_argument("--profiles", type=int, default=100_000, help="fatigue: distinct profiles")
    parser.add_argument("--decisions", type=int, default=150_000,
                        help="fatigue: measured decisions (each profile once, the rest random repeats)")
    parser.add_argument("--warmup", type=int, default=5_000, help="fatigue: decisions before each measurement")
    parser.add_argument("--sends", type=int, default=3_000, help="sends: measured sends (one per profile)")
    parser.add_argument("--send-warmup", type=int, default=300, help="sends: sends before each measurement")
    parser.add_argument("--cprofile", metavar="PREFIX",
                        help="profile the measured runs in this process (the fatigue decisions, the Send "
                             "client); writes PREFIX-<part>.pstats")
    parser.add_argument("--serve-receiver", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        serve_receiver(args.serve_receiver)
        return
    if min(args.concurrency, args.profiles, args.decisions, args.sends) < 1 or min(args.warmup, args.send_warmup) < 0:
        parser.error("--concurrency, --profiles, --decisions and --sends must be positive, warm-ups not negative")
    harness.run_bench("bench.dispatch", run(args), "processes stopped, databases dropped, Redis keys removed")


if __name__ == "__main__":
    main()
