"""Schemathesis over every operation of the gateway's OpenAPI document, once with the write key
and once with the admin key, against the gateway and the services running for real: no
server error, only documented statuses, and every body as its declared schema says. Any
finding fails the test, with schemathesis' report (and a curl line to reproduce it)."""

import asyncio
import re
import sys

import httpx
import pytest

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
# Enough to reach every rule of the edge (NUL, lone surrogates, huge numbers, deep nesting) on
# every operation; a fixed seed and deterministic generation make a finding reproducible.
MAX_EXAMPLES = 15
SEED = 18


def _auth(workspace, key: str) -> list[str]:
    if key == "write":
        return ["--auth", f"{workspace.write_key}:"]
    return ["--header", f"Authorization: Bearer {workspace.admin_key}"]


@pytest.mark.parametrize("key", ["write", "admin"])
async def test_every_operation_answers_as_documented(workspace, gateway_url, key, tmp_path):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        document = (await client.get("/openapi.json")).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
        "run", f"{gateway_url}/openapi.json", *_auth(workspace, key), "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--generation-deterministic", "--workers", "1", "--no-color",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)  # its cache stays out of the tree
    output = (await process.communicate())[0].decode(errors="replace")
    assert process.returncode == 0, output
    tested = re.search(r"Tested:\s+(\d+)", output)
    assert tested and int(tested.group(1)) == operations, output
