"""Identity resolution for one ingest transaction: finds or creates the profile of each call
and merges profiles the identity rules say are one person.

Works on a whole batch with a few statements: the owners of every identifier are loaded
in one query, resolution happens in memory, and the profiles it touched are locked,
checked and written back in bulk. Merges, which are rare, are applied as they are found.
Races with concurrent batches end in a unique-index violation, a deadlock or a
`ConcurrentMerge`, all of which roll the batch back to be run again.
"""

import uuid
from datetime import datetime

from kit.outbox import Outbox
from kit.payloads import Merged, Payload, TraitsChanged
from services.profile import identity
from services.profile.identity import ANONYMOUS_ID, USER_ID, Identifiers, MergeCandidate
from services.profile.repository import ProfileRepository


_ABSENT = object()


class ConcurrentMerge(Exception):
    """A profile this batch resolved to was merged away by a batch that committed first."""


class Resolver:
    def __init__(self, repo: ProfileRepository, outbox: Outbox, workspace_id: str,
                 unique_types: list[str], now: datetime, trace_headers: dict[str, str]) -> None:
        self.repo = repo
        self.outbox = outbox
        self.workspace_id = workspace_id
        self.unique_types = unique_types
        self.now = now
        self.trace_headers = trace_headers
        self.owners: dict[tuple[str, str], list[uuid.UUID]] = {}
        self.known: set[uuid.UUID] = set()        # profiles that carry a userId
        self._unchecked: set[uuid.UUID] = set()   # found profiles not yet known to carry one
        self.redirect: dict[uuid.UUID, uuid.UUID] = {}  # merged → survivor
        self.state: dict[uuid.UUID, dict] = {}    # rows this batch holds (new, or locked)
        self.dirty: set[uuid.UUID] = set()         # existing rows whose traits / consent changed
        self.pending_traits: list[tuple[uuid.UUID, dict, datetime]] = []
        self.trait_changes: dict[uuid.UUID, dict] = {}  # announced as profile.traits_changed
        self.outbox_entries: list[dict] = []
        self._new_identities: list[dict] = []

    async def load(self, pairs: list[tuple[str, str]], again: bool = False) -> None:
        """Who owns each identifier; `again` re-reads pairs another batch may have claimed since."""
        pairs = [p for p in pairs if again or p not in self.owners]
        for pair in pairs:
            self.owners.pop(pair, None)
        found = await self.repo.owners(self.workspace_id, pairs)
        for identifier_type, value, profile_id in found:
            self.owners.setdefault((identifier_type, value), []).append(profile_id)
        for pair in pairs:
            self.owners.setdefault(pair, [])
            if pair[0] == USER_ID:
                self.known.update(self.owners[pair])
        self._unchecked |= {p for *_, p in found} - self.known

    async def _still_anonymous(self, profile_id: uuid.UUID) -> bool:
        """Whether the profile carries no userId, asked under its row lock (its status is read
        lazily, so only after locking): two batches must not both give one anonymous profile
        their different userIds."""
        if profile_id not in self.state:
            await self._lock([profile_id])
        return not await self._is_known(profile_id)

    async def _is_known(self, profile_id: uuid.UUID) -> bool:
        """Whether the profile carries a userId, asked of the database only when it matters."""
        if profile_id in self._unchecked:
            self._unchecked.discard(profile_id)
            self.known |= await self.repo.profiles_with_user_id(self.workspace_id, [profile_id])
        return profile_id in self.known

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
                if not ids.user_id or await self._still_anonymous(anonymous_owner):
                    target = anonymous_owner
            elif await self._still_anonymous(anonymous_owner):
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
            target = self._create()
        self._attach(target, ids, at)
        return target

    async def alias(self, previous_id: str, ids: Identifiers, at: datetime) -> uuid.UUID:
        """`alias`: the profile known by previous_id (a userId or anonymousId) is this user's."""
        target = await self.resolve(ids, at)
        for identifier_type in (USER_ID, ANONYMOUS_ID):
            previous = self._owner(identifier_type, previous_id)
            if previous and previous != target:
                target = await self.merge(target, previous)
        if not self._owner(USER_ID, previous_id) and not self._owner(ANONYMOUS_ID, previous_id):
            self._attach(target, Identifiers(anonymous_id=previous_id), at)
        return target

    def set_traits(self, profile_id: uuid.UUID, traits: dict, at: datetime) -> None:
        self.pending_traits.append((profile_id, traits, at))

    async def merge(self, a: uuid.UUID, b: uuid.UUID) -> uuid.UUID:
        """Makes a and b one profile; returns the survivor."""
        await self._lock([p for p in (a, b) if p not in self.state])
        await self._flush_new()  # identities of a profile created in this batch move too
        candidates = [MergeCandidate(str(p), await self._is_known(p), self.state[p]["created_at"]) for p in (a, b)]
        survivor_s, merged_s = identity.choose_survivor(*candidates)
        survivor, merged = uuid.UUID(survivor_s), uuid.UUID(merged_s)
        keep, gone = self.state[survivor], self.state.pop(merged)
        before = dict(keep["traits"])
        keep["traits"], keep["trait_times"] = identity.merge_traits(
            (keep["traits"], keep["trait_times"]), (gone["traits"], gone["trait_times"]))
        keep["consent"] = identity.merge_consent(keep["consent"], gone["consent"])
        keep["last_seen_at"] = max(filter(None, [keep["last_seen_at"], gone["last_seen_at"]]), default=None)
        self.dirty.add(survivor)
        self.dirty.discard(merged)
        self.trait_changes.setdefault(survivor, {}).update(
            {k: v for k, v in keep["traits"].items() if before.get(k, _ABSENT) != v})
        self.trait_changes.setdefault(survivor, {}).update(self.trait_changes.pop(merged, {}))
        await self.repo.move_to_survivor(self.workspace_id, merged, survivor)
        self.redirect[merged] = survivor
        for owners in self.owners.values():
            if merged in owners:
                owners[:] = list(dict.fromkeys(survivor if p == merged else p for p in owners))
        if merged in self.known:
            self.known.add(survivor)
        self.outbox_entries.append(self._event(survivor, Merged(survivor_id=str(survivor), merged_id=str(merged))))
        return survivor

    async def flush(self, last_seen: dict[uuid.UUID, datetime]) -> None:
        """Locks the existing profiles the batch touched, applies traits by event time, and
        writes everything back: new profiles and identities, then one bulk update."""
        seen: dict[uuid.UUID, datetime] = {}
        for profile_id, at in last_seen.items():
            profile_id = self.live(profile_id)
            seen[profile_id] = max(at, seen.get(profile_id, at))
        # Every existing profile the batch touches is locked here, late and in one sorted
        # statement: concurrent batches queue on shared people instead of deadlocking, and
        # a profile merged away meanwhile is noticed before anything is written to it.
        touched = {self.live(p) for p, _, _ in self.pending_traits} | set(seen)
        await self._lock(list(touched - set(self.state)))
        for profile_id, traits, at in self.pending_traits:
            profile_id = self.live(profile_id)
            row = self.state[profile_id]
            changed = identity.apply_traits(row["traits"], row["trait_times"], traits, at)
            if changed:
                self.trait_changes.setdefault(profile_id, {}).update(changed)
                self.dirty.add(profile_id)
        for profile_id, row in self.state.items():
            if row.get("_new"):  # written whole by the insert below
                row["last_seen_at"] = seen.pop(profile_id, None)
                self.dirty.discard(profile_id)
            elif profile_id in self.dirty and row["last_seen_at"]:
                seen[profile_id] = max(row["last_seen_at"], seen.get(profile_id, row["last_seen_at"]))
        await self._flush_new()
        await self.repo.write_profiles(self.workspace_id, [self.state[p] for p in self.dirty], seen)
        for profile_id, changed in self.trait_changes.items():
            if not changed:
                continue
            self.outbox_entries.append(self._event(profile_id, TraitsChanged(changed)))

    async def _lock(self, profile_ids: list[uuid.UUID]) -> None:
        rows = await self.repo.lock_profiles(self.workspace_id, profile_ids)
        for profile_id in profile_ids:
            row = rows.get(profile_id)
            if row is None or row["merged_into"] is not None:
                raise ConcurrentMerge(str(profile_id))
            self.state[profile_id] = row

    async def _flush_new(self) -> None:
        new = [row for row in self.state.values() if row.pop("_new", False)]
        await self.repo.insert_profiles(new)
        await self.repo.insert_identities(self._new_identities)
        self._new_identities = []

    def _event(self, profile_id: uuid.UUID, payload: Payload) -> dict:
        return self.outbox.event(payload, self.workspace_id, str(profile_id), self.now, self.trace_headers)

    def _owner(self, identifier_type: str, value: str) -> uuid.UUID | None:
        owners = self.owners.get((identifier_type, value)) if value else None
        return self.live(owners[0]) if owners else None

    def _create(self) -> uuid.UUID:
        profile_id = uuid.uuid4()
        self.state[profile_id] = {"id": profile_id, "workspace_id": self.workspace_id, "traits": {},
                                  "trait_times": {}, "consent": {}, "created_at": self.now,
                                  "last_seen_at": None, "merged_into": None, "_new": True}
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
