"""The scheduled loop of the dispatch service: deferred sends whose moment has come, and
sends whose runner died, on any replica (`FOR UPDATE SKIP LOCKED`). Mixed into
`DispatchService` (service.py): a resumed send runs its pipeline (`_run`) as a send of this
service, so the drain at shutdown waits for it like any other."""

import asyncio
from datetime import timedelta

from kit.loops import repeat
from services.dispatch.repository import DispatchRepository

DEFERRED_BATCH = 20


class Scheduled:
    async def run_deferred_once(self) -> int:
        """Sends whose deferral has ended go through the pipeline again (consent, timing and
        fatigue are checked anew at that moment), several at a time. Sends whose runner died
        are swept up: before the provider call they are deferred to now; during it, they
        are reported failed with an unknown outcome."""
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.settings.sending_lease_seconds)
        async with self.sessions() as session, session.begin():
            repo = DispatchRepository(session)
            await repo.requeue_stale_pending(cutoff, now)
            for row in await repo.stale_sending(cutoff, 100):
                await self._give_up(repo, row)
            due = await repo.claim_due_deferred(now, DEFERRED_BATCH)
        await asyncio.gather(*[self._detached(self._run(*claimed)) for claimed in due], return_exceptions=True)
        if len(due) < DEFERRED_BATCH:
            # Less than a batch: nothing due at `now` was left for a later pass. Counted, so that
            # one can wait until whatever was due at a moment has been through the pipeline.
            self.deferred_sweeps += 1
        return len(due)

    async def run_deferred(self) -> None:
        await repeat(self.run_deferred_once, self.settings.deferred_poll_seconds, name="deferred sends pass")
