"""Request limits per workspace: one bucket for the write key (SDKs, tracking) and one for the
admin key, so a flood of events never locks a marketer out of the API and the other way
round. The counts live in Redis (a sliding window counter from `limits`), so every gateway
replica shares them. Each answer says where the caller stands (`RateLimit-Limit`,
`RateLimit-Remaining`, `RateLimit-Reset`, IETF draft); a refusal is 429 with `Retry-After`."""

import math
import time
from dataclasses import dataclass

from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.keys import ADMIN, WRITE

_STATE_KEY = "rate_limit_headers"


@dataclass(frozen=True)
class Quota:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                   "RateLimit-Reset": str(self.reset_seconds)}
        return headers if self.allowed else {**headers, "Retry-After": str(max(1, self.reset_seconds))}


class RateLimits:
    def __init__(self, redis: Redis, write: str, admin: str) -> None:
        storage = RedisStorage("async+redis://", implementation="redispy", key_prefix="nudge-ratelimit",
                               connection_pool=redis.connection_pool)
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.items = {WRITE: parse(write), ADMIN: parse(admin)}  # checked by GatewaySettings

    async def take(self, kind: str, workspace_id: str) -> Quota:
        item = self.items[kind]
        allowed = await self.limiter.hit(item, kind, workspace_id)
        stats = await self.limiter.get_window_stats(item, kind, workspace_id)
        return Quota(allowed, item.amount, stats.remaining, math.ceil(max(0.0, stats.reset_time - time.time())))


def remember(scope: Scope, quota: Quota) -> None:
    """Keeps the quota's headers for the answer (RateLimitHeaders adds them to it)."""
    scope.setdefault("state", {})[_STATE_KEY] = quota.headers()


class RateLimitHeaders:
    """Adds the headers `remember` kept to whatever the route answers (its own Response included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared with the request the route sees, even if its scope is a copy

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = scope.get("state", {}).get(_STATE_KEY, {})
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(k.lower().encode(), v.encode()) for k, v in extra.items() if k.lower().encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
