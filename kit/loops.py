"""The background loops of a service (timers, backfills, deferred sends, reconciles): one
step after another; a failed step is logged and retried, never the end of the loop."""

import asyncio
from collections.abc import Awaitable, Callable

from kit.logs import get_logger

log = get_logger(__name__)


async def repeat(step: Callable[[], Awaitable[object]], idle_seconds: float, *,
                 busy: Callable[[object], bool] = bool, wake: asyncio.Event | None = None,
                 name: str = "background step") -> None:
    """Runs `step` again at once while `busy(result)`; otherwise after `idle_seconds`, or
    sooner when `wake` is set."""
    while True:
        try:
            result = await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(f"{name} failed; retrying")
            result = None
        if result is not None and busy(result):
            continue
        if wake is None:
            await asyncio.sleep(idle_seconds)
            continue
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), idle_seconds)
        except TimeoutError:
            pass
