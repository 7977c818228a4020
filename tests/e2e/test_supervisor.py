"""`make run` reports a service that dies and stops the rest instead of running half a platform."""

import signal
import tempfile
from pathlib import Path

import psutil


def test_a_dead_service_is_reported_and_stops_the_platform(launcher_factory):
    with tempfile.TemporaryDirectory(prefix="nudge-e2e-dead-", dir="/tmp", ignore_cleanup_errors=True) as data_dir:
        launcher = launcher_factory(Path(data_dir)).start()
        children = {" ".join(p.cmdline()): p for p in psutil.Process(launcher.proc.pid).children()}
        (profile,) = [p for cmd, p in children.items() if "services.profile" in cmd]
        (gateway,) = [p for cmd, p in children.items() if cmd.endswith("-m gateway")]
        profile.send_signal(signal.SIGKILL)
        assert launcher.proc.wait(timeout=60) == 1
        output = "\n".join(launcher.output)  # complete: the launcher has exited
        assert f"profile exited with code {-signal.SIGKILL}; stopping the platform" in output, launcher.log_tail()
        assert not gateway.is_running() or gateway.status() == psutil.STATUS_ZOMBIE
