"""Identifiers and contact traits are sealed at rest: the profile database, read row by row
with SQL, holds no email, phone or device token in the clear, while lookups, identity
resolution and merges work on their blind indexes."""

import secrets
import uuid

import asyncpg
import orjson

from kit import db
from tests.support.api import person, profile_of
from tests.support.waiting import eventually


async def raw_rows(database_url: str) -> str:
    """Every row of every table, as text, as PostgreSQL holds it."""
    conn = await asyncpg.connect(db.asyncpg_dsn(database_url))
    try:
        tables = await conn.fetch("SELECT table_name FROM information_schema.tables "
                                  "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
        return "\n".join([row[0] for t in tables for row in await conn.fetch(f'SELECT t::text FROM "{t[0]}" AS t')])
    finally:
        await conn.close()


async def _outbox_holds(database_url: str, workspace_id: str) -> bool:
    conn = await asyncpg.connect(db.asyncpg_dsn(database_url))
    try:
        return await conn.fetchval("SELECT count(*) FROM outbox WHERE entries::text LIKE '%' || $1 || '%'",
                                   workspace_id) > 0
    finally:
        await conn.close()


async def test_no_email_phone_or_device_token_in_the_clear_and_lookups_and_merges_still_work(
        workspace, profile_database_url):
    tag, digits = secrets.token_hex(4), str(1000 + secrets.randbelow(9000))
    email, phone, token = f"Kim.{tag}@Example.com", f"010-{digits}-5678", f"fcm-token-{tag}"
    e164 = f"+8210{digits}5678"
    response = await workspace.admin.put("/v1/identity-policy", json={"uniqueIdentifiers": ["email"]})
    assert response.status_code == 200, response.text
    known = await person(workspace, f"user-{tag}", email=email, phone=phone, context={"device": {"token": token}})
    # A visitor giving the same email on another device is the same person: merged by the email's index.
    response = await workspace.tracking.post("/v1/identify", json={
        "anonymousId": f"anon-{tag}", "traits": {"email": email.upper(), "plan": "pro"}})
    assert response.status_code == 200, response.text

    async def merged():
        found = (await workspace.admin.get("/v1/profiles", params={"anonymousId": f"anon-{tag}"})).json()
        return found.get("profiles") and found["profiles"][0]["id"] == known
    await eventually(merged)
    for name, value in (("email", email.lower()), ("phone", e164), ("deviceToken", token)):
        found = (await workspace.admin.get("/v1/profiles", params={name: value})).json()["profiles"]
        assert [p["id"] for p in found] == [known], name
    profile = (await workspace.admin.get(f"/v1/profiles/{known}")).json()
    assert profile["traits"]["email"] in (email, email.upper()) and profile["traits"]["phone"] == phone
    assert profile["traits"]["plan"] == "pro"
    assert {(i["type"], i["value"]) for i in profile["identities"]} >= {
        ("email", email.lower()), ("phone", e164), ("device_token", token)}
    events = (await workspace.admin.get(f"/v1/profiles/{known}/events")).json()["events"]
    assert email in str(events) and token in str(events)  # the stored calls read back whole
    assert await profile_of(workspace, f"user-{tag}") == known

    async def relayed():
        return not await _outbox_holds(profile_database_url, workspace.id)
    await eventually(relayed)  # what the outbox relays is the stream's, not the database's
    stored = (await raw_rows(profile_database_url)).lower()
    # The rows are there (the customer's own ids stay in the clear), the contact details are not.
    assert f"user-{tag}" in stored and f"anon-{tag}" in stored
    for secret in (email.lower(), email.lower().split("@")[0], e164, phone, phone.replace("-", ""), token):
        assert secret.lower() not in stored, secret


async def test_pii_stored_before_sealing_is_sealed_at_start_and_found_again(profile_service, profile_database_url):
    ws, tag = "ws-" + secrets.token_hex(4), secrets.token_hex(4)
    email, profile_id = f"old-{tag}@example.com", uuid.uuid4()
    call = {"type": "identify", "messageId": tag, "userId": f"old-{tag}", "traits": {"email": email},
            "context": {"device": {"token": f"tok-{tag}"}}}
    conn = await asyncpg.connect(db.asyncpg_dsn(profile_database_url))
    try:  # rows as they were written before migration 0004
        await conn.execute("INSERT INTO profiles (id, workspace_id, traits, created_at) VALUES ($1, $2, $3, now())",
                           profile_id, ws, orjson.dumps({"email": email, "plan": "pro"}).decode())
        await conn.executemany("INSERT INTO identities (workspace_id, type, value, profile_id, first_seen) "
                               "VALUES ($1, $2, $3, $4, now())", [(ws, "user_id", f"old-{tag}", profile_id),
                                                                 (ws, "email", email, profile_id),
                                                                 (ws, "device_token", f"tok-{tag}", profile_id)])
        await conn.execute("INSERT INTO events (id, workspace_id, profile_id, message_id, type, name, timestamp, "
                           "received_at, call) VALUES ($1, $2, $3, $4, 'identify', 'identify', now(), now(), $5)",
                           uuid.uuid4(), ws, profile_id, tag, orjson.dumps(call).decode())
    finally:
        await conn.close()

    assert await profile_service.seal_stored() >= 3
    stored = await raw_rows(profile_database_url)
    assert f"old-{tag}" in stored and email not in stored and f"tok-{tag}" not in stored
    [view] = await profile_service.lookup(ws, "test", "email", email)
    assert view.row["id"] == profile_id and view.row["traits"] == {"email": email, "plan": "pro"}
    assert ("device_token", f"tok-{tag}") in {(t, v) for t, v, _ in view.identities}
    [event], _ = await profile_service.list_events(ws, "test", str(profile_id), 10, "")
    assert event.call == call
    assert await profile_service.seal_stored() == 0  # nothing left in the clear
