"""The fatigue decision as the fatigue tests make it, in the test process and in the helper
processes that race it (tests/dispatch/test_fatigue.py starts them: they import this module)."""

import asyncio
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from services.dispatch import fatigue

KST = ZoneInfo("Asia/Seoul")
WORKSPACE = "test-fatigue"


async def decide(redis, rules: fatigue.Policy, profile: str, now: datetime, *, channel="sms", template="t",
                 journey=None, transactional=False, send_id=None, zone=KST) -> fatigue.Decision:
    return await fatigue.decide(redis, rules, workspace_id=WORKSPACE, profile_id=profile, channel=channel,
                                template_id=template, journey_id=journey, transactional=transactional, now=now,
                                zone=zone, send_id=send_id or uuid.uuid4().hex)


async def run_job(redis, job: dict) -> list[bool]:
    """Decides all of a job's sends at once; used by this process and by the helper process."""
    rules, now = fatigue.parse_policy(job["policy"]), datetime.fromisoformat(job["now"])
    decisions = await asyncio.gather(*(
        decide(redis, rules, job["profile"], now, channel=send["channel"], template=send["template"],
               send_id=send["id"]) for send in job["sends"]))
    return [d.allowed for d in decisions]
