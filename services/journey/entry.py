"""Who may enter a journey, and when: the entry rules, pure so live runs and the simulator
apply the same ones. "One live run per profile and journey" is not here: live runs hold it
with a unique index, the simulator with its single run."""

from datetime import datetime

from services.journey.definition import Entry


def may_enter(entry: Entry, previous_entries: list[datetime], at: datetime, entered_in_all: int) -> bool:
    """`previous_entries`: this profile's earlier entries into the journey (any version);
    `entered_in_all`: entries of every profile so far, for the cap."""
    if entry.cap is not None and entered_in_all >= entry.cap:
        return False
    if entry.active_from is not None and at < entry.active_from:
        return False
    if entry.active_until is not None and at >= entry.active_until:
        return False
    if not previous_entries:
        return True
    if entry.mode == "once":
        return False
    if entry.mode == "cooldown":
        return at >= max(previous_entries) + entry.cooldown
    return True
