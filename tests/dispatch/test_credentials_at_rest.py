"""Channel credentials are sealed at rest: the database holds no credential in the clear,
answers show them masked, and sends still sign with the real one."""

import hashlib
import hmac
import secrets

import asyncpg
import orjson

from kit import db
from services.dispatch.repository import DispatchRepository
from tests.support.api import person, send, setup


async def _raw_configs(platform, workspace_id: str) -> str:
    """Every column of the workspace's channel config rows, as PostgreSQL holds them."""
    conn = await asyncpg.connect(db.asyncpg_dsn(platform.settings.database_url))
    try:
        rows = await conn.fetch("SELECT c::text FROM channel_configs AS c WHERE workspace_id = $1", workspace_id)
    finally:
        await conn.close()
    return "\n".join(r[0] for r in rows)


def _signed_with(request: dict, secret: str) -> bool:
    timestamp = request["headers"]["x-nudge-timestamp"]
    body = orjson.dumps(request["body"])
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return request["headers"]["x-nudge-signature"] == f"sha256={expected}"


async def test_credentials_are_sealed_in_the_database_masked_in_answers_and_used_in_full_to_send(
        workspace, receiver, dispatch_platform):
    secret = "whsec-" + secrets.token_hex(8)
    profile = await person(workspace, "sealed")
    await setup(workspace, {"webhook": {"body": {"text": "hi"}}}, {"webhook": ("webhook", {
        "url": receiver.url, "secret": secret, "allowed_hosts": ["127.0.0.1"]})})

    raw = await _raw_configs(dispatch_platform, workspace.id)
    assert receiver.url in raw and secret not in raw and "nv1:" in raw
    listed = (await workspace.admin.get("/v1/channels")).json()["channels"]
    assert listed[0]["config"]["secret"] == "••••" and secret not in str(listed)

    assert (await send(workspace, profile, ["webhook"]))["status"] == "sent"
    assert _signed_with(receiver.requests[-1], secret)


async def test_a_config_stored_in_the_clear_before_sealing_still_sends_and_is_sealed_at_its_next_save(
        workspace, receiver, dispatch_platform):
    secret = "whsec-" + secrets.token_hex(8)
    config = {"url": receiver.url, "secret": secret, "allowed_hosts": ["127.0.0.1"]}
    profile = await person(workspace, "from-before")
    await setup(workspace, {"webhook": {"body": {"text": "hi"}}}, {"webhook": ("webhook", config)})
    async with dispatch_platform.service.sessions() as session:  # in full, as the send reads it
        stored = (await DispatchRepository(session).channel_configs(workspace.id, dispatch_platform.service.vault))
    conn = await asyncpg.connect(db.asyncpg_dsn(dispatch_platform.settings.database_url))
    try:  # as a row written before migration 0008 looks
        await conn.execute("UPDATE channel_configs SET config = $2::jsonb, sealed = NULL WHERE workspace_id = $1",
                           workspace.id, orjson.dumps(stored["webhook"].config).decode())
    finally:
        await conn.close()
    assert (await send(workspace, profile, ["webhook"]))["status"] == "sent"
    assert _signed_with(receiver.requests[-1], secret)
    assert (await workspace.admin.get("/v1/channels")).json()["channels"][0]["config"]["secret"] == "••••"

    await setup(workspace, {"webhook": {"body": {"text": "hi"}}}, {"webhook": ("webhook", config)})
    assert secret not in await _raw_configs(dispatch_platform, workspace.id)
