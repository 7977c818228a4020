"""Fatigue limits: one atomic decision per send over every rule, rolling and calendar windows
in the profile's zone, transactional exemption, idempotency by send id, release."""

import asyncio
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from kit.errors import InvalidArgument
from services.dispatch import fatigue
from tests.support.fatigue import WORKSPACE, decide, run_job

ROOT = Path(__file__).resolve().parents[2]
KST = ZoneInfo("Asia/Seoul")
UTC = timezone.utc


def policy(*rules, **options) -> fatigue.Policy:
    """policy(("channel", 2, "day"), ...): rules as (kind, limit, window)."""
    return fatigue.parse_policy({"rules": [{"kind": kind, "limit": limit, "window": window}
                                           for kind, limit, window in rules], **options})


def new_profile() -> str:
    return uuid.uuid4().hex


WORKER = """
import asyncio, sys, orjson
from kit.redis import connect
from tests.support.fatigue import run_job

async def main():
    redis = connect(sys.argv[1])
    await redis.ping()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        print(orjson.dumps(await run_job(redis, orjson.loads(line))).decode(), flush=True)
    await redis.aclose()

asyncio.run(main())
"""

CONCURRENT_POLICY = {"rules": [{"kind": "channel", "limit": 2, "window": "day"},
                               {"kind": "template", "limit": 1, "window": "week"},
                               {"kind": "all_channels", "limit": 3, "window": "PT12H"}]}


@pytest.mark.parametrize("channels, distinct_templates, expected", [
    (["sms"], True, 2),                                   # ≤ 2 per channel per day
    (["sms", "push"], False, 1),                          # the same template ≤ 1 per week
    (["sms", "push", "email", "alimtalk"], True, 3),      # ≤ 3 across channels per 12 h (rolling)
])
async def test_limits_hold_under_50_concurrent_decisions_from_two_processes(redis, redis_url, channels,
                                                                            distinct_templates, expected):
    worker = await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, redis_url, cwd=ROOT,
                                                  stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert await worker.stdout.readline() == b"ready\n"
        for _ in range(5):  # several rounds, each for a fresh profile: a race lost once shows
            profile, now = new_profile(), datetime(2024, 3, 4, 12, tzinfo=KST).isoformat()
            sends = [{"id": f"send-{i}", "channel": channels[i % len(channels)],
                      "template": f"t{i}" if distinct_templates else "t"} for i in range(50)]
            jobs = [{"policy": CONCURRENT_POLICY, "profile": profile, "now": now, "sends": sends[half::2]}
                    for half in (0, 1)]
            worker.stdin.write(orjson.dumps(jobs[1]) + b"\n")
            await worker.stdin.drain()
            mine = await run_job(redis, jobs[0])
            theirs = orjson.loads(await worker.stdout.readline())
            assert sum(mine) + sum(theirs) == expected
    finally:
        worker.stdin.close()
        await worker.wait()
    assert worker.returncode == 0


async def test_a_rolling_window_allows_again_exactly_when_the_oldest_send_leaves_it(redis):
    rules, profile = policy(("channel", 2, "PT12H")), new_profile()
    t0 = datetime(2024, 3, 4, 9, tzinfo=UTC)
    assert (await decide(redis, rules, profile, t0)).allowed
    assert (await decide(redis, rules, profile, t0 + timedelta(hours=1))).allowed
    denied = await decide(redis, rules, profile, t0 + timedelta(hours=2))
    assert not denied.allowed and denied.next_allowed_at == t0 + timedelta(hours=12)
    assert denied.rule.index == 0 and "at most 2 per channel per PT12H" in str(denied.rule)
    assert not (await decide(redis, rules, profile, t0 + timedelta(hours=12, milliseconds=-1))).allowed
    assert (await decide(redis, rules, profile, t0 + timedelta(hours=12))).allowed
    again = await decide(redis, rules, profile, t0 + timedelta(hours=12, seconds=1))
    assert not again.allowed and again.next_allowed_at == t0 + timedelta(hours=13)
    # another channel has a counter of its own
    assert (await decide(redis, rules, profile, t0 + timedelta(hours=2), channel="push")).allowed


async def test_a_calendar_day_in_seoul_resets_at_midnight_kst_not_utc(redis):
    rules, profile = policy(("channel", 2, "day")), new_profile()
    late = datetime(2024, 3, 4, 23, 30, tzinfo=KST)           # 14:30 UTC
    assert (await decide(redis, rules, profile, late)).allowed
    assert (await decide(redis, rules, profile, late + timedelta(minutes=10))).allowed
    denied = await decide(redis, rules, profile, late + timedelta(minutes=29, seconds=59))
    midnight = datetime(2024, 3, 5, tzinfo=KST)
    assert not denied.allowed and denied.next_allowed_at == midnight == datetime(2024, 3, 4, 15, tzinfo=UTC)
    # 00:00 KST is still 4 March in UTC, and yet a new day for this person
    assert (await decide(redis, rules, profile, midnight)).allowed
    # the same instants for a person in UTC all fall on one day
    other = new_profile()
    for minutes, allowed in ((0, True), (10, True), (30, False)):
        decision = await decide(redis, rules, other, late + timedelta(minutes=minutes), zone="UTC")
        assert decision.allowed is allowed
    assert decision.next_allowed_at == datetime(2024, 3, 5, tzinfo=UTC)


