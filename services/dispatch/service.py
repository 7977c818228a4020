"""One send, in order: idempotency → contact and consent → quiet hours, night rule and
Kakao's window (defer, never drop) → fatigue → render → provider rate limit → send with
timeout and retries → fallback to the next channel → delivery record → receipts.

A simulated send (the journey simulator's dry run) goes through the same decisions
(`_decide`) at its virtual moment for its synthetic person, with fatigue on its own scratch
counters, and stops where a real send would call the provider: nothing is stored or sent.

The delivery row is the idempotency record. It is claimed by one insert; whoever inserted
it runs the pipeline and everybody else waits for its outcome. It is marked `sending`
(committed) before the provider call, so a crash during the call leaves a `sending` row
that is reported as failed with an unknown outcome after a lease, never sent again.
"""

import asyncio
import hashlib
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.clock import Clock
from kit.errors import FailedPrecondition, InvalidArgument, NotFound
from kit.journey_usages import JourneyUsages
from kit.logs import get_logger
from kit.loops import repeat
from kit.outbox import Outbox
from kit.streams import StreamEvent
from kit.transport import json_object_argument
from services.dispatch import engagement, fatigue, links, ratelimit, simulation, templates, timing
from services.dispatch import policy as policies
from services.dispatch.channels import (ALIMTALK, CHANNELS, EMAIL, FRIENDTALK, INAPP, PUSH, ConfigError, Content,
                                        Outgoing, ProviderError)
from services.dispatch.engagement import Fact
from services.dispatch.links import Links
from services.dispatch.profiles import Person, ProfileDirectory
from services.dispatch.providers import NOT_WRITTEN, delivery_options
from services.dispatch.providers.registry import adapter_for
from services.dispatch.reach import (Address, address_of, ads_purpose, channel_purpose, check_consent,
                                     night_consent)
from services.dispatch.models import DELIVERIES, ENGAGEMENT
from services.dispatch.repository import DispatchRepository
from services.dispatch.simulation import Simulation
from services.dispatch.tokens import ADVERTISING, CLICK, OPEN, UNSUBSCRIBE, Tokens

log = get_logger(__name__)

FINAL = ("sent", "delivered", "suppressed", "failed")
SECRET_HINTS = ("secret", "password", "token", "key")
RETRY_SECONDS = 30  # after an outage interrupted a send
FACT_KINDS = {CLICK: "clicked", OPEN: "opened", UNSUBSCRIBE: "unsubscribed"}
INAPP_FACT_KINDS = {"impression": "impression", "click": "inapp_clicked"}
# An unsubscribe's fact id is derived from its delivery and category: following the link
# again, or a retried call, is the same unsubscribe.
UNSUBSCRIBE_FACTS = uuid.UUID("6f1b6a52-3c0e-4d8a-9a57-0b3c4f1e2d7a")
STRICT, FIRST_ALLOWED = "strict", "first_allowed"  # a send's channel order (SendSpec.order)


class TakenOver(Exception):
    """Another runner owns this send now (this one looked dead); this one stops."""


@dataclass
class SendSpec:
    idempotency_key: str
    profile_id: str
    channels: list[str]
    template_id: str
    advertising: bool = False
    transactional: bool = False
    journey_id: str = ""
    node_id: str = ""
    variables: dict = field(default_factory=dict)
    journey_version: int = 0
    variant: str = ""
    order: str = FIRST_ALLOWED   # a channel that must wait: strict waits, first_allowed tries the next


@dataclass
class Outcome:
    """What the pipeline decided, written to the delivery row in one transaction."""
    status: str
    channel: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    reason: str = ""
    rule: str = ""
    deferred_until: datetime | None = None
    next_allowed_at: datetime | None = None
    consent: dict = field(default_factory=dict)
    # An in-app message is stored in the transaction that records this outcome, with its links.
    inapp: Content | None = None
    links: list[str] | None = None


@dataclass(frozen=True)
class Setup:
    """What the workspace configured that a send is decided on."""
    template: Any              # the template row; None when it was deleted
    policy: dict
    configs: dict              # channel → channel config row
    limits: fatigue.Policy

    @property
    def template_version(self) -> int | None:
        return self.template.version if self.template else None


