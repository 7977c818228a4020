"""Envelope encryption of PII and credentials at rest, and blind indexes to look them up.

Each workspace has a random 256-bit data key per service, stored in that service's
`data_keys` table wrapped (AES-GCM) by a master key from the environment
(`NUDGE_MASTER_KEYS="id1:<base64 32 bytes>,id0:<…>"`, the first one current). A value is
sealed with AES-256-GCM under its workspace's data key into a self-describing token
`nv1:<data key id>:<base64url(nonce + ciphertext)>`, the workspace and the value's purpose
bound as associated data, so a token copied to another workspace or field does not open.
Rotating a master key re-wraps the data keys (`rewrap`, `python -m kit.crypto rotate`);
values stay as they are. A blind index (HMAC-SHA256 of the normalized value under
`NUDGE_BLIND_INDEX_KEY`, a key of its own) finds a sealed value without decrypting.
In the embedded mode, keys not configured are generated once and kept in the data dir,
like the other dev secrets.
"""

import asyncio
import base64
import binascii
import os
import secrets
import sys
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Column, DateTime, LargeBinary, MetaData, Table, Text, func, insert, select, text, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from kit import blind
from kit.settings import ServiceSettings, generated_secret, secret_or_generated

VERSION = "nv1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A token that does not open: another workspace's or purpose's, tampered, or its key is gone."""


def data_keys_table(metadata: MetaData) -> Table:
    """Each service declares its data keys in its own metadata, so its migrations create it."""
    return Table(
        "data_keys", metadata,
        Column("workspace_id", Text, primary_key=True),
        Column("id", Text, primary_key=True),
        Column("wrapped", LargeBinary, nullable=False),  # nonce + AES-GCM of the data key
        Column("master_key_id", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


@dataclass(frozen=True)
class Keyring:
    """Master keys by id, the first one current; older ones only unwrap."""
    keys: dict[str, bytes]

    @property
    def current(self) -> str:
        return next(iter(self.keys))

    @classmethod
    def parse(cls, value: str) -> "Keyring":
        keys = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            key_id, sep, encoded = item.partition(":")
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                key = b""
            if not sep or not key_id or len(key) != 32 or key_id in keys:
                raise ValueError(f"NUDGE_MASTER_KEYS: expected 'id:<base64 of 32 bytes>' items separated by commas, "
                                 f"each id once; item {len(keys) + 1} is not")
            keys[key_id] = key
        if not keys:
            raise ValueError("NUDGE_MASTER_KEYS: expected at least one 'id:<base64 of 32 bytes>'")
        return cls(keys)

    def wrap(self, workspace_id: str, key_id: str, data_key: bytes) -> tuple[bytes, str]:
        nonce = os.urandom(NONCE_BYTES)
        aad = _aad("data-key", workspace_id, key_id)
        return nonce + AESGCM(self.keys[self.current]).encrypt(nonce, data_key, aad), self.current

    def unwrap(self, workspace_id: str, key_id: str, wrapped: bytes, master_key_id: str) -> bytes:
        if master_key_id not in self.keys:
            raise DecryptionError(f"data key {key_id} is wrapped by master key {master_key_id!r}, "
                                  "which NUDGE_MASTER_KEYS no longer holds")
        try:
            return AESGCM(self.keys[master_key_id]).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:],
                                                            _aad("data-key", workspace_id, key_id))
        except InvalidTag:
            raise DecryptionError(f"data key {key_id} of {workspace_id} does not unwrap") from None


def _aad(*parts: str) -> bytes:
    return "\x1f".join(parts).encode()


def keyring(settings: ServiceSettings) -> Keyring:
    """The configured master keys, or (embedded mode) one generated once and kept in data_dir."""
    if settings.master_keys:
        return Keyring.parse(settings.master_keys.get_secret_value())
    return Keyring.parse(generated_secret(settings.data_dir, "master-keys",
                                          lambda: "dev:" + base64.b64encode(os.urandom(32)).decode()))


def blind_index_key(settings: ServiceSettings) -> bytes:
    """The configured blind index key, or (embedded mode) one generated once and kept in data_dir."""
    return secret_or_generated(settings.blind_index_key, settings.data_dir, "blind-index-key")


def blind_index(kind: str, normalized_value: str, key: bytes) -> str:
    """The lookup key of a sealed value: equal values of one kind give equal indexes (hex of
    kit.blind's digest, so an erasure tombstone and an identity row index alike)."""
    return blind.blind_index(key, kind, normalized_value).hex()


def is_sealed(value: str) -> bool:
    return value.startswith(VERSION + ":")


