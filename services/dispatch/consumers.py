"""The stream handler of the dispatch service: `nudge.events.v1` (`profile.deleted`,
`profile.merged`), run by `kit.consumer.StreamConsumer` in the transaction that marks the
batch processed. Mixed into `DispatchService` (service.py), whose `_finish` records and
announces a send's outcome."""

from sqlalchemy.ext.asyncio import AsyncSession

from kit.payloads import Erased, Merged
from kit.streams import StreamEvent
from services.dispatch import fatigue
from services.dispatch.outcomes import Outcome
from services.dispatch.repository import DispatchRepository


class Consumers:
    async def handle(self, session: AsyncSession, batch: list[StreamEvent]) -> None:
        """nudge.events.v1: an erased person's unsent messages are never sent (they fail, and
        say so), and what dispatch holds of them is forgotten; a merged person's deliveries,
        inbox and fatigue counters become the survivor's."""
        repo = DispatchRepository(session)
        for event in batch:
            if isinstance(event.data, Merged):
                merged, survivor = event.data.merged_id, event.data.survivor_id
                await repo.merge_profile(event.workspace_id, merged, survivor, self.clock.now())
                # Redis is not in this transaction: a redelivered event moves the counters once (fatigue.move)
                await fatigue.move(self.redis, workspace_id=event.workspace_id, merged_id=merged,
                                   survivor_id=survivor)
                continue
            if not isinstance(event.data, Erased):
                continue
            for row in await repo.unsent_of(event.workspace_id, event.profile_id):
                # as the send's owner: a runner working on it can no longer send or record it
                await self._finish(repo, row, row.owner, Outcome(
                    "failed", reason="the person was erased before it was sent", rule="erased"), [],
                    row.template_version)
            await repo.forget_profile(event.workspace_id, event.profile_id, self.clock.now())
