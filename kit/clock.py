"""The clock is passed in, so rules run the same in production and in virtual time."""

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)



class ShiftedClock:
    """Real time moved by an offset: tests jump days ahead (a window closing, a quiet
    period passing) while events still arrive with real timestamps."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta

    def reset(self) -> None:
        self.offset = timedelta(0)

    def set(self, moment: datetime) -> None:
        """From now on, real time runs on from `moment`."""
        self.offset = moment - datetime.now(timezone.utc)
