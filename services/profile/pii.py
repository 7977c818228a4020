"""What the profile service keeps sealed at rest (kit.crypto), and how: the values of email,
phone and device-token identities (stored as their blind index, which lookups and the
identity graph use, with the value sealed beside it), the contact traits, and the same
fields of each stored call. userId and anonymousId are the customer's own ids and stay
in the clear."""

import copy

import orjson
from sqlalchemy.ext.asyncio import async_sessionmaker

from kit.crypto import Cipher, Vault, blind_index, blind_index_key, is_sealed, keyring
from kit.settings import ServiceSettings
from services.profile.identity import DEVICE_TOKEN, EMAIL, PHONE
from services.profile.models import data_keys

SEALED_TYPES = (EMAIL, PHONE, DEVICE_TOKEN)
CONTACT_TRAITS = ("email", "phone")


class Pii:
    """The service's vault and blind index key."""

    def __init__(self, vault: Vault, index_key: bytes) -> None:
        self.vault, self.index_key = vault, index_key

    @classmethod
    def of(cls, sessions: async_sessionmaker, settings: ServiceSettings) -> "Pii":
        return cls(Vault(sessions, data_keys, keyring(settings)), blind_index_key(settings))

    def stored(self, identifier_type: str, value: str) -> str:
        """How an identifier is stored and looked up: its blind index when its value is sealed."""
        return blind_index(identifier_type, value, self.index_key) if identifier_type in SEALED_TYPES else value

    async def sealing(self, workspace_id: str) -> "Sealing":
        return Sealing(self, await self.vault.cipher(workspace_id))


class Sealing:
    """One workspace's seal and open of the profile service's PII; never changes its input."""

    def __init__(self, pii: Pii, cipher: Cipher) -> None:
        self.pii, self.cipher = pii, cipher

    def identity(self, row: dict) -> dict:
        """An identities row as stored: the value's blind index, the value sealed."""
        if row["type"] not in SEALED_TYPES:
            return row
        return {**row, "value": self.pii.stored(row["type"], row["value"]),
                "sealed": self.cipher.seal(f"identity.{row['type']}", row["value"])}

    def open_identity(self, identifier_type: str, value: str, sealed: str | None) -> str:
        return self.cipher.open(f"identity.{identifier_type}", sealed) if sealed else value

    def traits(self, traits: dict) -> dict:
        return {k: (self.cipher.seal(f"trait.{k}", orjson.dumps(v).decode())
                    if k in CONTACT_TRAITS and v is not None and not _sealed(v) else v) for k, v in traits.items()}

    def open_traits(self, traits: dict) -> dict:
        return {k: (orjson.loads(self.cipher.open(f"trait.{k}", v))
                    if k in CONTACT_TRAITS and _sealed(v) else v) for k, v in traits.items()}

    def call(self, call: dict) -> dict:
        """A stored tracking call with its contact traits and device token sealed."""
        return self._each_field(call, self.traits, lambda token: token if _sealed(token) else
                                self.cipher.seal("call.device_token", token))

    def open_call(self, call: dict) -> dict:
        return self._each_field(call, self.open_traits,
                                lambda token: self.cipher.open_or_plain("call.device_token", token))

    @staticmethod
    def _each_field(call: dict, traits, token) -> dict:
        call = copy.copy(call)
        if isinstance(call.get("traits"), dict):
            call["traits"] = traits(call["traits"])
        context = call.get("context")
        if isinstance(context, dict):
            call["context"] = context = dict(context)
            if isinstance(context.get("traits"), dict):
                context["traits"] = traits(context["traits"])
            device = context.get("device")
            if isinstance(device, dict) and isinstance(device.get("token"), str):
                context["device"] = {**device, "token": token(device["token"])}
        return call


def _sealed(value) -> bool:
    return isinstance(value, str) and is_sealed(value)
