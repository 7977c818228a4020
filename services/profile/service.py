"""Use cases of the profile service: one async method per operation, one transaction each."""

import asyncio
import contextvars
import functools
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from opentelemetry import trace
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_sessionmaker

from kit.audit import AuditQuery
from kit.clock import Clock
from kit.errors import InvalidArgument
from kit.outbox import Outbox
from kit.payloads import ConsentChanged, Dropped, Erased, Tracked
from kit.tracing import current_trace_headers
from services.profile import identity
from services.profile.calls import Call, iso
from services.profile.errors import ProfileNotFound
from services.profile.models import audit_log
from services.profile.pii import Pii
from services.profile.repository import ProfileRepository, lock_key
from services.profile.resolver import ConcurrentMerge, Resolver
from services.profile.tombstones import Tombstones

STORED, DUPLICATE, REJECTED, ERASED = "stored", "duplicate", "rejected", "erased"
_RETRIES = 8
_GROUP_CALLS = 2_000  # calls stored by one group-commit transaction at most
tracer = trace.get_tracer("nudge.profile")
# deadlock, serialization failure, and a unique index raced by a concurrent first sighting
_RETRYABLE_SQLSTATES = {"40P01", "40001", "23505"}


@dataclass
class IngestResult:
    outcome: str
    profile_id: str = ""
    event_id: str = ""
    field: str = ""
    reason: str = ""


@dataclass
class _Request:
    workspace_id: str
    calls: list[tuple[Call, identity.Identifiers]]
    trace_headers: dict[str, str]
    span_context: trace.SpanContext
    done: asyncio.Future


@dataclass
class ProfileView:
    row: dict
    identities: list
    merged_ids: list[uuid.UUID]


