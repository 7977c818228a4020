"""The operator command: create a workspace, rotate and revoke keys; the audit log tells
which key read what, and when keys changed."""

import asyncio
import os
import re
import subprocess
import sys

import httpx

from kit.settings import REPO_ROOT
from tests.conftest import TEST_PEPPER


async def operator(database_url: str, *args: str) -> str:
    """The command, run beside the event loop: the session's gateway serves in this loop."""
    env = {**os.environ, "NUDGE_DATABASE_URL": database_url, "NUDGE_API_KEY_PEPPER": TEST_PEPPER,
           "NUDGE_MIGRATE_ON_START": "false"}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "gateway.workspaces", *args], env=env,
                                   cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def key_of(output: str, kind: str) -> tuple[str, str]:
    match = re.search(rf"{kind}\s+key (nk_\S+)\s+\(id (\w+)\)", output)
    assert match, output
    return match.group(1), match.group(2)


async def test_rotated_key_works_beside_the_old_one_until_revoked(gateway_database_url, gateway_url):
    created = await operator(gateway_database_url, "create", "Acme Shop")
    workspace_id = re.search(r"workspace\s+(\S+)", created).group(1)
    write_key, _ = key_of(created, "write")
    old_admin, old_id = key_of(created, "admin")
    assert workspace_id.startswith("acme-shop-")

    async with httpx.AsyncClient(base_url=gateway_url, auth=(write_key, "")) as tracking:
        assert (await tracking.post("/v1/identify", json={"userId": "vip", "traits": {"tier": 1}})).status_code == 200

    new_admin, new_id = key_of(await operator(gateway_database_url, "rotate", workspace_id, "admin"), "admin")
    listing = await operator(gateway_database_url, "list")
    assert workspace_id in listing and old_id in listing and new_id in listing

    def admin(key):
        return httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {key}"})

    async with admin(old_admin) as old, admin(new_admin) as new:
        profile_id = (await old.get("/v1/profiles", params={"userId": "vip"})).json()["profiles"][0]["id"]
        assert (await old.get(f"/v1/profiles/{profile_id}")).status_code == 200
        assert (await new.get(f"/v1/profiles/{profile_id}")).status_code == 200

        await operator(gateway_database_url, "revoke", old_id)
        assert (await old.get(f"/v1/profiles/{profile_id}")).status_code == 401
        assert (await new.get(f"/v1/profiles/{profile_id}")).status_code == 200

        entries = (await new.get("/v1/audit", params={"profileId": profile_id})).json()["entries"]
        changes = (await new.get("/v1/audit", params={"keyId": "operator"})).json()["entries"]
    reads = [(e["keyId"], e["action"]) for e in reversed(entries)]
    assert reads == [(old_id, "profile.lookup"), (old_id, "profile.read"),
                     (new_id, "profile.read"), (new_id, "profile.read")]
    assert "revoked" in await operator(gateway_database_url, "list")
    # each change the command made is a row of its workspace's log
    assert [(e["action"], e["target"]) for e in reversed(changes)] == [
        ("workspace.create", workspace_id), ("key.rotate", new_id), ("key.revoke", old_id)]


def test_revoking_an_unknown_key_is_a_clear_error(gateway_database_url):
    env = {**os.environ, "NUDGE_DATABASE_URL": gateway_database_url, "NUDGE_API_KEY_PEPPER": TEST_PEPPER}
    done = subprocess.run([sys.executable, "-m", "gateway.workspaces", "revoke", "nope"], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no active key nope" in done.stdout