@dataclass(frozen=True)
class Cleared:
    """A channel that passed every rule, with the message rendered for it."""
    channel: str
    provider: str
    config: dict
    address: Address
    content: Content
    consent: dict              # the consent evidence the decision rests on


class DispatchService:
    def __init__(self, sessions: async_sessionmaker, redis: Redis, outbox: Outbox, clock: Clock,
                 profiles: ProfileDirectory, http: httpx.AsyncClient, settings,
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
        self._running: set[asyncio.Task] = set()
        self._stopping = False  # draining at shutdown: no provider call is started any more

    # -- sending ----------------------------------------------------------------------
    async def send(self, workspace_id: str, spec: SendSpec) -> dict:
        await self._check_spec(workspace_id, spec)
        delivery_id, owner = str(uuid.uuid4()), str(uuid.uuid4())
        asked = request_hash(spec)
        async with self.sessions() as session, session.begin():
            repo = DispatchRepository(session)
            claimed = await repo.claim(workspace_id, delivery_id, spec.idempotency_key, spec.profile_id,
                                       asdict(spec), asked, owner, self.clock.now())
            first = None if claimed else await repo.by_key(workspace_id, spec.idempotency_key)
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
                     await repo.channel_configs(workspace_id),
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

    async def _pipeline(self, workspace_id: str, row, owner: str, spec: SendSpec, setup: Setup,
                        attempts: list[dict]) -> Outcome:
        person = await self.profiles.get(workspace_id, spec.profile_id)
        if person is None:
            return Outcome("failed", reason=f"no profile {spec.profile_id}", rule="no_profile")
        if person.id != spec.profile_id:
            # merged into another meanwhile: fatigue, the inbox and the checks go by the survivor
            spec = replace(spec, profile_id=person.id)

        tracked = self._links(workspace_id, row.id, row.links)

        async def deliver(cleared: Cleared, attempt) -> Outcome | None:
            return await self._deliver(workspace_id, row, owner, spec, setup.policy, cleared, attempt, tracked.urls)

        return await self._decide(workspace_id, spec, person, setup, attempts, self.clock, row.id, deliver, tracked)

    def _links(self, workspace_id: str, delivery_id: str, urls: list[str]) -> Links:
        return Links(self.tokens, self.settings.tracking_base_url, workspace_id, delivery_id, urls)

    async def _decide(self, workspace_id: str, spec: SendSpec, person: Person, setup: Setup, attempts: list[dict],
                      clock: Clock, send_id: str, carry, tracked: Links, simulation_id: str | None = None) -> Outcome:
        """The decisions of one send, shared by real and simulated sends. For each channel in
        order: its provider, the address, consent, timing, fatigue and the render (its links
        tracked in `tracked`); then `carry(cleared, attempt)` takes it (the provider call, or
        the simulator's "would be sent"), and None from it moves on to the next channel. A
        channel that must wait ends a `strict` send there; a `first_allowed` send goes on to
        the next channel and waits (for the earliest such moment) only if none takes it."""
        if setup.template is None:
            return Outcome("failed", reason=f"template {spec.template_id!r} was deleted", rule="no_template")
        now, policy = clock.now(), setup.policy
        suppressed: Outcome | None = None
        deferred: Outcome | None = None
        for channel in spec.channels:
            def attempt(outcome: str, reason: str, provider: str = "") -> None:
                attempts.append({"channel": channel, "provider": provider, "outcome": outcome, "reason": reason,
                                 "at": clock.now().isoformat()})

            config_row = setup.configs.get(channel)
            if config_row is None and channel != INAPP:
                attempt("failed", f"no provider configured for {channel}")
                continue
            provider = config_row.provider if config_row else "inapp"
            config = config_row.config if config_row else {}
            address = address_of(person, channel, config)
            if address is None:
                attempt("unreachable", f"the profile has no address for {channel}", provider)
                continue
            if channel == PUSH and provider == "apns" and address.platform != "ios":
                # FCM reaches both platforms; APNs only Apple devices.
                attempt("unreachable", f"a {address.platform} device cannot be reached through APNs", provider)
                continue
            consent = check_consent(person, channel, spec.advertising, spec.transactional)
            if not consent.allowed:
                attempt("suppressed", consent.reason, provider)
                suppressed = suppressed or Outcome("suppressed", channel, provider, reason=consent.reason,
                                                   rule=consent.rule, consent=consent.evidence)
                continue
            deferral = self._deferral(policy, channel, spec, person, now)
            if deferral is not None:
                attempt("deferred", f"{deferral.reason} until {deferral.until.isoformat()}", provider)
                waiting = Outcome("deferred", channel, provider, reason=f"deferred by {deferral.reason} until "
                                  f"{deferral.until.isoformat()}", rule=deferral.reason,
                                  deferred_until=deferral.until, consent=consent.evidence)
                if spec.order == STRICT:
                    return waiting
                if deferred is None or waiting.deferred_until < deferred.deferred_until:
                    deferred = waiting
                continue
            decision = await fatigue.decide(
                self.redis, setup.limits,
                workspace_id=workspace_id, profile_id=spec.profile_id, channel=channel, template_id=spec.template_id,
                journey_id=spec.journey_id or None, transactional=spec.transactional, now=now, zone=person.zone,
                send_id=send_id, simulation_id=simulation_id)
            if not decision.allowed:
                reason = f"fatigue limit: {decision.rule}"
                attempt("suppressed", reason, provider)
                suppressed = suppressed or Outcome("suppressed", channel, provider, reason=reason,
                                                   rule=f"fatigue:{decision.rule}",
                                                   next_allowed_at=decision.next_allowed_at, consent=consent.evidence)
                continue
            outcome = None
            try:
                tracking = tracked.tracking(
                    links.utm_for(policy.get("utm") or {}, channel, spec.journey_id, spec.node_id),
                    unsubscribe=_unsubscribe_category(channel, spec))
                try:
                    content = templates.render(channel, setup.template.channels[channel], _variables(person, spec),
                                               advertising=spec.advertising, sender_name=policy.get("sender_name", ""),
                                               opt_out={"phone": policy.get("opt_out_phone", ""),
                                                        "url": policy.get("unsubscribe_url", ""),
                                                        "app": policy.get("opt_out_app", "")},
                                               tracking=tracking)
                except templates.RenderError as err:
                    attempt("failed", f"template: {err}", provider)
                    continue
                outcome = await carry(Cleared(channel, provider, config, address, content, consent.evidence), attempt)
            finally:
                # A message not sent, for whatever reason, does not count against the person.
                if outcome is None or outcome.status not in ("sent", "delivered"):
                    await fatigue.release(self.redis, decision.reservation)
            if outcome is not None:
                return outcome
        # A channel that may send later beats one that may not (suppressed) or could not (failed).
        if deferred is not None:
            return deferred
        if suppressed is not None:
            return suppressed
        return Outcome("failed", reason="; ".join(_labelled(a["channel"], a["reason"]) for a in attempts)
                       or "no channel could carry it", rule="no_channel")

    def _deferral(self, policy: dict, channel: str, spec: SendSpec, person: Person, now: datetime):
        quiet = policy.get("quiet_hours") or {}
        return timing.next_allowed(
            now, channel=channel, advertising=spec.advertising, profile_zone=person.zone,
            quiet_hours=(quiet["start"], quiet["end"]) if quiet else None,
            night_consent=night_consent(person), quiet_hours_informational=quiet.get("informational", False),
            night_rule_exempt=timing.exempt_from_night_rule(policy))

    async def _deliver(self, workspace_id: str, row, owner: str, spec: SendSpec, policy: dict, cleared: Cleared,
                       attempt, urls: list[str]) -> Outcome | None:
        """Rate limit; consent and timing checked once more, right before the call (an
        opt-out that committed meanwhile, a wait that ran into the night); `sending`
        committed with the tracked links' `urls`; then the provider. None: try the next channel.
        In-app has no provider: its message is stored with the outcome, in one transaction."""
        channel, provider, config = cleared.channel, cleared.provider, cleared.config
        await ratelimit.wait_for_token(
            self.redis, f"nudge:dispatch:rate:{workspace_id}:{provider}",
            float(config.get("rate_per_second", self.settings.provider_rate_per_second)),
            int(config.get("burst", self.settings.provider_burst)), self.clock)
        fresh, recheck, withdrawn = await self._consent_now(workspace_id, spec, channel, provider, attempt)
        if withdrawn:
            return withdrawn
        if deferral := self._deferral(policy, channel, spec, fresh, self.clock.now()):
            attempt("deferred", f"{deferral.reason} until {deferral.until.isoformat()}", provider)
            return Outcome("deferred", channel, provider, reason=f"deferred by {deferral.reason} until "
                           f"{deferral.until.isoformat()}", rule=deferral.reason, deferred_until=deferral.until,
                           consent=recheck.evidence)
        if self._stopping and channel != INAPP:
            # Shutting down: a provider call started now could be cut off; another replica makes it.
            attempt("deferred", "the dispatch process is stopping", provider)
            return Outcome("deferred", channel, provider, reason="the dispatch process stopped before the provider "
                           "call; another replica sends it", rule="retry", deferred_until=self.clock.now(),
                           consent=recheck.evidence)
        if channel == INAPP:
            # No provider and no `sending` state: the message is stored with the outcome (`_run`).
            attempt("sent", "", provider)
            return Outcome("sent", channel, provider, provider_message_id=row.id, consent=recheck.evidence,
                           inapp=cleared.content, links=list(urls))
        async with self.sessions() as session, session.begin():
            if not await DispatchRepository(session).mark_sending(workspace_id, row.id, owner, channel, provider,
                                                                  self.clock.now(), links=urls):
                raise TakenOver(row.id)
        outgoing = Outgoing(delivery_id=row.id, workspace_id=workspace_id, profile_id=spec.profile_id,
                            channel=channel, to=cleared.address.to, content=cleared.content,
                            advertising=spec.advertising, platform=cleared.address.platform)
        adapter = adapter_for(channel, provider)
        uncertain = False  # a try may have reached the provider

        def unknown(reason: str) -> Outcome:
            # It may have been sent: another try or another channel could send it twice.
            attempt("failed", reason, provider)
            return Outcome("failed", channel, provider, reason=reason, rule="unknown_outcome",
                           consent=recheck.evidence)

        for try_number in range(1, self.settings.provider_attempts + 1):
            try:
                result = await asyncio.wait_for(adapter.send(config, outgoing, self.http),
                                                self.settings.provider_timeout_seconds)
            except (ProviderError, TimeoutError, httpx.TransportError) as err:
                text = str(err) or type(err).__name__
                uncertain = uncertain or _ambiguous(err)
                if _ambiguous(err) and not (adapter.idempotent or config.get("resend_on_timeout")):
                    return unknown(f"{text}: the provider may have taken the message, and {provider} has no "
                                   "idempotency key, so it is not sent again (the channel's "
                                   "config.resend_on_timeout allows a retry)")
                retryable = not isinstance(err, ProviderError) or err.retryable
                if retryable and try_number < self.settings.provider_attempts:
                    await asyncio.sleep(0.2 * 2 ** (try_number - 1))  # 0.2 s, 0.4 s, …
                    # an opt-out that committed during the backoff stops the next try too
                    _, recheck, withdrawn = await self._consent_now(workspace_id, spec, channel, provider, attempt)
                    if withdrawn:
                        return withdrawn
                    continue
                if uncertain:
                    return unknown(f"{text}; an earlier try may have reached the provider, so no other channel "
                                   "is tried")
                unreachable = isinstance(err, ProviderError) and err.unreachable
                attempt("unreachable" if unreachable else "failed", text, provider)
                return None
            attempt("sent", "", result.provider)
            return Outcome(result.status if result.status == "delivered" else "sent", channel, result.provider,
                           provider_message_id=result.provider_message_id, consent=recheck.evidence)
        return None

    async def _consent_now(self, workspace_id: str, spec: SendSpec, channel: str, provider: str, attempt):
        """(the person as now, the consent check, the suppression when it no longer allows the send)."""
        fresh = await self.profiles.get(workspace_id, spec.profile_id)
        recheck = check_consent(fresh, channel, spec.advertising, spec.transactional) if fresh else None
        if recheck is not None and recheck.allowed:
            return fresh, recheck, None
        reason = recheck.reason if recheck else "the profile was erased"
        attempt("suppressed", reason, provider)
        return fresh, recheck, Outcome("suppressed", channel, provider, reason=reason,
                                       rule=recheck.rule if recheck else "no_profile")

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
            await self.outbox.add(repo.session, [self.outbox.event(
                DELIVERIES, f"delivery.{outcome.status}", row.workspace_id, row.profile_id, now,
                {"delivery_id": row.id, "channel": outcome.channel, "provider": outcome.provider,
                 "template_id": request["template_id"], "template_version": template_version,
                 "journey_id": request["journey_id"], "journey_version": request.get("journey_version", 0),
                 "node_id": request["node_id"], "variant": request.get("variant", ""),
                 "advertising": request["advertising"], "rule": outcome.rule, "reason": outcome.reason,
                 "deferred_until": outcome.deferred_until.isoformat() if outcome.deferred_until else None,
                 # channels with no address for the person: data quality's missing contacts
                 "unreachable": sorted({a["channel"] for a in attempts if a["outcome"] == "unreachable"})})])
        return recorded

    # -- erasure ----------------------------------------------------------------------
    async def handle(self, session: AsyncSession, batch: list[StreamEvent]) -> None:
        """nudge.events.v1: an erased person's unsent messages are never sent (they fail, and
        say so), and what dispatch holds of them is forgotten; a merged person's deliveries,
        inbox and fatigue counters become the survivor's."""
        repo = DispatchRepository(session)
        for event in batch:
            if event.type == "profile.merged":
                merged, survivor = event.payload["merged_id"], event.payload["survivor_id"]
                await repo.merge_profile(event.workspace_id, merged, survivor, self.clock.now())
                # Redis is not in this transaction: a redelivered event moves the counters once (fatigue.move)
                await fatigue.move(self.redis, workspace_id=event.workspace_id, merged_id=merged,
                                   survivor_id=survivor)
                continue
            if event.type != "profile.deleted":
                continue
            for row in await repo.unsent_of(event.workspace_id, event.profile_id):
                # as the send's owner: a runner working on it can no longer send or record it
                await self._finish(repo, row, row.owner, Outcome(
                    "failed", reason="the person was erased before it was sent", rule="erased"), [],
                    row.template_version)
            await repo.forget_profile(event.workspace_id, event.profile_id, self.clock.now())

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
            due = await repo.claim_due_deferred(now, 20)
        await asyncio.gather(*[self._detached(self._run(*claimed)) for claimed in due], return_exceptions=True)
        return len(due)

    async def run_deferred(self) -> None:
        await repeat(self.run_deferred_once, self.settings.deferred_poll_seconds, name="deferred sends pass")

    # -- receipts and in-app ----------------------------------------------------------
    async def record_receipt(self, workspace_id: str, provider: str, payload) -> int:
        """Updates deliveries from a provider's receipt: {"provider_message_id" (or
        "messageId"), "status": delivered|failed, "reason"?}, a list of them, or
        {"receipts": [...]}. A receipt that changes nothing is ignored."""
        items = payload if isinstance(payload, list) else (
            payload.get("receipts", [payload]) if isinstance(payload, dict) else None)
        if not isinstance(items, list):
            raise InvalidArgument("receipts: expected a receipt object or a list of them", field="receipts")
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
        """The person's unseen in-app messages, with those of everyone merged into them."""
        async with self.sessions() as session, session.begin():
            repo = DispatchRepository(session)
            return await repo.take_inapp(workspace_id, [profile_id, *await repo.merged_into(workspace_id, profile_id)])

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
            mine = {profile_id, *await repo.merged_into(workspace_id, profile_id)}  # a merged person's inbox too
        if row is None or row.profile_id not in mine or row.channel != INAPP or \
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
                    ENGAGEMENT, engagement.EVENT_TYPES[fact.kind], row.workspace_id, row.profile_id, fact.at,
                    engagement.payload(fact, row))])
        if recorded:
            self.on_commit()
        return recorded

    # -- configuration ----------------------------------------------------------------
    async def put_template(self, workspace_id: str, template_id: str, name: str, channels_json: str) -> dict:
        if not template_id or len(template_id) > 100:
            raise InvalidArgument("id: expected 1 to 100 characters", field="id")
        channels = json_object_argument(channels_json, "channels")
        if not channels:
            raise InvalidArgument("channels: give the content of at least one channel", field="channels")
        checked = {}
        for channel, fields in channels.items():
            if channel not in CHANNELS:
                raise InvalidArgument(f"channels.{channel}: unknown channel; expected one of {', '.join(CHANNELS)}",
                                      field=f"channels.{channel}")
            checked[channel] = templates.validate_template(channel, fields, path=f"channels.{channel}")
        async with self.sessions() as session, session.begin():
            return await DispatchRepository(session).add_template_version(
                workspace_id, template_id, name or template_id, checked, self.clock.now())

    async def template(self, workspace_id: str, template_id: str, version: int = 0):
        async with self.sessions() as session:
            row = await DispatchRepository(session).template(workspace_id, template_id, version or None)
        if row is None:
            raise NotFound(f"template {template_id!r} not found", field="id")
        return row

    async def delete_template(self, workspace_id: str, template_id: str) -> None:
        """Removes every version of the template, once the journey service has confirmed that
        no live journey sends it; never unchecked. Deferred sends of it then fail."""
        await self.template(workspace_id, template_id)  # NotFound first: no need to ask about it
        if self.journeys is None:
            raise FailedPrecondition(f"cannot confirm that no live journey uses template {template_id!r}: "
                                     "no journey service configured", field="id")
        await self.journeys.refuse_if_used(workspace_id, "template", template_id)
        async with self.sessions() as session, session.begin():
            if not await DispatchRepository(session).delete_template(workspace_id, template_id):
                raise NotFound(f"template {template_id!r} not found", field="id")

    async def list_templates(self, workspace_id: str) -> list:
        async with self.sessions() as session:
            return await DispatchRepository(session).latest_templates(workspace_id)

    async def put_channel_config(self, workspace_id: str, channel: str, provider: str, config_json: str):
        if channel not in CHANNELS or channel == INAPP:
            raise InvalidArgument(f"channel: expected one of {', '.join(c for c in CHANNELS if c != INAPP)}",
                                  field="channel")
        try:
            adapter = adapter_for(channel, provider)
            config = delivery_options(adapter.check_config(json_object_argument(config_json, "config")))
            if check_target := getattr(adapter, "check_target", None):  # what each send will check (webhook)
                await check_target(config)
        except ConfigError as err:
            raise InvalidArgument(str(err), field=err.field) from None
        async with self.sessions() as session, session.begin():
            row = await DispatchRepository(session).put_channel_config(workspace_id, channel, provider, config,
                                                                       self.clock.now())
        return masked(row)

    async def channel_configs(self, workspace_id: str) -> list:
        async with self.sessions() as session:
            return [masked(r) for r in (await DispatchRepository(session).channel_configs(workspace_id)).values()]

    async def policy(self, workspace_id: str) -> dict:
        async with self.sessions() as session:
            return await DispatchRepository(session).policy(workspace_id) or {}

    async def set_policy(self, workspace_id: str, policy_json: str, merge_patch: bool = False) -> dict:
        """The whole policy, or with `merge_patch` an RFC 7396 patch of the stored one (read,
        patched, checked and written in one transaction, so concurrent patches both apply)."""
        given = json_object_argument(policy_json, "policy")
        async with self.sessions() as session, session.begin():
            repo = DispatchRepository(session)
            stored = await repo.policy(workspace_id, lock=True)  # a PUT and a PATCH at once: one after the other
            policy = policies.merge_patch(stored or {}, given) if merge_patch else given
            self._check_policy(policy)
            await repo.set_policy(workspace_id, policy, self.clock.now())
        return policy

    def _check_policy(self, policy: dict) -> None:
        allowed = {"fatigue", "quiet_hours", "night_rule", "sender_name", "opt_out_phone", "opt_out_app",
                   "unsubscribe_url", "utm"}
        if extra := sorted(set(policy) - allowed):
            raise InvalidArgument(f"policy.{extra[0]}: not a policy field; expected {', '.join(sorted(allowed))}",
                                  field=f"policy.{extra[0]}")
        fatigue.parse_policy(policy.get("fatigue") or {}, path="policy.fatigue")
        if "night_rule" in policy:
            policy["night_rule"] = timing.parse_night_rule(policy["night_rule"], path="policy.night_rule")
        if quiet := policy.get("quiet_hours"):
            timing.parse_quiet_hours(quiet, path="policy.quiet_hours")
            try:  # with the night rule and Kakao's window, some time of day must stay open
                timing.next_allowed(self.clock.now(), channel=FRIENDTALK, advertising=True,
                                    quiet_hours=(quiet["start"], quiet["end"]))
            except timing.NeverAllowed:
                raise InvalidArgument("policy.quiet_hours: together with the night rule (21:00–08:00 KST) and "
                                      "Kakao's advertising window (08:00–20:00 KST) no time is left to send "
                                      "advertising", field="policy.quiet_hours") from None
        for name in ("sender_name", "opt_out_phone", "opt_out_app", "unsubscribe_url"):
            if not isinstance(policy.get(name, ""), str):
                raise InvalidArgument(f"policy.{name}: expected a string", field=f"policy.{name}")
        links.check_utm(policy.get("utm", {}))

    # -- lookups ----------------------------------------------------------------------
    async def delivery(self, workspace_id: str, delivery_id: str) -> dict:
        async with self.sessions() as session:
            row = await DispatchRepository(session).delivery(workspace_id, delivery_id)
        if row is None:
            raise NotFound(f"delivery {delivery_id!r} not found", field="id")
        return dict(row._mapping)

    async def deliveries(self, workspace_id: str, profile_id: str, size: int, cursor: str) -> tuple[list, str]:
        size = min(max(size or 50, 1), 500)
        async with self.sessions() as session:
            rows = await DispatchRepository(session).deliveries_of(workspace_id, profile_id, size + 1, cursor)
        page = [dict(r._mapping) for r in rows[:size]]
        return page, (f"{page[-1]['created_at'].isoformat()}|{page[-1]['id']}" if len(rows) > size else "")


