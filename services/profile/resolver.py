"""Identity resolution for one ingest transaction: finds or creates the profile of each call
and merges profiles the identity rules say are one person. Works on a batch at once: the
owners of every identifier in the batch are loaded in one query, new profiles and
identities are written in bulk, and merges are applied as they are found."""

import uuid
from datetime import datetime

from kit.outbox import Outbox
from kit.streams import EVENTS
from services.profile import identity
from services.profile.identity import ANONYMOUS_ID, USER_ID, Identifiers, MergeCandidate
from services.profile.repository import ProfileRepository


class Resolver:
    def __init__(self, repo: ProfileRepository, outbox: Outbox, workspace_id: str,
                 unique_types: list[str], now: datetime) -> None:
        self.repo = repo
        self.outbox = outbox
        self.workspace_id = workspace_id
        self.unique_types = unique_types
        self.now = now
        self.owners: dict[tuple[str, str], list[uuid.UUID]] = {}
        self.known: set[uuid.UUID] = set()       # profiles that carry a userId
        self.created: dict[uuid.UUID, datetime] = {}
        self.redirect: dict[uuid.UUID, uuid.UUID] = {}  # merged → survivor
        self.state: dict[uuid.UUID, dict] = {}   # locked profile rows being changed
        self.trait_changes: dict[uuid.UUID, dict] = {}
        self.outbox_rows: list[dict] = []
        self._new_profiles: list[dict] = []
        self._new_identities: list[dict] = []

    async def load(self, pairs: list[tuple[str, str]]) -> None:
        pairs = [p for p in pairs if p not in self.owners]
        for identifier_type, value, profile_id in await self.repo.owners(self.workspace_id, pairs):
            self.owners.setdefault((identifier_type, value), []).append(profile_id)
            if identifier_type == USER_ID:
                self.known.add(profile_id)
        for pair in pairs:
            self.owners.setdefault(pair, [])

    def live(self, profile_id: uuid.UUID) -> uuid.UUID:
        while profile_id in self.redirect:
            profile_id = self.redirect[profile_id]
        return profile_id

    async def resolve(self, ids: Identifiers, at: datetime) -> uuid.UUID:
        target = self._owner(USER_ID, ids.user_id)
        anonymous_owner = self._owner(ANONYMOUS_ID, ids.anonymous_id)
        if anonymous_owner and anonymous_owner != target:
            if target is None:
                # An anonymousId already tied to another userId (a shared device) stays there.
                if not (ids.user_id and await self._has_user_id(anonymous_owner)):
                    target = anonymous_owner
            elif not await self._has_user_id(anonymous_owner):
                target = await self.merge(target, anonymous_owner)
        for identifier_type in self.unique_types:
            for value in ids.values(identifier_type):
                for owner in list(self.owners.get((identifier_type, value), [])):
                    owner = self.live(owner)
                    if target is None:
                        target = owner
                    elif owner != target:
                        target = await self.merge(target, owner)
        if target is None:
            target = self._create(at)
        self._attach(target, ids, at)
        return target

    async def alias(self, previous_id: str, user_id: str, ids: Identifiers, at: datetime) -> uuid.UUID:
        """`alias`: the profile known by previous_id (a userId or anonymousId) is user_id's."""
        target = await self.resolve(ids, at)
        for identifier_type in (USER_ID, ANONYMOUS_ID):
            await self.load([(identifier_type, previous_id)])
            previous = self._owner(identifier_type, previous_id)
            if previous and previous != target:
                target = await self.merge(target, previous)
        if not self._owner(USER_ID, previous_id) and not self._owner(ANONYMOUS_ID, previous_id):
            self._attach(target, Identifiers(anonymous_id=previous_id), at)
        return target

    async def set_traits(self, profile_id: uuid.UUID, traits: dict, at: datetime) -> None:
        profile_id = self.live(profile_id)
        row = await self._locked(profile_id)
        changed = identity.apply_traits(row["traits"], row["trait_times"], traits, at)
        if changed:
            self.trait_changes.setdefault(profile_id, {}).update(changed)

    async def merge(self, a: uuid.UUID, b: uuid.UUID) -> uuid.UUID:
        """Makes a and b one profile; returns the survivor."""
        await self.flush_new()
        rows = await self.repo.lock_profiles(self.workspace_id, [a, b])
        for row in rows.values():
            self.state.setdefault(row["id"], row)
        candidates = [MergeCandidate(str(p), await self._has_user_id(p), self.state[p]["created_at"])
                      for p in (a, b)]
        survivor_s, merged_s = identity.choose_survivor(*candidates)
        survivor, merged = uuid.UUID(survivor_s), uuid.UUID(merged_s)
        keep, gone = self.state[survivor], self.state[merged]
        keep["traits"], keep["trait_times"] = identity.merge_traits(
            (keep["traits"], keep["trait_times"]), (gone["traits"], gone["trait_times"]))
        keep["consent"] = identity.merge_consent(keep["consent"], gone["consent"])
        await self.repo.move_to_survivor(self.workspace_id, merged, survivor)
        self.redirect[merged] = survivor
        self.state.pop(merged)
        if merged in self.trait_changes:
            self.trait_changes.setdefault(survivor, {}).update(self.trait_changes.pop(merged))
        for owners in self.owners.values():
            if merged in owners:
                owners[:] = list(dict.fromkeys(survivor if p == merged else p for p in owners))
        if merged in self.known:
            self.known.add(survivor)
        self.outbox_rows.append(self.outbox.event(
            EVENTS, "profile.merged", self.workspace_id, str(survivor), self.now,
            {"survivor_id": str(survivor), "merged_id": str(merged)}))
        return survivor

    async def flush_new(self) -> None:
        await self.repo.insert_profiles(self._new_profiles)
        await self.repo.insert_identities(self._new_identities)
        self._new_profiles, self._new_identities = [], []

    async def flush(self) -> None:
        """Writes new rows and changed profiles; queues trait-change events."""
        await self.flush_new()
        for profile_id, row in self.state.items():
            await self.repo.update_profile(self.workspace_id, profile_id, traits=row["traits"],
                                           trait_times=row["trait_times"], consent=row["consent"])
        for profile_id, changed in self.trait_changes.items():
            self.outbox_rows.append(self.outbox.event(
                EVENTS, "profile.traits_changed", self.workspace_id, str(self.live(profile_id)),
                self.now, {"traits": changed}))

    def _owner(self, identifier_type: str, value: str) -> uuid.UUID | None:
        owners = self.owners.get((identifier_type, value)) if value else None
        return self.live(owners[0]) if owners else None

    async def _has_user_id(self, profile_id: uuid.UUID) -> bool:
        if profile_id in self.known:
            return True
        if profile_id in self.created:
            return False
        self.known |= await self.repo.profiles_with_user_id(self.workspace_id, [profile_id])
        return profile_id in self.known

    async def _locked(self, profile_id: uuid.UUID) -> dict:
        if profile_id not in self.state:
            await self.flush_new()
            rows = await self.repo.lock_profiles(self.workspace_id, [profile_id])
            self.state[profile_id] = rows[profile_id]
        return self.state[profile_id]

    def _create(self, at: datetime) -> uuid.UUID:
        profile_id = uuid.uuid4()
        self.created[profile_id] = at
        self._new_profiles.append({"id": profile_id, "workspace_id": self.workspace_id,
                                   "traits": {}, "trait_times": {}, "consent": {},
                                   "created_at": self.now, "last_seen_at": at})
        return profile_id

    def _attach(self, profile_id: uuid.UUID, ids: Identifiers, at: datetime) -> None:
        for pair in ids.pairs():
            owners = [self.live(p) for p in self.owners.setdefault(pair, [])]
            if profile_id in owners:
                continue
            if pair[0] in (USER_ID, ANONYMOUS_ID) and owners:
                continue  # owned by another profile (a shared device); never two owners
            self.owners[pair].append(profile_id)
            if pair[0] == USER_ID:
                self.known.add(profile_id)
            self._new_identities.append({"workspace_id": self.workspace_id, "type": pair[0],
                                         "value": pair[1], "profile_id": profile_id, "first_seen": at})