async def test_a_calendar_week_resets_on_monday_at_midnight_in_the_zone(redis):
    rules, profile = policy(("template", 1, "week")), new_profile()
    assert (await decide(redis, rules, profile, datetime(2024, 3, 4, 9, tzinfo=KST))).allowed      # Monday
    sunday_night = datetime(2024, 3, 10, 23, 59, tzinfo=KST)
    denied = await decide(redis, rules, profile, sunday_night)
    assert not denied.allowed and denied.next_allowed_at == datetime(2024, 3, 11, tzinfo=KST)
    assert "of the same template per calendar week" in denied.rule.description
    assert (await decide(redis, rules, profile, datetime(2024, 3, 11, tzinfo=KST))).allowed
    # another template is counted on its own
    assert (await decide(redis, rules, profile, sunday_night, template="other")).allowed


async def test_transactional_sends_skip_fatigue_when_the_policy_exempts_them(redis):
    profile = new_profile()
    now = datetime(2024, 3, 4, 9, tzinfo=KST)
    exempt = policy(("all_channels", 1, "day"))
    for _ in range(3):
        decision = await decide(redis, exempt, profile, now, transactional=True)
        assert decision.allowed and decision.reservation is None
    assert (await decide(redis, exempt, profile, now)).allowed        # the exempt ones counted nothing
    assert not (await decide(redis, exempt, profile, now)).allowed
    counted = policy(("all_channels", 1, "day"), exempt_transactional=False)
    assert not (await decide(redis, counted, profile, now, transactional=True)).allowed


async def test_deciding_twice_for_one_send_counts_it_once(redis):
    rules, profile = policy(("channel", 2, "day"), ("all_channels", 5, "P1D")), new_profile()
    now = datetime(2024, 3, 4, 9, tzinfo=KST)
    first = await decide(redis, rules, profile, now, send_id="send-a")
    replays = await asyncio.gather(*(decide(redis, rules, profile, now + timedelta(minutes=1), send_id="send-a")
                                     for _ in range(10)))
    assert all(r == first for r in replays) and first.allowed and first.reservation is not None
    assert (await decide(redis, rules, profile, now, send_id="send-b")).allowed
    denied = await decide(redis, rules, profile, now, send_id="send-c")
    assert not denied.allowed
    # a denial counted nothing, so the same send is decided anew (and still denied)
    assert (await decide(redis, rules, profile, now, send_id="send-c")) == denied


async def test_release_frees_the_slot_once(redis):
    rules, profile = policy(("channel", 1, "day"), ("template", 1, "PT1H")), new_profile()
    now = datetime(2024, 3, 4, 9, tzinfo=KST)
    taken = await decide(redis, rules, profile, now, send_id="a")
    assert taken.allowed and not (await decide(redis, rules, profile, now, send_id="b")).allowed
    assert await fatigue.release(redis, taken.reservation)
    assert not await fatigue.release(redis, taken.reservation)      # a second release takes nothing more
    assert not await fatigue.release(redis, None)                   # an exempt send reserved nothing
    assert (await decide(redis, rules, profile, now, send_id="b")).allowed
    assert not (await decide(redis, rules, profile, now, send_id="c")).allowed
    # released, the first send is a new question: now denied like any other
    assert not (await decide(redis, rules, profile, now, send_id="a")).allowed


async def test_the_rule_holding_longest_is_reported_with_its_policy_position(redis):
    rules = policy(("journey", 1, "week"), ("channel", 1, "PT1H"), ("template", 1, "P7D"))
    profile, t0 = new_profile(), datetime(2024, 3, 4, 9, tzinfo=UTC)
    assert (await decide(redis, rules, profile, t0)).allowed         # no journey: rule 0 does not apply
    denied = await decide(redis, rules, profile, t0 + timedelta(minutes=10))
    assert denied.rule.index == 2 and denied.next_allowed_at == t0 + timedelta(days=7)
    denied = await decide(redis, rules, profile, t0 + timedelta(minutes=10), template="other")
    assert denied.rule.index == 1 and denied.next_allowed_at == t0 + timedelta(hours=1)


async def test_every_key_a_decision_writes_expires(redis):
    rules = policy(("channel", 2, "day"), ("all_channels", 3, "PT12H"), ("template", 1, "week"),
                   ("journey", 2, "P30D"))
    profile = new_profile()
    assert (await decide(redis, rules, profile, datetime.now(UTC), journey="j1")).allowed
    keys = [key async for key in redis.scan_iter(match=f"nudge:dispatch:fatigue:{{{WORKSPACE}:{profile}}}:*")]
    # four counters, the send's reservation and the index of counters a merge moves
    assert len(keys) == 6 and all(key.startswith(b"nudge:dispatch:fatigue:{") for key in keys)
    for key in keys:
        assert 0 < await redis.pttl(key) <= (30 * 86_400 + 3600) * 1000


