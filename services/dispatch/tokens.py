"""Signed tokens of tracked links, open pixels and unsubscribe links. Pure.

A token is base64url (no padding) of `payload + mac`: payload = version (1 byte), kind
(1 byte), the delivery id (a UUID, 16 bytes), the kind's argument (click: link id, 2 bytes;
unsubscribe: category, 1 byte; open: none) and the workspace id (UTF-8, the rest); mac =
the first 16 bytes of HMAC-SHA256(secret, payload). Nothing in it is secret, everything in
it is signed: any changed byte fails verification.
"""

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass

from services.dispatch.channels import CHANNELS

CLICK, OPEN, UNSUBSCRIBE = "click", "open", "unsubscribe"
ADVERTISING = "advertising"
CATEGORIES = (*CHANNELS, ADVERTISING)  # what an unsubscribe withdraws: one channel, or advertising
MAX_LINK_ID = 0xFFFF  # two bytes: far above what a 200,000-character render can hold

_VERSION = 1
_KINDS = {CLICK: 1, OPEN: 2, UNSUBSCRIBE: 3}
_MAC_BYTES = 16
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,400}")


@dataclass(frozen=True)
class Claim:
    """What a verified token says."""
    kind: str
    workspace_id: str
    delivery_id: str
    link_id: int | None = None    # click
    category: str | None = None   # unsubscribe


class Tokens:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def click(self, workspace_id: str, delivery_id: str, link_id: int) -> str:
        if not 0 <= link_id <= MAX_LINK_ID:
            raise ValueError(f"link id {link_id} out of range")
        return self._sign(CLICK, delivery_id, link_id.to_bytes(2, "big"), workspace_id)

    def open(self, workspace_id: str, delivery_id: str) -> str:
        return self._sign(OPEN, delivery_id, b"", workspace_id)

    def unsubscribe(self, workspace_id: str, delivery_id: str, category: str) -> str:
        return self._sign(UNSUBSCRIBE, delivery_id, bytes([CATEGORIES.index(category)]), workspace_id)

    def verify(self, token: str) -> Claim | None:
        """The claim of an intact token made with this secret, else None."""
        if not _TOKEN.fullmatch(token):
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        # Base64 lets the last character's unused bits vary for the same bytes: only the
        # canonical spelling is the token, so no character can change unnoticed.
        if _encode(raw) != token or len(raw) < 2 + 16 + _MAC_BYTES:
            return None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(payload)) or payload[0] != _VERSION:
            return None
        kind = next((k for k, code in _KINDS.items() if code == payload[1]), None)
        delivery_id, rest = str(uuid.UUID(bytes=payload[2:18])), payload[18:]
        link_id = category = None
        if kind == CLICK and len(rest) >= 2:
            link_id, rest = int.from_bytes(rest[:2], "big"), rest[2:]
        elif kind == UNSUBSCRIBE and rest and rest[0] < len(CATEGORIES):
            category, rest = CATEGORIES[rest[0]], rest[1:]
        elif kind != OPEN:
            return None
        try:
            workspace_id = rest.decode()
        except UnicodeDecodeError:
            return None
        return Claim(kind, workspace_id, delivery_id, link_id, category) if workspace_id else None

    def _sign(self, kind: str, delivery_id: str, argument: bytes, workspace_id: str) -> str:
        payload = (bytes([_VERSION, _KINDS[kind]]) + uuid.UUID(delivery_id).bytes + argument
                   + workspace_id.encode())
        return _encode(payload + self._mac(payload))

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
