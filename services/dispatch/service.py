"""The send use case of the dispatch service, and `DispatchService`, the one object its
transport (grpc_api.py) and process (__main__.py) use. One send, in order: idempotency →
contact and consent → quiet hours, night rule and Kakao's window (defer, never drop) →
fatigue → render → provider rate limit → send with timeout and retries → fallback to the
next channel → delivery record → receipts.

Where the rest lives (each a part of `DispatchService`, sharing its collaborators):
- `pipeline.py`: the decisions of one send (`_decide`) and the provider call (`_deliver`);
- `consumers.py`: the `nudge.events.v1` handler (erasure, merges);
- `scheduled.py`: the deferred-sends loop;
- `receipts.py`: receipts, the in-app inbox, engagement;
- `management.py`: templates, channel configs, the policy;
- `outcomes.py`: `SendSpec`, `Outcome` and the other shapes of a send.

A simulated send (the journey simulator's dry run) goes through the same decisions
(`_decide`) at its virtual moment for its synthetic person, with fatigue on its own scratch
counters, and stops where a real send would call the provider: nothing is stored or sent.

The delivery row is the idempotency record. It is claimed by one insert; whoever inserted
it runs the pipeline and everybody else waits for its outcome. It is marked `sending`
(committed) before the provider call, so a crash during the call leaves a `sending` row
that is reported as failed with an unknown outcome after a lease, never sent again.
"""

import asyncio
import uuid
from dataclasses import asdict
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from kit.clock import Clock
from kit.crypto import Vault, keyring
from kit.errors import InvalidArgument, NotFound
from kit.logs import get_logger
from kit.outbox import Outbox
from kit.payloads import DeliveryOutcome
from services.dispatch import fatigue, simulation
from services.dispatch.channels import ALIMTALK, CHANNELS
from services.dispatch.clients import JourneyUsages
from services.dispatch.consumers import Consumers
from services.dispatch.egress import EgressClient
from services.dispatch.management import Management
from services.dispatch.models import audit_log, data_keys
from services.dispatch.outcomes import (FIRST_ALLOWED, STRICT, Cleared, Outcome, SendSpec, Setup,  # noqa: F401
                                        TakenOver, request_hash)
from services.dispatch.pipeline import Pipeline
from services.dispatch.profiles import ProfileDirectory
from services.dispatch.receipts import Receipts
from services.dispatch.repository import DispatchRepository
from services.dispatch.scheduled import Scheduled
from services.dispatch.simulation import Simulation
from services.dispatch.tokens import Tokens

log = get_logger(__name__)

FINAL = ("sent", "delivered", "suppressed", "failed")
RETRY_SECONDS = 30  # after an outage interrupted a send


