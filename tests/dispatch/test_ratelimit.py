"""Provider rate limits: a token bucket in Redis shared by every client, on an injected clock."""

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from kit.redis import connect
from services.dispatch import ratelimit

T0 = datetime(2024, 3, 4, 9, tzinfo=timezone.utc)


def bucket() -> str:
    return f"test.rate.{uuid.uuid4().hex}"


class VirtualTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    async def sleep(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


async def test_a_burst_gets_exactly_burst_tokens_then_the_rate(redis):
    key = bucket()
    waits = await asyncio.gather(*(ratelimit.acquire(redis, key, 2.0, 5, T0) for _ in range(8)))
    assert sorted(waits) == [0, 0, 0, 0, 0, 0.5, 0.5, 0.5]        # told to wait, they took nothing
    clock = VirtualTime(T0)
    waited = [await ratelimit.wait_for_token(redis, key, 2.0, 5, clock, sleep=clock.sleep) for _ in range(4)]
    assert waited == [0.5, 0.5, 0.5, 0.5] and clock.now() == T0 + timedelta(seconds=2)
    # an idle bucket refills up to its burst, no further
    later = T0 + timedelta(minutes=1)
    waits = [await ratelimit.acquire(redis, key, 2.0, 5, later) for _ in range(6)]
    assert waits == [0, 0, 0, 0, 0, 0.5]


async def test_two_clients_share_one_bucket(redis, redis_url):
    key, other = bucket(), connect(redis_url)
    try:
        waits = await asyncio.gather(*(ratelimit.acquire(client, key, 1.0, 10, T0)
                                       for _ in range(20) for client in (redis, other)))
    finally:
        await other.aclose()
    assert waits.count(0) == 10 and set(waits) == {0, 1.0}


async def test_a_replica_whose_clock_lags_refills_nothing(redis):
    key = bucket()
    assert await ratelimit.acquire(redis, key, 1.0, 1, T0) == 0
    assert await ratelimit.acquire(redis, key, 1.0, 1, T0 - timedelta(seconds=30)) == 1.0
    assert await ratelimit.acquire(redis, key, 1.0, 1, T0 + timedelta(seconds=1)) == 0


async def test_the_bucket_expires_once_it_would_be_full(redis):
    key = bucket()
    await ratelimit.acquire(redis, key, 10.0, 100, T0)
    assert 0 < await redis.pttl(key) <= 10_000 + 60_000


async def test_a_bad_rate_is_refused(redis):
    with pytest.raises(ValueError):
        await ratelimit.acquire(redis, bucket(), 0, 1, T0)
    with pytest.raises(ValueError):
        await ratelimit.acquire(redis, bucket(), 1.0, 0, T0)


@pytest.mark.parametrize("rate", [3.0, 0.7, 1000 / 7, 2500.0])
async def test_a_waiter_sleeps_once_per_token_whatever_the_rate(redis, rate):
    key, clock = bucket(), VirtualTime(T0)
    assert await ratelimit.acquire(redis, key, rate, 1, T0) == 0
    sleeps = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await clock.sleep(seconds)

    for _ in range(20):
        await ratelimit.wait_for_token(redis, key, rate, 1, clock, sleep=sleep)
    assert len(sleeps) == 20 and all(0 < s <= 1 / rate + 0.001 for s in sleeps)