class ProfileService:
    def __init__(self, sessions: async_sessionmaker, outbox: Outbox, clock: Clock, pii: Pii,
                 phone_region: str = "KR", on_commit: Callable[[], None] = lambda: None, *, blind_key: bytes) -> None:
        self.sessions = sessions
        self.pii = pii  # identifiers and contact traits are sealed at rest
        self.outbox = outbox
        self.clock = clock
        self.phone_region = phone_region
        self.tombstones = Tombstones(blind_key)
        self.on_commit = on_commit  # wakes the outbox relay
        self._waiting: list[_Request] = []
        self._writer: asyncio.Task | None = None

    # -- tracking -------------------------------------------------------------------
    async def ingest(self, workspace_id: str, calls: list[Call],
                     rejected_before: dict[str, int] | None = None) -> list[IngestResult]:
        results: list[IngestResult | None] = [None] * len(calls)
        accepted: list[tuple[int, Call, identity.Identifiers]] = []
        seen: set[str] = set()
        for index, call in enumerate(calls):
            try:
                ids = identity.identifiers_of(call, self.phone_region)
            except InvalidArgument as err:
                results[index] = IngestResult(REJECTED, field=err.field or "", reason=err.message)
                continue
            if call.message_id in seen:
                results[index] = IngestResult(DUPLICATE)
                continue
            seen.add(call.message_id)
            accepted.append((index, call, ids))
        if accepted:
            for index, result in zip([i for i, _, _ in accepted], await self._commit_together(workspace_id, accepted), strict=True):
                results[index] = result
        await self._announce_dropped(workspace_id, results, rejected_before or {})
        return results  # type: ignore[return-value]

    async def _announce_dropped(self, workspace_id: str, results: list[IngestResult],
                                rejected_before: dict[str, int]) -> None:
        """Duplicates, rejected calls (here or at the gateway) and replays of erased people's
        calls as one `ingest.dropped` event, for data quality."""
        duplicates = sum(r.outcome == DUPLICATE for r in results)
        erased = sum(r.outcome == ERASED for r in results)
        rejected: dict[str, int] = dict(rejected_before)
        for r in results:
            if r.outcome == REJECTED:
                rejected[r.field or "call"] = rejected.get(r.field or "call", 0) + 1
        if not duplicates and not rejected and not erased:
            return
        async with self.sessions() as session, session.begin():
            await self.outbox.add(session, [self.outbox.event(
                Dropped(duplicates, rejected, erased), workspace_id, "", self.clock.now())])
        self.on_commit()

    async def _commit_together(self, workspace_id: str, accepted) -> list[IngestResult]:
        """Group commit: requests that arrive while a transaction runs are stored together
        in the next one, so concurrent requests share one transaction's round trips and
        never queue on each other's row locks inside this process."""
        request = _Request(workspace_id, [(call, ids) for _, call, ids in accepted],
                           current_trace_headers(), trace.get_current_span().get_span_context(),
                           asyncio.get_running_loop().create_future())
        self._waiting.append(request)
        if self._writer is None or self._writer.done():
            # Its own context: each commit span is a child of its first request, linked to the others.
            self._writer = asyncio.get_running_loop().create_task(self._write_waiting(), context=contextvars.Context())
        return await asyncio.shield(request.done)

    async def _write_waiting(self) -> None:
        while self._waiting:
            workspace_id = self._waiting[0].workspace_id
            group, size = [], 0
            for request in list(self._waiting):
                if request.workspace_id == workspace_id and (not group or size + len(request.calls) <= _GROUP_CALLS):
                    group.append(request)
                    size += len(request.calls)
                    self._waiting.remove(request)
            try:
                await self._commit_group(workspace_id, group)
            except Exception:
                if len(group) == 1:
                    continue
                # One request's failure must not fail the others it shared a commit with.
                for request in group:
                    try:
                        await self._commit_group(workspace_id, [request])
                    except Exception:  # noqa: BLE001 - already that request's answer
                        pass

    async def _commit_group(self, workspace_id: str, group: list[_Request]) -> None:
        """Stores the group's calls in one transaction and answers each request; a failure
        is the answer of a single request, and raised again for a group."""
        accepted = [(call, ids, request.trace_headers) for request in group for call, ids in request.calls]
        parent = trace.set_span_in_context(trace.NonRecordingSpan(group[0].span_context))
        links = [trace.Link(r.span_context) for r in group[1:] if r.span_context.is_valid]
        try:
            with tracer.start_as_current_span("profile.ingest.commit", context=parent, links=links,
                                              attributes={"nudge.calls": len(accepted), "nudge.requests": len(group)}):
                results = await self._retrying(functools.partial(self._store, workspace_id, accepted))
        except Exception as err:
            if len(group) == 1 and not group[0].done.done():
                group[0].done.set_exception(err)
            raise
        self.on_commit()
        offset = 0
        for request in group:
            if not request.done.done():
                request.done.set_result(results[offset:offset + len(request.calls)])
            offset += len(request.calls)

    async def _store(self, workspace_id: str, accepted, exclusive: bool) -> list[IngestResult]:
        results: list[IngestResult | None] = [None] * len(accepted)
        async with self.sessions() as session, session.begin():
            repo = ProfileRepository(session, self.pii)
            resolver = await self._locked_resolver(repo, workspace_id, accepted, exclusive)
            placed: list[tuple[int, Call, datetime, uuid.UUID]] = []
            last_seen: dict[uuid.UUID, datetime] = {}
            # A resent messageId writes nothing. Two copies racing in from different replicas
            # both get past this check; the unique index below stores one event, and the
            # other copy resolves to the same profile (traits go by event time).
            seen_before = await repo.existing_message_ids(workspace_id, [call.message_id for call, _, _ in accepted])
            # After the owners were read: a call resolved to someone being erased waits on their
            # row, and one read after the erasure committed finds the tombstone.
            replays = await self.tombstones.replays(repo, workspace_id, [(call, _pairs_of(call, ids))
                                                                          for call, ids, _ in accepted])
            for index, (call, ids, _) in enumerate(accepted):
                if call.message_id in seen_before:
                    results[index] = IngestResult(DUPLICATE)
                    continue
                if index in replays:
                    results[index] = IngestResult(ERASED)
                    continue
                at = call.timestamp
                if call.type == "alias":
                    profile_id = await resolver.alias(call.previous_id, ids, at)
                else:
                    profile_id = await resolver.resolve(ids, at)
                if call.type == "identify" and call.traits:
                    resolver.set_traits(profile_id, call.traits, at)
                placed.append((index, call, at, profile_id))
                last_seen[profile_id] = max(at, last_seen.get(profile_id, at))
            await resolver.flush(last_seen)
            await self._record_events(repo, resolver, workspace_id, accepted, placed, results)
            await self.outbox.add(session, resolver.outbox_entries)
        return results  # type: ignore[return-value]

    async def _locked_resolver(self, repo: ProfileRepository, workspace_id: str, accepted,
                               exclusive: bool) -> Resolver:
        """A resolver holding the owners of every identifier the calls name, under the locks
        this attempt needs."""
        unique_types = await repo.policy(workspace_id) or list(identity.DEFAULT_UNIQUE)
        pairs = sorted({pair for call, ids, _ in accepted for pair in _pairs_of(call, ids)})
        # Optimistic first: userId / anonymousId races end in the unique index and are rerun.
        # Identifiers unique only by policy have no index, so calls naming one always wait
        # for each other; a rerun waits for every identifier, so contention cannot starve it.
        await repo.lock([lock_key(workspace_id, *pair) for pair in pairs if exclusive or pair[0] in unique_types])
        resolver = Resolver(repo, self.outbox, workspace_id, unique_types, self.clock.now(), accepted[0][2])
        await resolver.load(pairs)
        if not exclusive:
            # First sightings of a userId / anonymousId wait for each other here rather
            # than colliding on the unique index later and rerunning the whole batch.
            unseen = [p for p in pairs if p[0] in (identity.USER_ID, identity.ANONYMOUS_ID) and not resolver.owners[p]]
            if unseen:
                await repo.lock([lock_key(workspace_id, *pair) for pair in unseen])
                await resolver.load(unseen, again=True)
        return resolver

    async def _record_events(self, repo: ProfileRepository, resolver: Resolver, workspace_id: str, accepted,
                             placed: list[tuple[int, Call, datetime, uuid.UUID]], results: list) -> None:
        """The placed calls' events, each announced once stored; a copy another replica
        stored first is a duplicate."""
        event_rows = [{"id": uuid.uuid4(), "profile_id": resolver.live(profile_id),
                       "message_id": call.message_id, "type": call.type, "name": call.label,
                       "timestamp": at, "received_at": call.received_at, "call": call.as_record(at)}
                      for _, call, at, profile_id in placed]
        inserted = await repo.insert_new_events(workspace_id, event_rows)
        for (index, call, at, _), row in zip(placed, event_rows, strict=True):
            if row["id"] not in inserted:
                results[index] = IngestResult(DUPLICATE)
                continue
            resolver.outbox_entries.append(self.outbox.event(
                Tracked(str(row["id"]), call.label, row["call"]), workspace_id, str(row["profile_id"]), at,
                accepted[index][2]))
            results[index] = IngestResult(STORED, profile_id=str(row["profile_id"]), event_id=str(row["id"]))

    async def _retrying(self, work):
        """Concurrent batches race on the same people: PostgreSQL aborts one (deadlock, unique
        index) or a profile was merged away meanwhile; the loser is rolled back and rerun."""
        for attempt in range(_RETRIES):
            try:
                return await work(attempt > 0)
            except (DBAPIError, ConcurrentMerge) as err:
                orig = getattr(err, "orig", None)
                sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
                if isinstance(err, DBAPIError) and sqlstate not in _RETRYABLE_SQLSTATES:
                    raise
                if attempt == _RETRIES - 1:
                    raise
                await asyncio.sleep(0.005 * (attempt + 1) * (1 + random.random()))

    # -- management -----------------------------------------------------------------
    async def get_profile(self, workspace_id: str, actor: str, profile_id: str) -> ProfileView:
        async with self.sessions() as session, session.begin():
            repo = ProfileRepository(session, self.pii)
            view = await self._view(repo, workspace_id, profile_id)
            await _audit(session, workspace_id, actor, "profile.read", str(view.row["id"]))
        return view

    async def lookup(self, workspace_id: str, actor: str, identifier_type: str, value: str) -> list[ProfileView]:
        value = identity.normalize(identifier_type, value, self.phone_region)
        async with self.sessions() as session, session.begin():
            repo = ProfileRepository(session, self.pii)
            ids = await repo.profile_ids_by_identifier(workspace_id, identifier_type, value)
            views = [await self._view(repo, workspace_id, str(i)) for i in ids]
            for view in views:
                await _audit(session, workspace_id, actor, "profile.lookup", str(view.row["id"]),
                             {"identifier_type": identifier_type})
            if not views:  # a search that found no one is access too
                await _audit(session, workspace_id, actor, "profile.lookup", None,
                             {"identifier_type": identifier_type, "found": 0})
        return views

    async def list_events(self, workspace_id: str, actor: str, profile_id: str, size: int,
                          cursor: str) -> tuple[list, str]:
        size = min(max(size or 50, 1), 500)
        before = _decode_event_cursor(cursor)
        async with self.sessions() as session, session.begin():
            repo = ProfileRepository(session, self.pii)
            row = await self._live(repo, workspace_id, profile_id)
            rows = await repo.events_page(workspace_id, row["id"], size + 1, before)
            await _audit(session, workspace_id, actor, "events.read", str(row["id"]))
        next_cursor = ""
        if len(rows) > size:
            rows = rows[:size]
            next_cursor = f"{rows[-1].timestamp.isoformat()}|{rows[-1].id}"
        return rows, next_cursor

    async def update_consent(self, workspace_id: str, actor: str, profile_id: str,
                             changes: list[tuple[str, bool, datetime | None, str]]) -> ProfileView:
        now = self.clock.now()
        checked = [(identity.validate_consent_purpose(each, f"changes[{i}].purpose"), granted,
                    identity.validate_moment(at, f"changes[{i}].at") if at else now, source)
                   for i, (purpose, granted, at, source) in enumerate(changes)
                   for each in identity.expand_purpose(purpose)]
        if not checked:
            raise InvalidArgument("changes: at least one consent change is required", field="changes")
        async with self.sessions() as session, session.begin():
            repo = ProfileRepository(session, self.pii)
            row = await self._locked_live(repo, workspace_id, profile_id)
            consent = dict(row["consent"])
            applied = {purpose: granted for purpose, granted, at, source in checked
                       if identity.apply_consent(consent, purpose, granted, at, source)}
            await repo.update_profile(workspace_id, row["id"], consent=consent)
            await repo.record_consent(workspace_id, row["id"], [
                {"purpose": purpose, "granted": granted, "at": at, "source": source, "recorded_at": now,
                 "actor": actor} for purpose, granted, at, source in checked])
            if applied:
                await self.outbox.add(session, [self.outbox.event(
                    ConsentChanged({p: consent[p] for p in applied}), workspace_id, str(row["id"]), now)])
            await _audit(session, workspace_id, actor, "consent.update", str(row["id"]),
                         {"purposes": sorted(p for p, *_ in checked)})
            view = await self._view(repo, workspace_id, str(row["id"]))
        self.on_commit()
        return view

    async def announce_held_consent(self, batch: int = 500) -> int:
        """Announces once the consent held before other services read consent events (the
        profiles migration 0002 listed), so segment consent conditions see it. Returns how
        many were announced; a crash leaves the rest listed for the next start."""
        announced = 0
        while True:
            async with self.sessions() as session, session.begin():
                taken, rows = await ProfileRepository(session, self.pii).take_consent_announcements(batch)
                await self.outbox.add(session, [self.outbox.event(
                    ConsentChanged(row.consent), row.workspace_id, str(row.id), self.clock.now(), trace_headers={})
                    for row in rows])
            if not taken:
                return announced
            announced += len(rows)
            self.on_commit()

    async def seal_stored(self, batch: int = 500) -> int:
        """Seals, once, the identifiers, contact traits and calls stored before PII was sealed
        (a warm-up job: a crash leaves the rest for the next start). How many rows."""
        sealed = 0
        while True:
            async with self.sessions() as session, session.begin():
                done = await ProfileRepository(session, self.pii).seal_stored(batch)
            if not done:
                return sealed
            sealed += done

    async def export(self, workspace_id: str, actor: str, profile_id: str) -> dict:
        async with self.sessions() as session, session.begin():
            repo = ProfileRepository(session, self.pii)
            view = await self._view(repo, workspace_id, profile_id)
            events = await repo.all_events(workspace_id, view.row["id"])  # merged profiles' events moved here
            consent_history = await repo.consent_history(workspace_id, view.row["id"])
            await _audit(session, workspace_id, actor, "profile.export", str(view.row["id"]))
            audit = await audit_log.page(session, workspace_id,
                                         AuditQuery(size=10_000, profile_id=str(view.row["id"])))
        return {
            "profile": {"id": str(view.row["id"]), "traits": view.row["traits"],
                        "consent": view.row["consent"], "created_at": view.row["created_at"].isoformat(),
                        "last_seen_at": iso(view.row["last_seen_at"]),
                        "merged_ids": [str(i) for i in view.merged_ids]},
            "identities": [{"type": t, "value": v, "first_seen": f.isoformat()} for t, v, f in view.identities],
            "events": [{"id": str(e.id), **e.call} for e in events],
            "consent_history": [{"purpose": c.purpose, "granted": c.granted, "at": c.at.isoformat(),
                                 "source": c.source, "recorded_at": c.recorded_at.isoformat(), "actor": c.actor}
                                for c in consent_history],
            "access_log": [{"at": a.at.isoformat(), "actor": a.actor, "action": a.action} for a in audit],
        }

    async def delete(self, workspace_id: str, actor: str, profile_id: str) -> int:
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            repo = ProfileRepository(session, self.pii)
            row = await self._locked_live(repo, workspace_id, profile_id)
            erased, identifiers = await repo.erase(workspace_id, row["id"])
            await self.tombstones.record(repo, workspace_id, identifiers, now)
            await self.outbox.add(session, [self.outbox.event(Erased(), workspace_id, str(row["id"]), now)])
            await _audit(session, workspace_id, actor, "profile.delete", str(row["id"]), {"events_erased": erased})
        self.on_commit()
        return erased

    async def identity_policy(self, workspace_id: str) -> list[str]:
        async with self.sessions() as session:
            return await ProfileRepository(session, self.pii).policy(workspace_id) or list(identity.DEFAULT_UNIQUE)

    async def set_identity_policy(self, workspace_id: str, actor: str, unique_identifiers: list[str]) -> list[str]:
        unique = identity.validate_policy(unique_identifiers)
        async with self.sessions() as session, session.begin():
            await ProfileRepository(session, self.pii).set_policy(workspace_id, unique)
            await audit_log.record(session, workspace_id, actor, "identity_policy.update",
                                   detail={"unique_identifiers": unique})
        return unique

    async def _live(self, repo: ProfileRepository, workspace_id: str, profile_id: str) -> dict:
        try:
            key = uuid.UUID(profile_id)
        except ValueError:
            raise ProfileNotFound(profile_id) from None
        row = await repo.live_profile(workspace_id, key)
        if row is None:
            raise ProfileNotFound(profile_id)
        return row

    async def _locked_live(self, repo: ProfileRepository, workspace_id: str, profile_id: str) -> dict:
        """The live profile, row-locked; followed again if a merge moved it before the lock."""
        while True:
            live = await self._live(repo, workspace_id, profile_id)
            row = (await repo.lock_profiles(workspace_id, [live["id"]])).get(live["id"])
            if row is not None and row["merged_into"] is None:
                return row

    async def _view(self, repo: ProfileRepository, workspace_id: str, profile_id: str) -> ProfileView:
        row = await self._live(repo, workspace_id, profile_id)
        return ProfileView(row, await repo.identities_of(workspace_id, row["id"]),
                           await repo.merged_ids(workspace_id, row["id"]))


def _pairs_of(call: Call, ids: identity.Identifiers) -> list[tuple[str, str]]:
    pairs = ids.pairs()
    if call.type == "alias" and call.previous_id:
        pairs += [(identity.USER_ID, call.previous_id), (identity.ANONYMOUS_ID, call.previous_id)]
    return pairs


async def _audit(session, workspace_id: str, actor: str, action: str, profile_id: str | None,
                 detail: dict | None = None) -> None:
    """A profile's row: the profile is both what was read or changed and whose data it is.
    Another service reading on its own account (two GetProfile per send, the gateway resolving
    an SDK's user) writes none (`AuditLog.record`)."""
    await audit_log.record(session, workspace_id, actor, action, profile_id, profile_id, detail)


def _decode_event_cursor(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    try:
        stamp, event_id = cursor.split("|", 1)
        return datetime.fromisoformat(stamp), uuid.UUID(event_id)
    except ValueError:
        raise InvalidArgument("cursor: not a cursor this API returned", field="cursor") from None
