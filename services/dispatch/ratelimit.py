"""Provider rate limits: one token bucket per key (workspace + provider) in Redis, shared by
every replica, taken from by one Lua script so concurrent replicas never take a token twice.

The bucket is a hash {tokens, at} at the caller's key (hash-tag it for Redis Cluster). It
expires once it would have refilled, since a missing bucket reads as a full one.
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from kit.clock import Clock

# KEYS[1]: the bucket; ARGV: now ms, tokens per ms, burst. Replies 0 (token taken) or the ms
# until one will be there. A caller told to wait takes nothing: it asks again after waiting.
_ACQUIRE = AsyncScript(None, b"""
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
-- time only moves forward: a replica whose clock lags refills nothing
if now > at then tokens, at = math.min(burst, tokens + (now - at) * rate), now end
local wait = 0
-- 1e-9 / 1e-6: float dust must neither refuse a caller who waited exactly the time it was
-- told nor add a millisecond to its wait
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
else
  wait = math.ceil((1 - tokens) / rate - 1e-6)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', at)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 60000)
return wait
""")


async def acquire(redis: Redis, key: str, rate_per_second: float, burst: int, now: datetime) -> float:
    """Takes a token if there is one: 0.0. Otherwise the seconds until there will be one."""
    if not rate_per_second > 0 or burst < 1:
        raise ValueError(f"rate limit {key}: rate must be above 0 and burst at least 1")
    wait_ms = await _ACQUIRE([key], [round(now.timestamp() * 1000), repr(rate_per_second / 1000), burst],
                             client=redis)
    return wait_ms / 1000


async def wait_for_token(redis: Redis, key: str, rate_per_second: float, burst: int, clock: Clock, *,
                         sleep: Callable[[float], Awaitable] = asyncio.sleep) -> float:
    """Waits until a token is taken; returns the seconds waited. Several waiters may wake
    for one token: the losers are told the next wait and sleep again."""
    waited = 0.0
    while wait := await acquire(redis, key, rate_per_second, burst, clock.now()):
        await sleep(wait)
        waited += wait
    return waited
