"""Envelope encryption (kit.crypto): values round-trip, open only for their workspace and
purpose, tampering is caught, and a master key rotation leaves every value readable."""

import base64
import os
import secrets
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings, strategies as st
from sqlalchemy import MetaData, select

from kit import db
from kit.crypto import (Cipher, DecryptionError, Keyring, Vault, blind_index, blind_index_key, data_keys_table,
                        keyring, rotate)
from kit.settings import REPO_ROOT, ServiceSettings


def _master(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


CIPHER = Cipher("ws-a", {"k1": AESGCM(AESGCM.generate_key(bit_length=256))}, "k1")


@settings(max_examples=200)
@given(st.text(), st.sampled_from(["identity.email", "trait.phone", "channel.config"]))
def test_any_text_round_trips_and_never_shows_in_its_token(value, purpose):
    token = CIPHER.seal(purpose, value)
    assert CIPHER.open(purpose, token) == value
    if len(value) >= 4:
        assert value not in token


def test_a_token_opens_only_for_its_workspace_and_purpose():
    token = CIPHER.seal("identity.email", "kim@example.com")
    other_workspace = Cipher("ws-b", CIPHER.keys, "k1")  # even under the same key
    with pytest.raises(DecryptionError):
        other_workspace.open("identity.email", token)
    with pytest.raises(DecryptionError):
        CIPHER.open("identity.phone", token)


@settings(max_examples=100)
@given(st.data())
def test_a_tampered_token_does_not_open(data):
    token = CIPHER.seal("identity.email", "kim@example.com")
    prefix, body = token.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(body))
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    with pytest.raises(DecryptionError):
        CIPHER.open("identity.email", f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).decode()}")


def test_same_value_seals_differently_but_has_one_blind_index():
    assert CIPHER.seal("p", "kim@example.com") != CIPHER.seal("p", "kim@example.com")
    key = secrets.token_bytes(32)
    assert blind_index("email", "kim@example.com", key) == blind_index("email", "kim@example.com", key)
    assert blind_index("email", "kim@example.com", key) != blind_index("phone", "kim@example.com", key)
    assert blind_index("email", "kim@example.com", key) != blind_index("email", "kim@example.com", b"other")


def test_master_keys_setting_is_checked_and_dev_keys_persist(tmp_path):
    with pytest.raises(ValueError, match="NUDGE_MASTER_KEYS"):
        Keyring.parse("k1:c2hvcnQ=")
    assert Keyring.parse(f"{_master('new')},{_master('old')}").current == "new"
    dev = ServiceSettings(data_dir=tmp_path)
    assert keyring(dev) == keyring(dev) and blind_index_key(dev) == blind_index_key(dev)
    assert (tmp_path / "master-keys").stat().st_mode & 0o077 == 0


def test_services_starting_together_share_one_dev_master_key(tmp_path):
    script = ("import sys; from pathlib import Path; from kit.settings import ServiceSettings; "
              "from kit.crypto import keyring; print(keyring(ServiceSettings(data_dir=Path(sys.argv[1]))).keys)")
    processes = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, cwd=REPO_ROOT,
                                  env={**os.environ, "NUDGE_MASTER_KEYS": ""}) for _ in range(6)]
    assert len({p.communicate()[0] for p in processes}) == 1
    assert sorted(f.name for f in tmp_path.iterdir()) == ["master-keys"]


async def _vault(database_url: str, keys: Keyring) -> tuple[Vault, object]:
    engine = db.create_engine(database_url, pool_size=2)
    metadata = MetaData()
    table = data_keys_table(metadata)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return Vault(db.session_factory(engine), table, keys), engine


async def test_rotation_rewraps_data_keys_and_every_value_reads_back(fresh_database):
    url = await fresh_database("crypto_rotation")
    old = _master("m0")
    vault, engine = await _vault(url, Keyring.parse(old))
    try:
        tokens = {ws: (await vault.cipher(ws)).seal("identity.email", f"{ws}@example.com") for ws in ("a", "b")}
        new = Keyring.parse(f"{_master('m1')},{old}")
        assert await rotate([url], new) == {url.rsplit("/", 1)[-1]: 2}
        async with vault.sessions() as session:
            assert set(await session.scalars(select(vault.table.c.master_key_id))) == {"m1"}
        # A fresh process holding only the new master key reads every value.
        reader = Vault(vault.sessions, vault.table, Keyring({"m1": new.keys["m1"]}))
        for ws, token in tokens.items():
            assert await reader.open(ws, "identity.email", token) == f"{ws}@example.com"
        with pytest.raises(DecryptionError, match="m1"):  # the old key alone no longer unwraps
            await Vault(vault.sessions, vault.table, Keyring.parse(_master("m0"))).cipher("a")
    finally:
        await engine.dispose()


async def test_a_workspace_gets_one_data_key_shared_by_replicas(fresh_database):
    url = await fresh_database("crypto_replicas")
    keys = Keyring.parse(_master("m0"))
    first, engine = await _vault(url, keys)
    try:
        second = Vault(first.sessions, first.table, keys)
        token = (await first.cipher("ws")).seal("trait.phone", "+821012345678")
        assert await second.open("ws", "trait.phone", token) == "+821012345678"
        assert (await second.cipher("ws")).current == (await first.cipher("ws")).current
        assert await second.open("ws", "trait.phone", "+8210 plain from before") == "+8210 plain from before"
    finally:
        await engine.dispose()
