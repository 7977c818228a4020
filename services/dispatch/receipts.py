"""What comes back after a send: provider receipts, the in-app inbox the SDK fetches, and
engagement (clicks, opens and unsubscribes through tracked links; in-app impressions and
clicks the SDK reports). Mixed into `DispatchService` (service.py)."""

import uuid

from kit.errors import InvalidArgument, NotFound
from services.dispatch import engagement
from services.dispatch.channels import EMAIL, INAPP
from services.dispatch.engagement import Fact
from services.dispatch.outcomes import Outcome
from services.dispatch.reach import ads_purpose, channel_purpose
from services.dispatch.repository import DispatchRepository
from services.dispatch.tokens import ADVERTISING, CLICK, OPEN, UNSUBSCRIBE

FACT_KINDS = {CLICK: "clicked", OPEN: "opened", UNSUBSCRIBE: "unsubscribed"}
INAPP_FACT_KINDS = {"impression": "impression", "click": "inapp_clicked"}
MAX_SEEN_IDS = 100
# An unsubscribe's fact id is derived from its delivery and category: following the link
# again, or a retried call, is the same unsubscribe.
UNSUBSCRIBE_FACTS = uuid.UUID("6f1b6a52-3c0e-4d8a-9a57-0b3c4f1e2d7a")


MAX_RECEIPTS = 500  # receipts in one provider callback: each is a lookup and a write in one transaction


