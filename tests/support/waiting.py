"""The one way a test waits: poll a condition until it holds, never sleep a fixed time."""

import asyncio
import inspect
import time
from typing import Any, Callable


async def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05,
                     show: Callable[[], str] = lambda: "") -> Any:
    """Polls `check` (sync or async) until it returns something truthy; that value. Fails
    naming the check and the last value it returned, and `show()` (the pipeline is
    asynchronous, and a slow machine is not a failure: the timeout is generous)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            name = getattr(check, "__qualname__", repr(check))
            raise AssertionError(f"not reached within {timeout}s: {name}; last seen {result!r} {show()}")
        await asyncio.sleep(interval)


def eventually_sync(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05,
                    show: Callable[[], str] = lambda: "") -> Any:
    """`eventually` for the end-to-end tests, whose clients are synchronous; `show()` adds what
    to print on failure."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            name = getattr(check, "__qualname__", repr(check))
            raise AssertionError(f"not reached within {timeout}s: {name}; last seen {result!r} {show()}")
        time.sleep(interval)


async def a_whole_pass(passes: Callable[[], int], timeout: float = 30.0) -> None:
    """Until a background loop has begun and finished a pass after now, given its count of
    finished passes (a negative assert's marker: what the pass would do, it has done). The
    count grows by two: the pass under way now may have begun before now."""
    start = passes()
    await eventually(lambda: passes() >= start + 2, timeout=timeout)