def _unsubscribe_category(channel: str, spec: SendSpec) -> str | None:
    """What an email's one-click unsubscribe withdraws: advertising by email (ads:email) for an
    ad, the email channel for other non-transactional mail; a transactional one (a receipt)
    offers none, and neither opt-out ever stops one. SMS and Kakao carry their 080 number
    instead, notifications nothing."""
    if channel != EMAIL:
        return None
    if spec.advertising:
        return ADVERTISING
    return None if spec.transactional else EMAIL


def _ambiguous(err: Exception) -> bool:
    """Whether a failed try may have reached the provider: our own deadline, a transport
    failure past the connect, or what the adapter says."""
    if isinstance(err, ProviderError):
        return err.ambiguous
    if isinstance(err, httpx.TransportError):
        return not isinstance(err, NOT_WRITTEN)
    return isinstance(err, TimeoutError)


def request_hash(spec: SendSpec) -> str:
    """What makes two sends the same: everything asked but the key (JSON with sorted keys). A
    journey step's key names its run, node and step; the run's person can change only by a
    merge (the same person), so a step replayed for the survivor is not another send."""
    ignored = {"idempotency_key", "profile_id"} if spec.journey_id else {"idempotency_key"}
    asked = {k: v for k, v in asdict(spec).items() if k not in ignored}
    return hashlib.sha256(orjson.dumps(asked, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _labelled(channel: str, reason: str) -> str:
    """A channel's failure in the send's reason, prefixed once: a provider named like its
    channel (webhook) already says which it is."""
    return reason if reason.startswith(f"{channel}:") else f"{channel}: {reason}"


def _fact_id(request_id: str) -> str:
    """The caller's request id (a UUID), so a retried call records once; else a new one."""
    if not request_id:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(request_id))
    except ValueError:
        raise InvalidArgument("request_id: expected a UUID", field="request_id") from None


def _variables(person: Person, spec: SendSpec) -> dict:
    return {"profile": person.traits, "event": spec.variables.get("event", {}),
            "journey": spec.variables.get("journey", {})}


def masked(row) -> dict:
    """A channel config as the API shows it: credentials replaced by dots."""
    config = {k: ("••••" if any(h in k.lower() for h in SECRET_HINTS) and v else v) for k, v in row.config.items()}
    return {"channel": row.channel, "provider": row.provider, "config": config, "updated_at": row.updated_at}