class Receipts:
    async def record_receipt(self, workspace_id: str, provider: str, payload) -> int:
        """Updates deliveries from a provider's receipt: {"provider_message_id" (or
        "messageId"), "status": delivered|failed, "reason"?}, a list of them, or
        {"receipts": [...]}. A receipt that changes nothing is ignored."""
        items = payload if isinstance(payload, list) else (
            payload.get("receipts", [payload]) if isinstance(payload, dict) else None)
        if not isinstance(items, list):
            raise InvalidArgument("receipts: expected a receipt object or a list of them", field="receipts")
        if len(items) > MAX_RECEIPTS:
            raise InvalidArgument(f"receipts: at most {MAX_RECEIPTS} in one call", field="receipts")
        updated = 0
        async with self.sessions() as session, session.begin():
            repo = DispatchRepository(session)
            for i, item in enumerate(items):
                item = item if isinstance(item, dict) else {}
                message_id = item.get("provider_message_id") or item.get("messageId")
                status = item.get("status")
                if not isinstance(message_id, str) or status not in ("delivered", "failed"):
                    raise InvalidArgument(f"receipts[{i}]: expected provider_message_id and status "
                                          "delivered|failed", field=f"receipts[{i}]")
                row = await repo.by_provider_id(workspace_id, provider, message_id)
                if row is None or row.status not in ("sent", "delivered") or row.status == status:
                    continue
                outcome = Outcome(status, row.channel, row.provider, row.provider_message_id,
                                  reason=str(item.get("reason", "")), rule="receipt" if status == "failed" else "",
                                  consent=row.consent)
                updated += await self._finish(repo, row, row.owner, outcome, [], row.template_version)
        self.on_commit()
        return updated

    async def fetch_inapp(self, workspace_id: str, profile_id: str) -> list:
        """The person's in-app messages not marked seen, with those of everyone merged into
        them. Reading changes nothing: a fetch the app never showed must not hide a message."""
        async with self.sessions() as session:
            repo = DispatchRepository(session)
            return await repo.unseen_inapp(workspace_id,
                                           [profile_id, *await repo.merged_into(workspace_id, profile_id)])

    async def mark_inapp_seen(self, workspace_id: str, profile_id: str, ids: list[str]) -> int:
        """Marks these of the person's in-app messages seen (the SDK showed them); others' ids,
        unknown ids and messages already seen count nothing."""
        if not ids:
            raise InvalidArgument("ids: name at least one in-app message", field="ids")
        if len(ids) > MAX_SEEN_IDS:
            raise InvalidArgument(f"ids: at most {MAX_SEEN_IDS} messages at once", field="ids")
        async with self.sessions() as session, session.begin():
            repo = DispatchRepository(session)
            return await repo.mark_inapp_seen(
                workspace_id, [profile_id, *await repo.merged_into(workspace_id, profile_id)], ids)

    # -- engagement -------------------------------------------------------------------
    async def check_token(self, token: str, kind: str):
        """The claim of a token of this kind and its delivery; NotFound for a token that fails
        verification, an unknown delivery, or a link id the delivery does not have."""
        claim = self.tokens.verify(token)
        if claim is None or claim.kind != kind:
            raise NotFound("unknown link", field="token")
        async with self.sessions() as session:
            row = await DispatchRepository(session).delivery(claim.workspace_id, claim.delivery_id)
        if row is None or (claim.link_id is not None and claim.link_id >= len(row.links)):
            raise NotFound("unknown link", field="token")
        return claim, row

    async def record_engagement(self, token: str, kind: str, user_agent: str, ip: str,
                                request_id: str) -> tuple[str | None, str, bool]:
        """A click, open or unsubscribe through a message's link: (the URL to redirect a click
        to, the delivery id, whether it was recorded now). An unsubscribe withdraws the
        consent first, so a failure there records nothing and the person can try again."""
        if kind not in FACT_KINDS:
            raise InvalidArgument(f"kind: expected one of {', '.join(FACT_KINDS)}", field="kind")
        fact_id = _fact_id(request_id)
        claim, row = await self.check_token(token, kind)
        url = row.links[claim.link_id] if claim.link_id is not None else None
        if kind == UNSUBSCRIBE:
            # An advertisement's unsubscribe withdraws advertising on the channel it came by, not
            # the channel: receipts and (for a newsletter's) other messages still reach the person.
            purpose = ads_purpose(row.channel or EMAIL) if claim.category == ADVERTISING \
                else channel_purpose(claim.category)
            await self.profiles.withdraw(claim.workspace_id, row.profile_id, purpose, source=f"unsubscribe:{row.id}")
            fact_id = str(uuid.uuid5(UNSUBSCRIBE_FACTS, f"{row.workspace_id}:{row.id}:{claim.category}"))
        # A one-click unsubscribe is POSTed by the mail provider for the person: never a machine's.
        machine = kind != UNSUBSCRIBE and engagement.is_machine(user_agent)
        fact = Fact(fact_id, FACT_KINDS[kind], self.clock.now(), claim.link_id, url, machine, claim.category or "",
                    user_agent[:500], ip[:100])
        return url, row.id, await self._record(row, fact)

    async def record_inapp_engagement(self, workspace_id: str, delivery_id: str, profile_id: str, kind: str,
                                      user_agent: str, ip: str, request_id: str) -> tuple[str | None, str, bool]:
        """An in-app message shown or clicked, reported by the SDK for `profile_id`: NotFound
        unless the delivery is an in-app message sent to that person."""
        if kind not in INAPP_FACT_KINDS:
            raise InvalidArgument(f"kind: expected one of {', '.join(INAPP_FACT_KINDS)}", field="kind")
        fact_id = _fact_id(request_id)
        async with self.sessions() as session:
            repo = DispatchRepository(session)
            row = await repo.delivery(workspace_id, delivery_id)
            # a merged person's inbox is the survivor's too; asked only when the row is someone else's
            mine = row is not None and (row.profile_id == profile_id
                                        or row.profile_id in await repo.merged_into(workspace_id, profile_id))
        if not mine or row.channel != INAPP or \
                row.status not in ("sent", "delivered"):
            raise NotFound(f"no in-app message {delivery_id!r} for this person", field="delivery_id")
        # An in-app message has one URL at most: link 0, the one a click opens.
        url = row.links[0] if kind == "click" and row.links else None
        fact = Fact(fact_id, INAPP_FACT_KINDS[kind], self.clock.now(), 0 if url else None, url,
                    user_agent=user_agent[:500], ip=ip[:100])
        return url, row.id, await self._record(row, fact)

    async def _record(self, row, fact: Fact) -> bool:
        """The fact and its event in one transaction; False when this fact id is recorded already."""
        async with self.sessions() as session, session.begin():
            recorded = await DispatchRepository(session).add_engagement(row.workspace_id, row.id, row.profile_id,
                                                                        fact)
            if recorded:
                await self.outbox.add(session, [self.outbox.event(
                    engagement.announcement(fact, row), row.workspace_id, row.profile_id, fact.at)])
        if recorded:
            self.on_commit()
        return recorded


def _fact_id(request_id: str) -> str:
    """The caller's request id (a UUID), so a retried call records once; else a new one."""
    if not request_id:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(request_id))
    except ValueError:
        raise InvalidArgument("request_id: expected a UUID", field="request_id") from None
