"""Tombstones of erased people: what an erasure leaves so that a replay of the person's old
tracking calls (an SDK's offline queue, a re-sent batch) is dropped instead of creating them
again.

Only blind indexes (kit.blind) of the identifiers are kept, never the identifiers. A call is
a replay when one of its identifiers (userId, anonymousId, email, phone, device token, an
alias's previousId) belongs to someone erased, and it was made before that erasure, by the
device's own timestamp: a replayed body carries its old `sentAt`, so the skew-corrected time
would make old calls look new. A call made after the erasure (the person signing up again)
is stored as a new person.
"""

import functools
from collections.abc import Sequence
from datetime import datetime

from kit.blind import blind_index
from services.profile.calls import Call
from services.profile.repository import ProfileRepository

Pair = tuple[str, str]  # (identifier type, normalized value)


class Tombstones:
    def __init__(self, key: bytes, cache_size: int = 65_536) -> None:
        # The same people come back batch after batch: their digests are computed once.
        self._digest = functools.lru_cache(maxsize=cache_size)(functools.partial(blind_index, key))

    async def record(self, repo: ProfileRepository, workspace_id: str, pairs: list[Pair], erased_at: datetime) -> None:
        await repo.add_tombstones(workspace_id, sorted({self._digest(*pair) for pair in pairs}), erased_at)

    async def replays(self, repo: ProfileRepository, workspace_id: str,
                      calls: Sequence[tuple[Call, list[Pair]]]) -> set[int]:
        """The indexes of the calls that are replays of an erased person's calls."""
        digests = {pair: self._digest(*pair) for _, pairs in calls for pair in pairs}
        erased = await repo.tombstones(workspace_id, sorted(set(digests.values())))
        if not erased:
            return set()
        return {index for index, (call, pairs) in enumerate(calls)
                if any(made_before(call, erased[digests[pair]]) for pair in pairs if digests[pair] in erased)}


def made_before(call: Call, erased_at: datetime) -> bool:
    """Whether the call was made before the erasure, as the device dated it (else as received)."""
    return (call.original_timestamp or call.received_at) <= erased_at
