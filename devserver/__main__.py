"""`make run`: the whole platform on one machine, under one supervisor process.

Starts (or joins) the embedded PostgreSQL and Redis in the data directory, starts every
service and the gateway as child processes, creates a dev workspace on first run, and
prints where to reach it. Ctrl-C stops everything; a child that dies is reported and
stops the rest.

    python -m devserver [--data-dir DIR] [--http-port 8080] [--profile-port 50051] [--segment-port 50052]
                             [--dispatch-port 50053] [--journey-port 50054] [--metrics-port 50055]

Children start in order: profile, segment, dispatch, journey (which calls the three before
it), metrics (which calls none), then the gateway. Each gets the addresses of the services
it calls as localhost:<port>.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from kit import embedded
from kit.settings import REPO_ROOT


LOCAL_EGRESS = "127.0.0.0/8, ::1"  # loopback: what `make run` lets dispatch reach besides public addresses


def _wait_ready(url: str, children: dict[str, subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(children)
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the platform did not become ready within {timeout:.0f}s ({url})")


def _check_alive(children: dict[str, subprocess.Popen]) -> None:
    for name, child in children.items():
        if child.poll() is not None:
            raise ChildDied(name, child.returncode)


class ChildDied(Exception):
    def __init__(self, name: str, code: int) -> None:
        super().__init__(f"{name} exited with code {code}")


def _dev_workspace(data_dir: Path) -> dict:
    """The dev workspace's keys, created once; kept in the data dir since keys are stored hashed."""
    path = data_dir / "dev-workspace.json"
    if path.exists():
        return json.loads(path.read_text())
    import asyncio

    from gateway.settings import GatewaySettings
    from gateway.workspaces import open_store

    async def create() -> dict:
        store, engine = await open_store(GatewaySettings(data_dir=data_dir))
        try:
            workspace_id, new = await store.create("dev")
        finally:
            await engine.dispose()
        return {"workspace_id": workspace_id, **{f"{k.kind}_key": k.secret for k in new}}

    created = asyncio.run(create())
    path.write_text(json.dumps(created, indent=2))
    path.chmod(0o600)
    return created


def _stop(children: dict[str, subprocess.Popen], grace: float = 15) -> None:
    """SIGTERM to every child, then each one's exit code as it stops; one still running after
    `grace` seconds is killed, and says so."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for name, child in children.items():
        try:
            code = child.wait(max(0.1, deadline - time.monotonic()))
            print(f"{name} stopped with exit code {code}", flush=True)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            print(f"{name} did not stop within {grace:.0f}s of SIGTERM: killed", flush=True)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devserver")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("NUDGE_DATA_DIR", REPO_ROOT / ".nudge")))
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("NUDGE_HTTP_PORT", 8080)))
    parser.add_argument("--profile-port", type=int, default=50051)
    parser.add_argument("--segment-port", type=int, default=50052)
    parser.add_argument("--dispatch-port", type=int, default=50053)
    parser.add_argument("--journey-port", type=int, default=50054)
    parser.add_argument("--metrics-port", type=int, default=50055)
    return parser.parse_args(argv)


def _commands(args: argparse.Namespace) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each child's command and its own environment, in the order they start. segment and
    dispatch call journey although it starts after them: a gRPC channel connects on its first
    call, not when the service starts."""
    profile_addr, segment_addr = f"localhost:{args.profile_port}", f"localhost:{args.segment_port}"
    dispatch_addr, journey_addr = f"localhost:{args.dispatch_port}", f"localhost:{args.journey_port}"
    metrics_addr = f"localhost:{args.metrics_port}"
    return {
        "profile": ([sys.executable, "-m", "services.profile"], {"NUDGE_GRPC_PORT": str(args.profile_port)}),
        "segment": ([sys.executable, "-m", "services.segment"], {
            "NUDGE_GRPC_PORT": str(args.segment_port), "NUDGE_JOURNEY_ADDR": journey_addr}),
        "dispatch": ([sys.executable, "-m", "services.dispatch"], {
            "NUDGE_GRPC_PORT": str(args.dispatch_port), "NUDGE_PROFILE_ADDR": profile_addr,
            "NUDGE_JOURNEY_ADDR": journey_addr,
            # tracked links, the open pixel and unsubscribe links point at this gateway
            "NUDGE_TRACKING_BASE_URL": f"http://localhost:{args.http_port}",
            # one machine: sends may reach local catchers (a mail catcher, a webhook receiver)
            # unless the environment says otherwise (NUDGE_EGRESS_ALLOW= allows none)
            "NUDGE_EGRESS_ALLOW": os.environ.get("NUDGE_EGRESS_ALLOW", LOCAL_EGRESS)}),
        "journey": ([sys.executable, "-m", "services.journey"], {
            "NUDGE_GRPC_PORT": str(args.journey_port), "NUDGE_SEGMENT_ADDR": segment_addr,
            "NUDGE_DISPATCH_ADDR": dispatch_addr, "NUDGE_PROFILE_ADDR": profile_addr}),
        "metrics": ([sys.executable, "-m", "services.metrics"], {"NUDGE_GRPC_PORT": str(args.metrics_port)}),
        "gateway": ([sys.executable, "-m", "gateway"], {
            "NUDGE_HTTP_PORT": str(args.http_port), "NUDGE_PROFILE_ADDR": profile_addr,
            "NUDGE_SEGMENT_ADDR": segment_addr, "NUDGE_DISPATCH_ADDR": dispatch_addr,
            "NUDGE_JOURNEY_ADDR": journey_addr, "NUDGE_METRICS_ADDR": metrics_addr}),
    }


def _announce(base: str, workspace: dict) -> None:
    print("\nNudge is running\n"
          f"  gateway      {base}\n"
          f"  API docs     {base}/docs\n"
          f"  workspace    {workspace['workspace_id']}\n"
          f"  write key    {workspace['write_key']}\n"
          f"  admin key    {workspace['admin_key']}\n"
          "Ctrl-C stops everything.\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    data_dir = args.data_dir.resolve()
    # Started here first so the children join one running server instead of racing to start it.
    print(f"starting embedded PostgreSQL and Redis in {data_dir} …", flush=True)
    embedded.postgres_server_url(data_dir)
    env = {**os.environ, "NUDGE_DATA_DIR": str(data_dir), "NUDGE_REDIS_URL": embedded.redis_url(data_dir),
           "PYTHONUNBUFFERED": "1"}
    env.pop("NUDGE_DATABASE_URL", None)  # each service joins the embedded server with its own database
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def request_stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for name, (command, extra_env) in _commands(args).items():
            children[name] = subprocess.Popen(command, env={**env, **extra_env}, cwd=REPO_ROOT)
        base = f"http://localhost:{args.http_port}"
        # Ready is the gateway's own database and Redis; "running" also means every service answers.
        for path in ("/readyz", "/healthz/services"):
            _wait_ready(f"{base}{path}", children)
        _announce(base, _dev_workspace(data_dir))
        while not stopping:
            _check_alive(children)
            time.sleep(0.3)
        print("stopping …", flush=True)
        return 0
    except ChildDied as died:
        print(f"\n{died}; stopping the platform", file=sys.stderr, flush=True)
        return 1
    finally:
        _stop(children)
        embedded.forget_dead_users(data_dir)  # a killed child must not keep PostgreSQL running


if __name__ == "__main__":
    raise SystemExit(main())
