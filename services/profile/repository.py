"""Queries of the profile service. Every method takes the workspace and scopes by it."""

import hashlib
import uuid
from datetime import datetime
from types import SimpleNamespace

import orjson

from sqlalchemy import cast, delete, func, insert, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.profile.models import (consent_history, erased_identifiers, events, identities, identity_policies,
                                     profiles)
from services.profile.pii import SEALED_TYPES, Pii


def _in_the_clear(*fields: str) -> str:
    """SQL: one of these JSON text fields is present and not a token (written before sealing)."""
    return "(" + " OR ".join(f"left({f}, 4) <> 'nv1:'" for f in fields) + ")"


_PLAIN_TRAITS = _in_the_clear("traits->>'email'", "traits->>'phone'")
_PLAIN_CALLS = _in_the_clear("call->'traits'->>'email'", "call->'traits'->>'phone'",
                             "call->'context'->'traits'->>'email'", "call->'context'->'traits'->>'phone'",
                             "call->'context'->'device'->>'token'")


def lock_key(*parts: str) -> int:
    """A signed 64-bit advisory-lock key; collisions only serialize more than needed."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class ProfileRepository:
    """Identifiers, contact traits and stored calls go in sealed and come out opened
    (services/profile/pii.py): callers see values, the database holds tokens and indexes."""

    def __init__(self, session: AsyncSession, pii: Pii) -> None:
        self.session = session
        self.pii = pii

    async def lock(self, keys: list[int]) -> None:
        """Transaction-scoped advisory locks, taken in one sorted pass to avoid deadlocks."""
        if keys:
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k"),
                {"keys": sorted(set(keys))})

    async def policy(self, workspace_id: str) -> list[str] | None:
        return await self.session.scalar(
            select(identity_policies.c.unique_identifiers)
            .where(identity_policies.c.workspace_id == workspace_id))

    async def set_policy(self, workspace_id: str, unique_identifiers: list[str]) -> None:
        stmt = pg_insert(identity_policies).values(
            workspace_id=workspace_id, unique_identifiers=unique_identifiers)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[identity_policies.c.workspace_id],
            set_={"unique_identifiers": stmt.excluded.unique_identifiers}))

    async def existing_message_ids(self, workspace_id: str, message_ids: list[str]) -> set[str]:
        rows = await self.session.execute(text(
            "SELECT e.message_id FROM events AS e JOIN unnest(CAST(:ids AS text[])) AS m(id) "
            "ON e.message_id = m.id WHERE e.workspace_id = :ws"), {"ids": message_ids, "ws": workspace_id})
        return set(rows.scalars())

    async def owners(self, workspace_id: str, pairs: list[tuple[str, str]]) -> list[tuple[str, str, uuid.UUID]]:
        """(type, value, profile) of every identity among `pairs`, in one index-joined query."""
        if not pairs:
            return []
        given = {(t, self.pii.stored(t, v)): v for t, v in pairs}
        rows = await self.session.execute(text(
            "SELECT i.type, i.value, i.profile_id FROM identities AS i "
            "JOIN unnest(CAST(:types AS text[]), CAST(:vals AS text[])) AS k(type, value) "
            "ON i.type = k.type AND i.value = k.value WHERE i.workspace_id = :ws"),
            {"types": [t for t, _ in given], "vals": [v for _, v in given], "ws": workspace_id})
        return [(r.type, given[(r.type, r.value)], r.profile_id) for r in rows]

    async def profiles_with_user_id(self, workspace_id: str, profile_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        if not profile_ids:
            return set()
        rows = await self.session.execute(text(
            "SELECT DISTINCT profile_id FROM identities "
            "WHERE workspace_id = :ws AND type = 'user_id' AND profile_id = ANY(CAST(:ids AS uuid[]))"),
            {"ws": workspace_id, "ids": profile_ids})
        return set(rows.scalars())

    async def lock_profiles(self, workspace_id: str, profile_ids: list[uuid.UUID]) -> dict:
        """The rows, locked FOR UPDATE in id order (a fixed order avoids most deadlocks)."""
        if not profile_ids:
            return {}
        rows = await self.session.execute(
            select(profiles).where(profiles.c.workspace_id == workspace_id,
                                   profiles.c.id == func.any(cast(profile_ids, ARRAY(UUID(as_uuid=True)))))
            .order_by(profiles.c.id).with_for_update())
        sealing = await self.pii.sealing(workspace_id)
        return {r.id: {**r._asdict(), "traits": sealing.open_traits(r.traits)} for r in rows}

    async def take_consent_announcements(self, limit: int) -> tuple[int, list]:
        """Takes up to `limit` pending announcements (any workspace; other replicas skip them):
        how many were taken, and the live ones' (workspace_id, id, consent)."""
        taken = (await self.session.execute(text(
            "DELETE FROM consent_announcements WHERE profile_id IN (SELECT profile_id FROM consent_announcements "
            "ORDER BY profile_id LIMIT :n FOR UPDATE SKIP LOCKED) RETURNING profile_id"), {"n": limit})).scalars().all()
        if not taken:
            return 0, []
        rows = await self.session.execute(
            select(profiles.c.workspace_id, profiles.c.id, profiles.c.consent)
            .where(profiles.c.id == func.any(cast(list(taken), ARRAY(UUID(as_uuid=True)))),
                   profiles.c.merged_into.is_(None), profiles.c.consent != text("'{}'::jsonb")))
        return len(taken), list(rows)

    async def insert_profiles(self, rows: list[dict]) -> None:
        if rows:
            sealing = await self.pii.sealing(rows[0]["workspace_id"])
            await self.session.execute(insert(profiles), [{**r, "traits": sealing.traits(r["traits"])} for r in rows])

    async def insert_identities(self, rows: list[dict]) -> None:
        # The same identity on the same profile twice is harmless; a userId or anonymousId a
        # concurrent batch gave to another profile violates the one-owner index, and the
        # caller reruns the batch to find that owner.
        if rows:
            sealing = await self.pii.sealing(rows[0]["workspace_id"])
            await self.session.execute(pg_insert(identities).on_conflict_do_nothing(
                index_elements=[identities.c.workspace_id, identities.c.type, identities.c.value,
                                identities.c.profile_id]), [{"sealed": None, **sealing.identity(r)} for r in rows])

    async def update_profile(self, workspace_id: str, profile_id: uuid.UUID, **values) -> None:
        if values.get("traits"):
            values["traits"] = (await self.pii.sealing(workspace_id)).traits(values["traits"])
        await self.session.execute(
            update(profiles).where(profiles.c.workspace_id == workspace_id, profiles.c.id == profile_id)
            .values(**values))

    async def move_to_survivor(self, workspace_id: str, merged: uuid.UUID, survivor: uuid.UUID) -> None:
        """Re-point identities and events of a merged profile, and earlier merges into it."""
        await self.session.execute(
            delete(identities).where(
                identities.c.workspace_id == workspace_id, identities.c.profile_id == merged,
                tuple_(identities.c.type, identities.c.value).in_(
                    select(identities.c.type, identities.c.value)
                    .where(identities.c.workspace_id == workspace_id,
                           identities.c.profile_id == survivor))))
        await self.session.execute(
            update(identities).where(identities.c.workspace_id == workspace_id,
                                     identities.c.profile_id == merged).values(profile_id=survivor))
        for table in (events, consent_history):
            await self.session.execute(
                update(table).where(table.c.workspace_id == workspace_id, table.c.profile_id == merged)
                .values(profile_id=survivor))
        await self.session.execute(
            update(profiles).where(profiles.c.workspace_id == workspace_id,
                                   or_(profiles.c.id == merged, profiles.c.merged_into == merged))
            .values(merged_into=survivor))
        await self.update_profile(workspace_id, merged, traits={}, trait_times={}, consent={})

    async def insert_new_events(self, workspace_id: str, rows: list[dict]) -> set[uuid.UUID]:
        """Inserts the rows whose messageId is new to the workspace; returns their ids."""
        if not rows:
            return set()
        sealing = await self.pii.sealing(workspace_id)
        # One prepared statement whatever the batch size: the rows travel as column arrays.
        result = await self.session.execute(text(
            "INSERT INTO events (id, workspace_id, profile_id, message_id, type, name, timestamp, received_at, call) "
            "SELECT v.id, :ws, v.profile_id, v.message_id, v.type, v.name, v.ts, v.received_at, v.call::jsonb "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:profile_ids AS uuid[]), CAST(:message_ids AS text[]), "
            "CAST(:types AS text[]), CAST(:names AS text[]), CAST(:ts AS timestamptz[]), "
            "CAST(:received AS timestamptz[]), CAST(:calls AS text[])) "
            "AS v(id, profile_id, message_id, type, name, ts, received_at, call) "
            "ON CONFLICT (workspace_id, message_id) DO NOTHING RETURNING id"),
            {"ws": workspace_id, "ids": [r["id"] for r in rows],
             "profile_ids": [r["profile_id"] for r in rows], "message_ids": [r["message_id"] for r in rows],
             "types": [r["type"] for r in rows], "names": [r["name"] for r in rows],
             "ts": [r["timestamp"] for r in rows], "received": [r["received_at"] for r in rows],
             "calls": [orjson.dumps(sealing.call(r["call"])).decode() for r in rows]})
        return set(result.scalars())

    async def write_profiles(self, workspace_id: str, changed: list[dict], seen: dict[uuid.UUID, datetime]) -> None:
        """One statement for a batch: new traits / consent where they changed, and last_seen
        moved forward by event time (a late event never moves it backwards)."""
        state = {row["id"]: row for row in changed}
        ids = sorted(set(state) | set(seen))
        if not ids:
            return

        sealing = await self.pii.sealing(workspace_id)

        def column(key, seal=lambda value: value):
            return [orjson.dumps(seal(state[i][key])).decode() if i in state else None for i in ids]

        await self.session.execute(text(
            "UPDATE profiles AS p SET traits = COALESCE(v.traits, p.traits), "
            "trait_times = COALESCE(v.trait_times, p.trait_times), consent = COALESCE(v.consent, p.consent), "
            "last_seen_at = GREATEST(p.last_seen_at, v.seen) "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:traits AS text[])::jsonb[], CAST(:times AS text[])::jsonb[], "
            "CAST(:consent AS text[])::jsonb[], CAST(:seen AS timestamptz[])) "
            "AS v(id, traits, trait_times, consent, seen) WHERE p.workspace_id = :ws AND p.id = v.id"),
            {"ids": ids, "traits": column("traits", sealing.traits), "times": column("trait_times"),
             "consent": column("consent"), "seen": [seen.get(i) for i in ids], "ws": workspace_id})

    async def live_profile(self, workspace_id: str, profile_id: uuid.UUID) -> dict | None:
        """The profile with this id, or the one it was merged into."""
        row = (await self.session.execute(
            select(profiles).where(profiles.c.workspace_id == workspace_id, profiles.c.id == profile_id)
        )).first()
        if row is None:
            return None
        if row.merged_into is not None:
            return await self.live_profile(workspace_id, row.merged_into)
        return {**row._asdict(), "traits": (await self.pii.sealing(workspace_id)).open_traits(row.traits)}

    async def identities_of(self, workspace_id: str, profile_id: uuid.UUID) -> list:
        rows = await self.session.execute(
            select(identities.c.type, identities.c.value, identities.c.sealed, identities.c.first_seen)
            .where(identities.c.workspace_id == workspace_id, identities.c.profile_id == profile_id)
            .order_by(identities.c.type, identities.c.first_seen))
        sealing = await self.pii.sealing(workspace_id)
        return [(r.type, sealing.open_identity(r.type, r.value, r.sealed), r.first_seen) for r in rows]

    async def merged_ids(self, workspace_id: str, profile_id: uuid.UUID) -> list[uuid.UUID]:
        return list(await self.session.scalars(
            select(profiles.c.id).where(profiles.c.workspace_id == workspace_id,
                                        profiles.c.merged_into == profile_id).order_by(profiles.c.id)))

    async def profile_ids_by_identifier(self, workspace_id: str, identifier_type: str, value: str) -> list[uuid.UUID]:
        return list(await self.session.scalars(
            select(identities.c.profile_id)
            .where(identities.c.workspace_id == workspace_id, identities.c.type == identifier_type,
                   identities.c.value == self.pii.stored(identifier_type, value))
            .order_by(identities.c.first_seen)))

    async def events_page(self, workspace_id: str, profile_id: uuid.UUID, size: int,
                          before: tuple[datetime, uuid.UUID] | None) -> list:
        """Newest first; `before` is the (timestamp, id) of the last row of the previous page."""
        query = select(events).where(events.c.workspace_id == workspace_id, events.c.profile_id == profile_id)
        if before is not None:
            query = query.where(tuple_(events.c.timestamp, events.c.id) < tuple_(*before))
        query = query.order_by(events.c.timestamp.desc(), events.c.id.desc()).limit(size)
        return await self._opened(workspace_id, await self.session.execute(query))

    async def all_events(self, workspace_id: str, profile_id: uuid.UUID) -> list:
        return await self._opened(workspace_id, await self.session.execute(
            select(events).where(events.c.workspace_id == workspace_id, events.c.profile_id == profile_id)
            .order_by(events.c.timestamp, events.c.id)))

    async def _opened(self, workspace_id: str, rows) -> list:
        """Event rows with their calls' sealed fields opened."""
        sealing = await self.pii.sealing(workspace_id)
        return [SimpleNamespace(**{**r._asdict(), "call": sealing.open_call(r.call)}) for r in rows]

    async def seal_stored(self, limit: int) -> int:
        """Seals up to `limit` rows of each kind written before PII was sealed (any workspace;
        other replicas skip them): identities, contact traits, stored calls. How many."""
        old = list(await self.session.execute(text(
            "DELETE FROM identities WHERE ctid IN (SELECT ctid FROM identities WHERE sealed IS NULL "
            "AND type = ANY(CAST(:types AS text[])) LIMIT :n FOR UPDATE SKIP LOCKED) "
            "RETURNING workspace_id, type, value, profile_id, first_seen"), {"types": list(SEALED_TYPES), "n": limit}))
        for row in old:
            await self.insert_identities([row._asdict()])
        rows = list(await self.session.execute(
            select(profiles.c.workspace_id, profiles.c.id, profiles.c.traits).where(text(_PLAIN_TRAITS))
            .limit(limit).with_for_update(skip_locked=True)))
        for row in rows:
            await self.update_profile(row.workspace_id, row.id, traits=row.traits)
        calls = list(await self.session.execute(
            select(events.c.workspace_id, events.c.id, events.c.call).where(text(_PLAIN_CALLS))
            .limit(limit).with_for_update(skip_locked=True)))
        for row in calls:
            sealed = (await self.pii.sealing(row.workspace_id)).call(row.call)
            await self.session.execute(update(events).where(events.c.workspace_id == row.workspace_id,
                                                            events.c.id == row.id).values(call=sealed))
        return len(old) + len(rows) + len(calls)

    async def erase(self, workspace_id: str, profile_id: uuid.UUID) -> tuple[int, list[tuple[str, str]]]:
        """Deletes the profile, the profiles merged into it, their identities, events and
        consent history; the events erased and the (type, value) of the identities that went."""
        ids = [profile_id, *await self.merged_ids(workspace_id, profile_id)]
        erased = await self.session.execute(
            delete(events).where(events.c.workspace_id == workspace_id, events.c.profile_id.in_(ids)))
        gone = await self.session.execute(
            delete(identities).where(identities.c.workspace_id == workspace_id, identities.c.profile_id.in_(ids))
            .returning(identities.c.type, identities.c.value, identities.c.sealed))
        sealing = await self.pii.sealing(workspace_id)  # tombstones index the values, not their indexes
        pairs = sorted({(t, sealing.open_identity(t, v, sealed)) for t, v, sealed in gone})
        await self.session.execute(delete(consent_history).where(
            consent_history.c.workspace_id == workspace_id, consent_history.c.profile_id.in_(ids)))
        await self.session.execute(
            delete(profiles).where(profiles.c.workspace_id == workspace_id, profiles.c.id.in_(ids)))
        return erased.rowcount, pairs

    # -- consent history and erasure tombstones ---------------------------------------------
    async def record_consent(self, workspace_id: str, profile_id: uuid.UUID, rows: list[dict]) -> None:
        """rows: {purpose, granted, at, source, recorded_at, actor}."""
        if rows:
            await self.session.execute(insert(consent_history), [
                {"workspace_id": workspace_id, "profile_id": profile_id, **row} for row in rows])

    async def consent_history(self, workspace_id: str, profile_id: uuid.UUID) -> list:
        return list(await self.session.execute(
            select(consent_history).where(consent_history.c.workspace_id == workspace_id,
                                          consent_history.c.profile_id == profile_id)
            .order_by(consent_history.c.id)))

    async def add_tombstones(self, workspace_id: str, digests: list[bytes], erased_at: datetime) -> None:
        """A second erasure of the same identifier (a person who came back) moves its moment on."""
        if not digests:
            return
        stmt = pg_insert(erased_identifiers).values(
            [{"workspace_id": workspace_id, "digest": d, "erased_at": erased_at} for d in digests])
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[erased_identifiers.c.workspace_id, erased_identifiers.c.digest],
            set_={"erased_at": func.greatest(erased_identifiers.c.erased_at, stmt.excluded.erased_at)}))

    async def tombstones(self, workspace_id: str, digests: list[bytes]) -> dict[bytes, datetime]:
        """digest → when its person was erased, for those among `digests` that were."""
        if not digests:
            return {}
        rows = await self.session.execute(text(
            "SELECT digest, erased_at FROM erased_identifiers "
            "WHERE workspace_id = :ws AND digest = ANY(CAST(:digests AS bytea[]))"),
            {"ws": workspace_id, "digests": digests})
        return {bytes(d): at for d, at in rows}