class Cipher:
    """One workspace's data keys, unwrapped: seals under the newest, opens with any."""

    def __init__(self, workspace_id: str, keys: dict[str, AESGCM], current: str) -> None:
        self.workspace_id, self.keys, self.current = workspace_id, keys, current

    def seal(self, purpose: str, plaintext: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.keys[self.current].encrypt(nonce, plaintext.encode(),
                                                 _aad(self.workspace_id, purpose, self.current))
        return f"{VERSION}:{self.current}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, purpose: str, token: str) -> str:
        version, _, rest = token.partition(":")
        key_id, _, body = rest.partition(":")
        if version != VERSION or key_id not in self.keys:
            raise DecryptionError(f"not a token of a data key of {self.workspace_id}")
        try:
            raw = base64.urlsafe_b64decode(body)
            return self.keys[key_id].decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                             _aad(self.workspace_id, purpose, key_id)).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise DecryptionError(f"token does not open for {self.workspace_id} ({purpose})") from None

    def open_or_plain(self, purpose: str, value: str) -> str:
        """A value stored before encryption (no token) reads as it is."""
        return self.open(purpose, value) if is_sealed(value) else value


class Vault:
    """Ciphers of a service's workspaces, their data keys created on first use (in a
    transaction of their own, so a key is never lost with a caller's rollback) and kept
    unwrapped in memory."""

    def __init__(self, sessions: async_sessionmaker, table: Table, keys: Keyring) -> None:
        self.sessions, self.table, self.keys = sessions, table, keys
        self._ciphers: dict[str, Cipher] = {}

    async def cipher(self, workspace_id: str, reload: bool = False) -> Cipher:
        if reload or workspace_id not in self._ciphers:
            self._ciphers[workspace_id] = await self._load(workspace_id)
        return self._ciphers[workspace_id]

    async def open(self, workspace_id: str, purpose: str, token: str) -> str:
        """Opens a token, reloading the workspace's keys once if it names one not yet seen."""
        cipher = await self.cipher(workspace_id)
        if is_sealed(token) and token.split(":", 2)[1] not in cipher.keys:
            cipher = await self.cipher(workspace_id, reload=True)
        return cipher.open_or_plain(purpose, token)

    async def _load(self, workspace_id: str) -> Cipher:
        async with self.sessions() as session, session.begin():
            # Replicas creating a workspace's first key at once: one creates it, the other reads it.
            await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                                  {"key": f"data-key:{workspace_id}"})
            rows = list(await session.execute(select(self.table).where(self.table.c.workspace_id == workspace_id)
                                              .order_by(self.table.c.created_at, self.table.c.id)))
            if not rows:
                key_id, data_key = secrets.token_hex(4), AESGCM.generate_key(bit_length=256)
                wrapped, master = self.keys.wrap(workspace_id, key_id, data_key)
                await session.execute(insert(self.table).values(workspace_id=workspace_id, id=key_id,
                                                                wrapped=wrapped, master_key_id=master))
                return Cipher(workspace_id, {key_id: AESGCM(data_key)}, key_id)
        keys = {r.id: AESGCM(self.keys.unwrap(workspace_id, r.id, r.wrapped, r.master_key_id)) for r in rows}
        return Cipher(workspace_id, keys, rows[-1].id)

    async def rewrap(self, batch: int = 500) -> int:
        """Re-wraps every data key not under the current master key; how many were."""
        done = 0
        while True:
            async with self.sessions() as session, session.begin():
                rows = list(await session.execute(
                    select(self.table).where(self.table.c.master_key_id != self.keys.current)
                    .limit(batch).with_for_update(skip_locked=True)))
                for r in rows:
                    data_key = self.keys.unwrap(r.workspace_id, r.id, r.wrapped, r.master_key_id)
                    wrapped, master = self.keys.wrap(r.workspace_id, r.id, data_key)
                    await session.execute(update(self.table).where(
                        self.table.c.workspace_id == r.workspace_id, self.table.c.id == r.id)
                        .values(wrapped=wrapped, master_key_id=master))
            done += len(rows)
            if len(rows) < batch:
                return done


async def rotate(database_urls: list[str], keys: Keyring) -> dict[str, int]:
    """Re-wraps the data keys of each database under the current master key."""
    from kit import db

    counts = {}
    for url in database_urls:
        engine = db.create_engine(url, pool_size=1)
        try:
            counts[url.rsplit("/", 1)[-1]] = await Vault(db.session_factory(engine),
                                                         data_keys_table(MetaData()), keys).rewrap()
        finally:
            await engine.dispose()
    return counts


async def _rotate_services(services: list[str]) -> None:
    from kit import db

    settings = ServiceSettings()
    if settings.database_url and len(services) > 1:
        sys.exit("NUDGE_DATABASE_URL names one database: rotate one service at a time")
    urls = [await db.resolve_database_url(settings, name) for name in services]
    for name, count in (await rotate(urls, keyring(settings))).items():
        print(f"{name}: {count} data keys re-wrapped under master key {keyring(settings).current!r}")


USAGE = """usage: python -m kit.crypto rotate <service> [<service> …]
Re-wraps each service's data keys under the current (first) master key of NUDGE_MASTER_KEYS.
Put the new key first and keep the old ones listed until every service has been rotated.
NUDGE_DATABASE_URL names the database when one service is given."""

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "rotate":
        sys.exit(USAGE)
    asyncio.run(_rotate_services(sys.argv[2:]))
