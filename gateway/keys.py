"""API keys: `nk_<kind>_<id>_<secret>`, stored only as an HMAC-SHA256 under a server-side pepper."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

WRITE, ADMIN = "write", "admin"
KINDS = (WRITE, ADMIN)


@dataclass(frozen=True)
class NewKey:
    id: str
    kind: str
    secret: str  # the full key, shown once


def new_key(kind: str) -> NewKey:
    key_id = secrets.token_hex(6)
    return NewKey(key_id, kind, f"nk_{kind[0]}_{key_id}_{secrets.token_urlsafe(24)}")


def key_hash(pepper: bytes, key: str) -> str:
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


def load_pepper(configured: str | None, data_dir: Path) -> bytes:
    """The configured pepper, or (embedded mode) one generated once and kept in data_dir."""
    if configured:
        return configured.encode()
    path = data_dir / "api-key-pepper"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()
