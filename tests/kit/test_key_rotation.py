"""The key-rotation command: with a new master key put first (the old one kept to unwrap),
`python -m kit.crypto rotate <service>` re-wraps every data key, and a process holding only
the new key reads every sealed value back: identifiers, contact traits, stored calls and
channel credentials."""

import asyncio
import base64
import os
import sys
from datetime import datetime, timezone

from pydantic import SecretStr

from kit import db, migrations
from kit.clock import SystemClock
from kit.outbox import Outbox
from kit.settings import REPO_ROOT
from services.dispatch.__main__ import MIGRATIONS as DISPATCH_MIGRATIONS
from services.dispatch.models import data_keys as dispatch_data_keys
from services.dispatch.repository import DispatchRepository
from services.profile.__main__ import MIGRATIONS as PROFILE_MIGRATIONS
from services.profile.models import outbox as profile_outbox
from services.profile.pii import Pii
from services.profile.service import ProfileService
from services.profile.settings import ProfileSettings
from tests.support.calls import call
from kit.crypto import Vault, keyring


def _master(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


async def _rotate(service: str, database_url: str, master_keys: str) -> str:
    env = {**os.environ, "NUDGE_DATABASE_URL": database_url, "NUDGE_MASTER_KEYS": master_keys}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "kit.crypto", "rotate", service, env=env,
                                                   cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    assert process.returncode == 0
    return out.decode()


async def test_rotating_the_master_key_rewraps_data_keys_and_everything_reads_back(fresh_database, tmp_path):
    old, new = _master("2026a"), _master("2026b")
    profile_url, dispatch_url = await fresh_database("rotation_profile"), await fresh_database("rotation_dispatch")
    await migrations.upgrade(profile_url, PROFILE_MIGRATIONS)
    await migrations.upgrade(dispatch_url, DISPATCH_MIGRATIONS)
    engines = [db.create_engine(profile_url, pool_size=2), db.create_engine(dispatch_url, pool_size=2)]
    profile_sessions, dispatch_sessions = (db.session_factory(e) for e in engines)

    def settings(master_keys: str) -> ProfileSettings:
        return ProfileSettings(master_keys=SecretStr(master_keys), data_dir=tmp_path)

    def profiles(master_keys: str) -> ProfileService:
        return ProfileService(profile_sessions, Outbox(profile_outbox), SystemClock(),
                              Pii.of(profile_sessions, settings(master_keys)),
                              blind_key=settings(master_keys).blind_key())
    try:
        await profiles(old).ingest("ws-r", [call("identify", user_id="u1", traits={"email": "kim@example.com",
                                                                                  "phone": "010-1234-5678"},
                                                context={"device": {"token": "tok-1"}})])
        async with dispatch_sessions() as session, session.begin():
            await DispatchRepository(session).put_channel_config(
                "ws-r", "sms", "sms_http", {"api_key": "sk-live-1"}, datetime.now(timezone.utc),
                Vault(dispatch_sessions, dispatch_data_keys, keyring(settings(old))))

        assert "1 data keys re-wrapped under master key '2026b'" in await _rotate("profile", profile_url,
                                                                                  f"{new},{old}")
        assert "1 data keys" in await _rotate("dispatch", dispatch_url, f"{new},{old}")
        assert "0 data keys" in await _rotate("dispatch", dispatch_url, f"{new},{old}")  # nothing left to do

        reader = profiles(new)  # the old key is gone from this process
        [view] = await reader.lookup("ws-r", "test", "email", "KIM@example.com")
        assert view.row["traits"] == {"email": "kim@example.com", "phone": "010-1234-5678"}
        assert {(t, v) for t, v, _ in view.identities} == {
            ("user_id", "u1"), ("email", "kim@example.com"), ("phone", "+821012345678"), ("device_token", "tok-1")}
        [event], _ = await reader.list_events("ws-r", "test", str(view.row["id"]), 10, "")
        assert event.call["traits"]["phone"] == "010-1234-5678"
        assert event.call["context"]["device"]["token"] == "tok-1"
        async with dispatch_sessions() as session:
            configs = await DispatchRepository(session).channel_configs(
                "ws-r", Vault(dispatch_sessions, dispatch_data_keys, keyring(settings(new))))
        assert configs["sms"].config == {"api_key": "sk-live-1"}
    finally:
        for engine in engines:
            await engine.dispose()
