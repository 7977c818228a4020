"""The one way tests run a component as a process of its own (`python -m services.journey`,
`python -m devserver`, ...): started with its environment, waited for until it answers, its
output kept in a log file that failure messages quote, and stopped with a signal and a
bounded wait, then SIGKILL. Also the free ports such processes and local servers bind to."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kit.settings import REPO_ROOT
from tests.support.waiting import eventually, eventually_sync

STOP_GRACE = 30.0  # a drain on a loaded machine; tests/e2e/test_shutdown.py checks the grace itself


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Component:
    """`python <args>` run from the repository with `env`, its stdout and stderr in a log file
    of its own under `log_dir`. `address`: where its gRPC server listens, if it has one.
    `session=True` makes it lead a session of its own, so that a signal can reach its whole
    process group (Ctrl-C in a terminal)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path, *,
                 address: str | None = None, session: bool = False) -> None:
        self.name, self.args, self.env, self.address, self.session = name, list(args), dict(env), address, session
        fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=log_dir)
        os.close(fd)
        self.log = Path(path)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Component":
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, *self.args], cwd=REPO_ROOT, env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=self.session)
        return self

    # -- what it is doing ---------------------------------------------------------------
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def lines(self) -> list[str]:
        """Its output so far."""
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []

    def log_tail(self, lines: int = 80) -> str:
        return f"--- {self.name} output (tail, {self.log}) ---\n" + "\n".join(self.lines()[-lines:])

    def check_running(self) -> None:
        """Fails, quoting its log, if it has exited."""
        code = self.proc.poll()
        assert code is None, f"{self.name} exited with code {code}\n{self.log_tail()}"

    # -- until it answers -----------------------------------------------------------------
    async def serving(self, timeout: float = 120) -> "Component":
        """Until it answers gRPC health checks at its address as SERVING (a service has applied
        its migrations by then); fails with its log if it exits first or does not answer."""
        async with grpc.aio.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)

            async def answers() -> bool:
                self.check_running()
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    return reply.status == health_pb2.HealthCheckResponse.SERVING
                return False
            try:
                await eventually(answers, timeout=timeout, interval=0.1)
            except AssertionError as err:
                raise AssertionError(f"{self.name} is not serving at {self.address}: {err}\n"
                                     f"{self.log_tail()}") from None
        return self

    def printed(self, line: str, timeout: float = 180) -> list[str]:
        """Until it has printed `line` (stripped); its output up to then. Fails with its log if it
        exits first or does not print it."""
        def found() -> list[str] | None:
            lines = self.lines()
            if any(printed.strip() == line for printed in lines):
                return lines
            self.check_running()
            return None
        try:
            return eventually_sync(found, timeout=timeout, interval=0.1)
        except AssertionError as err:
            raise AssertionError(f"{self.name} did not print {line!r}: {err}\n{self.log_tail()}") from None

    # -- stopping -----------------------------------------------------------------------
    def send(self, sig: int, group: bool = False) -> None:
        """`sig` to it, or with group=True to the process group of the session it leads."""
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)

    def kill(self) -> int:
        """SIGKILL (no drain, no clean-up: a crash), to its whole group if it leads a session;
        its exit code."""
        if self.alive():
            self.send(signal.SIGKILL, group=self.session)
        return self.proc.wait()

    def stop(self, sig: int = signal.SIGTERM, grace: float = STOP_GRACE, group: bool = False) -> int:
        """`sig` (SIGTERM: a clean stop) and up to `grace` seconds to exit; its exit code. One
        still running then is killed, and the stop fails quoting its log."""
        return stop([self], sig, grace, group)[0]


def stop(components: list[Component], sig: int = signal.SIGTERM, grace: float = STOP_GRACE,
         group: bool = False) -> list[int]:
    """Stops several components at once (each gets `sig` first, then all have `grace`); their
    exit codes. Those still running after `grace` are killed, and the stop fails naming them."""
    for component in components:
        if component.alive():
            component.send(sig, group)
    deadline, stuck = time.monotonic() + grace, []
    for component in components:
        try:
            component.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            component.kill()
            stuck.append(component)
    if stuck:
        name = signal.Signals(sig).name
        raise AssertionError("\n".join(f"{c.name} did not stop within {grace:.0f}s of {name}; killed\n"
                                       f"{c.log_tail()}" for c in stuck))
    return [c.proc.returncode for c in components]


def service(name: str, log_dir: Path, **settings) -> Component:
    """`python -m services.<name>` in this environment plus NUDGE_<SETTING> for each of
    `settings`, its gRPC server on a free port unless `grpc_port` is one of them."""
    settings.setdefault("grpc_port", free_port())
    env = {**os.environ, **{f"NUDGE_{key.upper()}": str(value) for key, value in settings.items()}}
    return Component(name, ["-m", f"services.{name}"], env, log_dir, address=f"127.0.0.1:{settings['grpc_port']}")
