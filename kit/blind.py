"""Blind indexes: a keyed hash of a normalized identifier, so a table can be searched by an
identifier it does not hold in the clear (the profile service's erasure tombstones; lookups
of identifiers stored encrypted). The key is a deployment secret (`NUDGE_BLIND_INDEX_KEY`):
without it a digest cannot be tested against guessed emails or phone numbers."""

import hashlib
import hmac


def blind_index(key: bytes, identifier_type: str, value: str) -> bytes:
    """HMAC-SHA256 of the identifier's type and value, the value as the profile service
    normalizes it (email lowercased, phone E.164): one digest per identifier, whoever asks."""
    return hmac.digest(key, f"{identifier_type}\x1f{value}".encode(), hashlib.sha256)