@pytest.mark.parametrize("raw, field", [
    ('{"rules": [{"kind": "channel", "limit": 2, "window": "day"}, '
     '{"kind": "channel", "limit": 2, "window": "P1M"}]}', "policy.rules[1].window"),
    ('{"rules": [{"kind": "channel", "limit": "two", "window": "day"}]}', "policy.rules[0].limit"),
    ('{"rules": [{"kind": "channel", "limit": true, "window": "day"}]}', "policy.rules[0].limit"),
    ('{"rules": [{"kind": "channel", "limit": 0, "window": "day"}]}', "policy.rules[0].limit"),
    ('{"rules": [{"kind": "sms", "limit": 1, "window": "day"}]}', "policy.rules[0].kind"),
    ('{"rules": [{"kind": "channel", "limit": 1, "window": "PT0S"}]}', "policy.rules[0].window"),
    ('{"rules": [{"kind": "channel", "limit": 1}]}', "policy.rules[0].window"),
    ('{"rules": [{"kind": "channel", "limit": 1, "window": "day", "channels": ["sms", "fax"]}]}',
     "policy.rules[0].channels[1]"),
    ('{"rules": [{"kind": "template", "limit": 1, "window": "day", "channels": ["sms"]}]}',
     "policy.rules[0].channels"),
    ('{"rules": [{"kind": "channel", "max": 1, "window": "day"}]}', "policy.rules[0].max"),
    ('{"rules": ["channel"]}', "policy.rules[0]"),
    ('{"rules": {}}', "policy.rules"),
    ('{"exempt_transactional": "yes"}', "policy.exempt_transactional"),
    ('{"rules": [', "policy"),
    ("[]", "policy"),
])
def test_a_malformed_policy_names_the_field(raw, field):
    with pytest.raises(InvalidArgument) as caught:
        fatigue.parse_policy(raw)
    assert caught.value.field == field and caught.value.message.startswith(field + ":")


def test_a_policy_reads_rolling_and_calendar_windows():
    parsed = fatigue.parse_policy(b'{"rules": [{"kind": "channel", "limit": 2, "window": "day", "channels": ["sms"]},'
                                  b'{"kind": "template", "limit": 1, "window": "P1W"},'
                                  b'{"kind": "journey", "limit": 3, "window": "P1DT12H30M"}]}', path="policy.fatigue")
    assert [r.window.rolling for r in parsed.rules] == [None, timedelta(days=7), timedelta(hours=36, minutes=30)]
    assert parsed.exempt_transactional and parsed.rules[0].channels == ("sms",)
    assert parsed.rules[0].describe() == "at most 2 per channel (sms) per calendar day"
    assert fatigue.parse_policy({}) == fatigue.parse_policy(None) == fatigue.Policy()
    with pytest.raises(InvalidArgument) as caught:
        fatigue.parse_policy({"rules": [{"kind": "x"}]}, path="policy.fatigue")
    assert caught.value.field == "policy.fatigue.rules[0].kind"


async def test_a_merge_moves_the_counters_to_the_survivor_once(redis):
    rules = policy(("channel", 3, "day"), ("template", 1, "P7D"))
    merged, survivor, t0 = new_profile(), new_profile(), datetime(2024, 3, 4, 9, tzinfo=UTC)
    assert (await decide(redis, rules, merged, t0)).allowed                         # sms, template t
    assert (await decide(redis, rules, survivor, t0, template="u")).allowed         # sms, template u
    for _ in range(2):  # a redelivered merge event moves nothing twice
        await fatigue.move(redis, workspace_id=WORKSPACE, merged_id=merged, survivor_id=survivor)
    later = t0 + timedelta(minutes=1)
    assert (await decide(redis, rules, survivor, later, template="v")).allowed     # the third sms today
    denied = await decide(redis, rules, survivor, later, template="w")
    assert not denied.allowed and denied.rule.index == 0   # a fourth: the merged person's sms counted
    denied = await decide(redis, rules, survivor, later, template="t", channel="email")
    assert not denied.allowed and denied.rule.index == 1   # template t went to the merged person
    left = [k async for k in redis.scan_iter(match=f"nudge:dispatch:fatigue:{{{WORKSPACE}:{merged}}}:*")]
    assert [k for k in left if b":sent:" not in k] == []  # only the send's own reservation stays behind
    keys = [k async for k in redis.scan_iter(match=f"nudge:dispatch:fatigue:{{{WORKSPACE}:{survivor}}}:*")]
    assert [k for k in keys if await redis.pttl(k) <= 0] == []
