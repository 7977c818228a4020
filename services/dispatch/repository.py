"""Queries of the dispatch service. Every method takes the workspace and scopes by it."""

import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson

from sqlalchemy import and_, case, delete, exists, func, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from kit.crypto import Vault
from kit.db import rows_about
from kit.errors import InvalidArgument
from services.dispatch.channels import Content, masked_config
from services.dispatch.engagement import Fact
from services.dispatch.models import (channel_configs, deliveries, engagements, forgotten_profiles, inapp_messages,
                                      merged_profiles, policies, templates)


CONFIG_PURPOSE = "channel_config"


@dataclass(frozen=True)
class ChannelConfig:
    channel: str
    provider: str
    config: dict
    updated_at: datetime


class DispatchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- deliveries -------------------------------------------------------------------
    async def claim(self, workspace_id: str, delivery_id: str, key: str, profile_id: str, request: dict,
                    request_hash: str, owner: str, now: datetime) -> bool:
        """True when this call created the delivery for the key (and so runs it, as `owner`)."""
        created = await self.session.execute(
            insert(deliveries).values(workspace_id=workspace_id, id=delivery_id, idempotency_key=key,
                                      profile_id=profile_id, request=request, request_hash=request_hash,
                                      status="pending", owner=owner, created_at=now, updated_at=now)
            .on_conflict_do_nothing().returning(deliveries.c.id))
        return created.first() is not None

    async def by_key(self, workspace_id: str, key: str):
        return (await self.session.execute(select(deliveries).where(
            deliveries.c.workspace_id == workspace_id, deliveries.c.idempotency_key == key))).first()

    async def delivery(self, workspace_id: str, delivery_id: str):
        return (await self.session.execute(select(deliveries).where(
            deliveries.c.workspace_id == workspace_id, deliveries.c.id == delivery_id))).first()

    async def by_provider_id(self, workspace_id: str, provider: str, provider_message_id: str):
        return (await self.session.execute(select(deliveries).where(
            deliveries.c.workspace_id == workspace_id, deliveries.c.provider == provider,
            deliveries.c.provider_message_id == provider_message_id).with_for_update())).first()

    async def take_over(self, workspace_id: str, delivery_id: str, seen_owner: str, now: datetime) -> str | None:
        """A `pending` send whose runner looks dead (before any provider call): the new
        owner's token, or None when someone else took it first."""
        owner = str(uuid.uuid4())
        taken = await self.session.execute(
            update(deliveries).where(deliveries.c.workspace_id == workspace_id, deliveries.c.id == delivery_id,
                                     deliveries.c.status == "pending", deliveries.c.owner == seen_owner)
            .values(owner=owner, updated_at=now).returning(deliveries.c.id))
        return owner if taken.first() else None

    async def mark_sending(self, workspace_id: str, delivery_id: str, owner: str, channel: str, provider: str,
                           now: datetime, links: list[str] | tuple = ()) -> bool:
        """Before the provider call: the message's tracked links are stored with it, so none
        can be followed before it can be resolved."""
        marked = await self.session.execute(update(deliveries).where(
            deliveries.c.workspace_id == workspace_id, deliveries.c.id == delivery_id, deliveries.c.owner == owner,
            deliveries.c.status.in_(("pending", "sending")))
            .values(status="sending", channel=channel, provider=provider, links=list(links), updated_at=now)
            .returning(deliveries.c.id))
        return marked.first() is not None

    async def finish(self, workspace_id: str, delivery_id: str, owner: str, expect: str | None, **values) -> bool:
        """Writes the outcome while `owner` owns the send (and, given `expect`, in that
        status); the send then has no owner until a deferral is claimed again."""
        if values.get("template_version") is None:
            values.pop("template_version", None)
        if "consent" in values:  # no evidence or variables kept for a person erased while this send was under way
            values["consent"] = case((_forgotten(deliveries), text("'{}'::jsonb")),
                                     else_=literal(values["consent"], JSONB))
            values["request"] = case((_forgotten(deliveries), _without_variables(deliveries.c.request)),
                                     else_=deliveries.c.request)
        query = update(deliveries).where(deliveries.c.workspace_id == workspace_id, deliveries.c.id == delivery_id,
                                         deliveries.c.owner == owner)
        if expect:
            query = query.where(deliveries.c.status == expect)
        done = await self.session.execute(query.values(owner="", **values).returning(deliveries.c.id))
        return done.first() is not None

    async def claim_due_deferred(self, now: datetime, limit: int) -> list[tuple[str, str, str]]:
        """Deferred sends whose moment has come, moved back to `pending` for this replica:
        (workspace, delivery, owner token)."""
        rows = await self.session.execute(
            select(deliveries.c.workspace_id, deliveries.c.id)
            .where(deliveries.c.status == "deferred", deliveries.c.deferred_until <= now)
            .order_by(deliveries.c.deferred_until).limit(limit).with_for_update(skip_locked=True))
        due = [(r.workspace_id, r.id, str(uuid.uuid4())) for r in rows]
        for workspace_id, delivery_id, owner in due:
            await self.session.execute(update(deliveries).where(
                deliveries.c.workspace_id == workspace_id, deliveries.c.id == delivery_id)
                .values(status="pending", owner=owner, updated_at=now))
        return due

    async def requeue_stale_pending(self, cutoff: datetime, now: datetime) -> None:
        """`pending` sends whose runner died before a provider call go back to the deferred
        queue, due now; a runner that was only slow finds it no longer owns them."""
        await self.session.execute(update(deliveries).where(
            deliveries.c.status == "pending", deliveries.c.updated_at < cutoff)
            .values(status="deferred", deferred_until=now, owner="", updated_at=now))

    async def stale_sending(self, cutoff: datetime, limit: int) -> list:
        return list(await self.session.execute(
            select(deliveries).where(deliveries.c.status == "sending", deliveries.c.updated_at < cutoff)
            .limit(limit).with_for_update(skip_locked=True)))

    async def unsent_of(self, workspace_id: str, profile_id: str) -> list:
        """The person's sends that no provider has been called for yet, locked."""
        return list(await self.session.execute(select(deliveries).where(
            deliveries.c.workspace_id == workspace_id, deliveries.c.profile_id == profile_id,
            deliveries.c.status.in_(("pending", "deferred"))).order_by(deliveries.c.id).with_for_update()))

    async def forget_profile(self, workspace_id: str, profile_id: str, now: datetime) -> None:
        """An erased person: the in-app inbox and engagement evidence (user agent, IP) go, and
        none is recorded again; the delivery rows stay as records of what was sent, without
        the send's variables or the consent evidence. Tracked links keep redirecting."""
        await self.session.execute(insert(forgotten_profiles).values(
            workspace_id=workspace_id, profile_id=profile_id, at=now).on_conflict_do_nothing())
        for table in (inapp_messages, engagements):
            await self.session.execute(delete(table).where(
                table.c.workspace_id == workspace_id, table.c.profile_id == profile_id))
        await self.session.execute(update(deliveries).where(
            deliveries.c.workspace_id == workspace_id, deliveries.c.profile_id == profile_id).values(
            request=_without_variables(deliveries.c.request), consent=text("'{}'::jsonb")))

    async def deliveries_of(self, workspace_id: str, profile_id: str, limit: int, cursor: str) -> list:
        query = select(deliveries).where(deliveries.c.workspace_id == workspace_id,
                                         deliveries.c.profile_id == profile_id)
        if cursor:
            try:
                at_text, _, last_id = cursor.partition("|")
                at = datetime.fromisoformat(at_text)
            except ValueError:
                raise InvalidArgument("cursor: not a cursor this API gave", field="cursor") from None
            query = query.where(or_(deliveries.c.created_at < at,
                                    and_(deliveries.c.created_at == at, deliveries.c.id < last_id)))
        rows = await self.session.execute(
            query.order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc()).limit(limit))
        return list(rows)

    async def held_about(self, workspace_id: str, profile_ids: list[str]) -> dict:
        """Everything kept about these people: each send with its variables, consent evidence
        and tries; their in-app messages; their engagement with its user agent and IP."""
        return {"deliveries": await rows_about(self.session, deliveries, workspace_id, profile_ids,
                                               deliveries.c.created_at, deliveries.c.id),
                "inapp_messages": await rows_about(self.session, inapp_messages, workspace_id, profile_ids,
                                                   inapp_messages.c.created_at),
                "engagements": await rows_about(self.session, engagements, workspace_id, profile_ids,
                                                engagements.c.at)}

    # -- engagement -------------------------------------------------------------------
    async def add_engagement(self, workspace_id: str, delivery_id: str, profile_id: str, fact: Fact) -> bool:
        """False when this fact id was recorded before, or the person was erased."""
        added = await self.session.execute(_unless_forgotten(engagements, dict(
            workspace_id=workspace_id, id=fact.id, delivery_id=delivery_id, profile_id=profile_id, kind=fact.kind,
            link_id=fact.link_id, url=fact.url, category=fact.category, machine=fact.machine,
            user_agent=fact.user_agent, ip=fact.ip, at=fact.at)).on_conflict_do_nothing().returning(engagements.c.id))
        return added.first() is not None

    # -- in-app -----------------------------------------------------------------------
    async def add_inapp(self, workspace_id: str, delivery_id: str, profile_id: str, content: Content,
                        now: datetime) -> None:
        """Not for an erased person (erased while this send was under way)."""
        await self.session.execute(_unless_forgotten(inapp_messages, dict(
            workspace_id=workspace_id, id=str(uuid.uuid4()), profile_id=profile_id, delivery_id=delivery_id,
            title=content.subject or "", body=content.body, url=content.url, created_at=now)))

    async def unseen_inapp(self, workspace_id: str, profile_ids: list[str]) -> list:
        """The messages of the person (under any of their ids) not marked seen, oldest first."""
        c = inapp_messages.c
        rows = await self.session.execute(
            select(c.id, c.delivery_id, c.title, c.body, c.url, c.created_at)
            .where(c.workspace_id == workspace_id, c.profile_id.in_(profile_ids), ~c.seen)
            .order_by(c.created_at, c.id))
        return list(rows)

    async def mark_inapp_seen(self, workspace_id: str, profile_ids: list[str], ids: list[str]) -> int:
        """How many of these messages of the person (under any of their ids) were marked seen now."""
        c = inapp_messages.c
        result = await self.session.execute(
            update(inapp_messages).where(c.workspace_id == workspace_id, c.profile_id.in_(profile_ids),
                                         c.id.in_(ids), ~c.seen).values(seen=True))
        return result.rowcount

    # -- merges -----------------------------------------------------------------------
    async def merge_profile(self, workspace_id: str, merged_id: str, survivor_id: str, now: datetime) -> None:
        """The merged person's deliveries, inbox and engagement become the survivor's, and the
        merge is kept (also for people merged into the merged one before) for rows that
        arrive under the merged id later."""
        await self.session.execute(insert(merged_profiles).values(
            workspace_id=workspace_id, merged_id=merged_id, survivor_id=survivor_id, at=now)
            .on_conflict_do_nothing())
        await self.session.execute(update(merged_profiles).where(
            merged_profiles.c.workspace_id == workspace_id, merged_profiles.c.survivor_id == merged_id)
            .values(survivor_id=survivor_id))
        for table in (deliveries, inapp_messages, engagements):
            await self.session.execute(update(table).where(
                table.c.workspace_id == workspace_id, table.c.profile_id == merged_id).values(profile_id=survivor_id))

    async def merged_into(self, workspace_id: str, survivor_id: str) -> list[str]:
        """The ids of the people merged into this one."""
        return list(await self.session.scalars(select(merged_profiles.c.merged_id).where(
            merged_profiles.c.workspace_id == workspace_id, merged_profiles.c.survivor_id == survivor_id)))

    # -- templates, channel configs, policy -------------------------------------------
    async def template(self, workspace_id: str, template_id: str, version: int | None = None):
        query = select(templates).where(templates.c.workspace_id == workspace_id, templates.c.id == template_id)
        if version:
            query = query.where(templates.c.version == version)
        return (await self.session.execute(query.order_by(templates.c.version.desc()).limit(1))).first()

    async def latest_templates(self, workspace_id: str) -> list:
        rows = await self.session.execute(
            select(templates).distinct(templates.c.id).where(templates.c.workspace_id == workspace_id)
            .order_by(templates.c.id, templates.c.version.desc()))
        return list(rows)

    async def add_template_version(self, workspace_id: str, template_id: str, name: str, channels: dict,
                                   now: datetime):
        # Saves of one template queue on this lock, so versions never collide.
        await self.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                                   {"key": f"template:{workspace_id}:{template_id}"})
        latest = await self.session.scalar(select(func.max(templates.c.version)).where(
            templates.c.workspace_id == workspace_id, templates.c.id == template_id))
        row = (await self.session.execute(insert(templates).values(
            workspace_id=workspace_id, id=template_id, version=(latest or 0) + 1, name=name, channels=channels,
            created_at=now).returning(*templates.c))).one()
        return row

    async def delete_template(self, workspace_id: str, template_id: str) -> int:
        """Removes every version; the number removed."""
        await self.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                                   {"key": f"template:{workspace_id}:{template_id}"})  # after a save in flight
        deleted = await self.session.execute(delete(templates).where(
            templates.c.workspace_id == workspace_id, templates.c.id == template_id))
        return deleted.rowcount

    async def channel_configs(self, workspace_id: str, vault: Vault | None = None) -> dict[str, ChannelConfig]:
        """channel → its config: in full (opened) with `vault`, for a send; otherwise masked.
        A row written before configs were sealed holds its config in the clear."""
        rows = list(await self.session.execute(
            select(channel_configs).where(channel_configs.c.workspace_id == workspace_id)))
        cipher = await vault.cipher(workspace_id) if vault and any(r.sealed for r in rows) else None
        return {r.channel: ChannelConfig(r.channel, r.provider, orjson.loads(cipher.open(CONFIG_PURPOSE, r.sealed))
                                         if cipher and r.sealed else r.config, r.updated_at) for r in rows}

    async def put_channel_config(self, workspace_id: str, channel: str, provider: str, config: dict, now: datetime,
                                 vault: Vault) -> ChannelConfig:
        """Stores the config sealed, and masked in the clear for answers; returns the masked one."""
        sealed = (await vault.cipher(workspace_id)).seal(CONFIG_PURPOSE, orjson.dumps(config).decode())
        values = {"provider": provider, "config": masked_config(config), "sealed": sealed, "updated_at": now}
        stmt = insert(channel_configs).values(workspace_id=workspace_id, channel=channel, **values)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[channel_configs.c.workspace_id, channel_configs.c.channel], set_=values))
        return ChannelConfig(channel, provider, values["config"], now)

    async def policy(self, workspace_id: str, lock: bool = False) -> dict | None:
        """With `lock`, changes of the policy queue until this transaction ends (also when
        there is no row yet to lock)."""
        if lock:
            await self.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                                       {"key": f"policy:{workspace_id}"})
        return await self.session.scalar(select(policies.c.policy).where(policies.c.workspace_id == workspace_id))

    async def set_policy(self, workspace_id: str, policy: dict, now: datetime) -> None:
        stmt = insert(policies).values(workspace_id=workspace_id, policy=policy, updated_at=now)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[policies.c.workspace_id], set_={"policy": policy, "updated_at": now}))


def _without_variables(request):
    """A send as asked, without the person's data it carried (its template variables)."""
    return func.jsonb_set(request, text("'{variables}'::text[]"), text("'{}'::jsonb"))


def _forgotten(table):
    """Whether the row's person was erased."""
    return exists().where(forgotten_profiles.c.workspace_id == table.c.workspace_id,
                          forgotten_profiles.c.profile_id == table.c.profile_id)


def _unless_forgotten(table, values: dict):
    """INSERT of one row, unless the person it names was erased."""
    erased = exists().where(forgotten_profiles.c.workspace_id == values["workspace_id"],
                            forgotten_profiles.c.profile_id == values["profile_id"])
    row = select(*(literal(value, table.c[name].type).label(name) for name, value in values.items())).where(~erased)
    return insert(table).from_select(list(values), row)