class DispatchService(Pipeline, Consumers, Scheduled, Receipts, Management):
    """One object over one set of collaborators (database, Redis, outbox, clock, profile and
    journey clients) and one set of sends in flight (`_running`, `_stopping`), which the
    send use case, the deferred loop, the consumer and the drain all share."""

    def __init__(self, sessions: async_sessionmaker, redis: Redis, outbox: Outbox, clock: Clock,
                 profiles: ProfileDirectory, http: EgressClient, settings,
                 journeys: JourneyUsages | None = None, on_commit=lambda: None) -> None:
        self.sessions = sessions
        self.redis = redis
        self.outbox = outbox
        self.clock = clock
        self.profiles = profiles
        self.http = http
        self.settings = settings
        self.journeys = journeys   # None: nothing can confirm a template is unused, so none is deleted
        self.on_commit = on_commit
        self.tokens = Tokens(settings.link_key())
        self.vault = Vault(sessions, data_keys, keyring(settings))  # channel credentials, sealed at rest
        self._running: set[asyncio.Task] = set()
        self._stopping = False  # draining at shutdown: no provider call is started any more
        self.deferred_sweeps = 0  # passes of the deferred loop that took all that was due (scheduled.py)

    # -- sending ----------------------------------------------------------------------
    async def send(self, workspace_id: str, actor: str, spec: SendSpec) -> dict:
        await self._check_spec(workspace_id, spec)
        delivery_id, owner = str(uuid.uuid4()), str(uuid.uuid4())
        asked = request_hash(spec)
        async with self.sessions() as session, session.begin():
            repo = DispatchRepository(session)
            claimed = await repo.claim(workspace_id, delivery_id, spec.idempotency_key, spec.profile_id,
                                       asdict(spec), asked, owner, self.clock.now())
            first = None if claimed else await repo.by_key(workspace_id, spec.idempotency_key)
            if claimed:  # a repeat of the key sends nothing: no row
                await audit_log.record(session, workspace_id, actor, "message.send", delivery_id, spec.profile_id,
                                       {"template_id": spec.template_id, "channels": spec.channels})
        if claimed:
            await self._detached(self._run(workspace_id, delivery_id, owner))
            return await self.delivery(workspace_id, delivery_id)
        if first.request_hash is not None and first.request_hash != asked:
            # The Stripe rule: a key names one send; another send under it is a caller's bug, and
            # answering with the first result would hide that the second was never sent.
            raise InvalidArgument(f"idempotency_key: {spec.idempotency_key!r} was already used for a different "
                                  f"send ({first.id}); use a new key for a new message", field="idempotency_key")
        return await self._outcome_of(workspace_id, spec.idempotency_key)

    async def simulate(self, workspace_id: str, spec: SendSpec, run: Simulation) -> dict:
        """A dry run for the journey simulator: what `send` would decide at the simulation's
        moment for its synthetic person. No rate limit, provider call, delivery row or
        event; the idempotency key is ignored; fatigue counts, on scratch counters, only
        the earlier allowed sends of the same simulation."""
        person = simulation.person_of(run, spec.profile_id)
        await self._check_spec(workspace_id, spec, simulated=True)
        async with self.sessions() as session:
            setup = await self._setup(DispatchRepository(session), workspace_id, spec.template_id)

        async def would_send(cleared: Cleared, attempt) -> Outcome:
            attempt("sent", "", cleared.provider)
            return Outcome("sent", cleared.channel, cleared.provider, consent=cleared.consent)

        attempts: list[dict] = []
        # A send id of its own: its fatigue reservation must not stand for another simulated send.
        # Links are tracked as a real send's are (their length decides SMS or LMS), but not
        # stored: their tokens lead nowhere.
        send_id = str(uuid.uuid4())
        outcome = await self._decide(workspace_id, spec, person, setup, attempts, simulation.StoppedClock(run.at),
                                     send_id, would_send, self._links(workspace_id, send_id, []),
                                     simulation_id=run.id)
        # Shaped like a delivery row, without id: nothing was stored.
        return {"id": "", "idempotency_key": "", "profile_id": spec.profile_id, "request": asdict(spec),
                "status": outcome.status, "channel": outcome.channel, "provider": outcome.provider,
                "provider_message_id": None, "reason": outcome.reason, "rule": outcome.rule,
                "deferred_until": outcome.deferred_until, "next_allowed_at": outcome.next_allowed_at,
                "consent": outcome.consent, "attempts": attempts, "template_version": setup.template_version,
                "created_at": run.at, "updated_at": run.at}

    async def _detached(self, work) -> None:
        """A send belongs to this service, not to the RPC that asked for it: a caller's
        deadline or disconnect must not cut it off between the provider call and its record."""
        task = asyncio.get_running_loop().create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        await asyncio.shield(task)

    async def _check_spec(self, workspace_id: str, spec: SendSpec, simulated: bool = False) -> None:
        """A simulated send needs neither key nor profile: it is not stored, and its person is synthetic."""
        if not simulated and (not spec.idempotency_key or len(spec.idempotency_key) > 200):
            raise InvalidArgument("idempotency_key: expected 1 to 200 characters", field="idempotency_key")
        if not simulated and not spec.profile_id:
            raise InvalidArgument("profile_id: required", field="profile_id")
        if not spec.channels:
            raise InvalidArgument("channels: give at least one channel, in fallback order", field="channels")
        for i, channel in enumerate(spec.channels):
            if channel not in CHANNELS:
                raise InvalidArgument(f"channels[{i}]: unknown channel {channel!r}; expected one of "
                                      f"{', '.join(CHANNELS)}", field=f"channels[{i}]")
            if channel == ALIMTALK and spec.advertising:
                raise InvalidArgument(f"channels[{i}]: AlimTalk carries informational messages only; "
                                      "send advertising by FriendTalk or another channel", field=f"channels[{i}]")
        if len(set(spec.channels)) != len(spec.channels):
            raise InvalidArgument("channels: each channel at most once", field="channels")
        if spec.order not in (STRICT, FIRST_ALLOWED):
            raise InvalidArgument(f"order: expected {STRICT} or {FIRST_ALLOWED}", field="order")
        if spec.advertising and spec.transactional:
            raise InvalidArgument("transactional: an advertising message is never transactional (fatigue "
                                  "limits apply to it)", field="transactional")
        async with self.sessions() as session:
            template = await DispatchRepository(session).template(workspace_id, spec.template_id)
        if template is None:
            raise InvalidArgument(f"template_id: no template {spec.template_id!r}", field="template_id")
        for i, channel in enumerate(spec.channels):
            if channel not in template.channels:
                raise InvalidArgument(f"channels[{i}]: template {spec.template_id!r} has no {channel} content",
                                      field=f"channels[{i}]")

    async def _outcome_of(self, workspace_id: str, key: str) -> dict:
        """The first send with this key: its result once it has one (waiting for the replica
        that runs it), or, when that replica died before calling a provider, run here."""
        lease = timedelta(seconds=self.settings.sending_lease_seconds)
        deadline = asyncio.get_running_loop().time() + lease.total_seconds()
        while True:
            owner = None
            async with self.sessions() as session, session.begin():
                repo = DispatchRepository(session)
                row = await repo.by_key(workspace_id, key)
                stale = self.clock.now() - row.updated_at > lease
                if row.status == "pending" and stale:
                    owner = await repo.take_over(workspace_id, row.id, row.owner, self.clock.now())
                elif row.status == "sending" and stale:
                    await self._give_up(repo, row)
            if owner:
                await self._detached(self._run(workspace_id, row.id, owner))
            if owner or row.status in (*FINAL, "deferred") or asyncio.get_running_loop().time() > deadline:
                return await self.delivery(workspace_id, row.id)
            await asyncio.sleep(0.1)

    async def _give_up(self, repo: DispatchRepository, row) -> None:
        """A send left `sending` past its lease was cut off during the provider call: its
        outcome is unknown, so it is reported failed and never sent again."""
        await self._finish(repo, row, row.owner, Outcome(
            "failed", row.channel, row.provider, reason="the send was cut off (a crash or restart) while the "
            "provider was being called; its outcome is unknown, so it is not sent again", rule="unknown_outcome"),
            [], expect="sending")
        self.on_commit()

    async def _setup(self, repo: DispatchRepository, workspace_id: str, template_id: str,
                     template_version: int | None = None) -> Setup:
        policy = await repo.policy(workspace_id) or {}
        return Setup(await repo.template(workspace_id, template_id, template_version), policy,
                     await repo.channel_configs(workspace_id, self.vault),
                     fatigue.parse_policy(policy.get("fatigue") or {}, path="policy.fatigue"))

    async def _run(self, workspace_id: str, delivery_id: str, owner: str) -> None:
        async with self.sessions() as session:
            repo = DispatchRepository(session)
            row = await repo.delivery(workspace_id, delivery_id)
            spec = SendSpec(**row.request)
            setup = await self._setup(repo, workspace_id, spec.template_id, row.template_version)
        attempts: list[dict] = []
        try:
            outcome = await self._pipeline(workspace_id, row, owner, spec, setup, attempts)
        except TakenOver:
            return  # another runner owns it now and records its outcome
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Cut off by the drain: recorded now (the caller gets it), never left to a lease.
            await self._cut_off(workspace_id, delivery_id, owner, attempts, setup.template_version)
            return
        except Exception as err:
            # A service or Redis outage is not the send's outcome: it is tried again shortly.
            log.exception("send interrupted; retrying later", delivery_id=delivery_id)
            retry_at = self.clock.now() + timedelta(seconds=RETRY_SECONDS)
            outcome = Outcome("deferred", reason=f"interrupted by {type(err).__name__}; retrying at "
                              f"{retry_at.isoformat()}", rule="retry", deferred_until=retry_at)
        async with self.sessions() as session, session.begin():
            repo = DispatchRepository(session)
            recorded = await self._finish(repo, row, owner, outcome, attempts, setup.template_version)
            if recorded and outcome.inapp is not None:
                # The message and its `sent` commit together: a crash leaves neither, and the send
                # is taken over, never a shown message recorded as an unknown outcome.
                await repo.add_inapp(workspace_id, row.id, row.profile_id, outcome.inapp, self.clock.now())
        self.on_commit()

    async def drain(self, timeout: float) -> None:
        """At shutdown (the background loops have stopped): sends not yet at a provider are
        deferred to now for another replica (`_deliver`); those at a provider get `timeout`
        seconds, then are cut off and recorded failed with an unknown outcome."""
        self._stopping = True
        running = set(self._running)
        done, cut = await asyncio.wait(running, timeout=timeout) if running else (set(), set())
        for task in cut:
            task.cancel()
        await asyncio.gather(*cut, return_exceptions=True)
        log.info("sends drained", finished=len(done), cut_off=len(cut))

    async def _cut_off(self, workspace_id: str, delivery_id: str, owner: str, attempts: list[dict],
                       template_version: int | None) -> None:
        async with self.sessions() as session, session.begin():
            repo = DispatchRepository(session)
            row = await repo.delivery(workspace_id, delivery_id)
            if row.status == "sending":
                outcome, expect = Outcome(
                    "failed", row.channel, row.provider, reason="the dispatch process stopped while the provider "
                    "was being called; its outcome is unknown, so it is not sent again", rule="unknown_outcome"), \
                    "sending"
            else:
                outcome, expect = Outcome(
                    "deferred", reason="the dispatch process stopped before the provider call; another replica "
                    "sends it", rule="retry", deferred_until=self.clock.now()), None
            await self._finish(repo, row, owner, outcome, attempts, template_version, expect=expect)
        self.on_commit()

    async def _finish(self, repo: DispatchRepository, row, owner: str, outcome: Outcome, attempts: list[dict],
                      template_version: int | None = None, expect: str | None = None) -> bool:
        """Records the outcome and announces it, only while `owner` still owns the send."""
        now = self.clock.now()
        recorded = await repo.finish(
            row.workspace_id, row.id, owner, expect, status=outcome.status, channel=outcome.channel,
            provider=outcome.provider, provider_message_id=outcome.provider_message_id, reason=outcome.reason,
            rule=outcome.rule, deferred_until=outcome.deferred_until, next_allowed_at=outcome.next_allowed_at,
            consent=outcome.consent, attempts=[*row.attempts, *attempts], template_version=template_version,
            updated_at=now, **({"links": outcome.links} if outcome.links is not None else {}))
        if recorded:
            request = row.request
            announced = DeliveryOutcome(
                outcome.status, row.id, outcome.channel, outcome.provider, request["template_id"], template_version,
                request["journey_id"], request.get("journey_version", 0), request["node_id"],
                request.get("variant", ""), request["advertising"], outcome.rule, outcome.reason,
                outcome.deferred_until, sorted({a["channel"] for a in attempts if a["outcome"] == "unreachable"}))
            await self.outbox.add(repo.session, [self.outbox.event(announced, row.workspace_id, row.profile_id, now)])
        return recorded

    # -- lookups ----------------------------------------------------------------------
    async def delivery(self, workspace_id: str, delivery_id: str, actor: str | None = None) -> dict:
        """One delivery; read by `actor` (audited), or by this service for its own answer (None)."""
        async with self.sessions() as session, session.begin():
            row = await DispatchRepository(session).delivery(workspace_id, delivery_id)
            if row is None:
                raise NotFound(f"delivery {delivery_id!r} not found", field="id")
            if actor is not None:
                await audit_log.record(session, workspace_id, actor, "delivery.read", delivery_id, row.profile_id)
        return dict(row._mapping)

    async def export_profile(self, workspace_id: str, profile_ids: list[str]) -> dict:
        """What dispatch keeps about a person (GDPR export)."""
        async with self.sessions() as session:
            return await DispatchRepository(session).held_about(workspace_id, profile_ids)

    async def deliveries(self, workspace_id: str, actor: str, profile_id: str, size: int,
                         cursor: str) -> tuple[list, str]:
        size = min(max(size or 50, 1), 500)
        async with self.sessions() as session, session.begin():
            rows = await DispatchRepository(session).deliveries_of(workspace_id, profile_id, size + 1, cursor)
            await audit_log.record(session, workspace_id, actor, "deliveries.read", profile_id, profile_id)
        page = [dict(r._mapping) for r in rows[:size]]
        return page, (f"{page[-1]['created_at'].isoformat()}|{page[-1]['id']}" if len(rows) > size else "")
