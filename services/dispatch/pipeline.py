"""The decisions of one send and its provider call, in named steps. Mixed into
`DispatchService` (service.py), which claims the delivery row, runs this and records the outcome.

`_decide` is shared by real and simulated sends. For each channel in order:
`_route` (its provider and the person's address) → consent → `_waiting` (quiet hours, the
night rule, Kakao's window) → `_reserve` (fatigue) → `_render_and_carry` (the render, then the
provider call or the simulator's "would be sent"). What held a channel back is kept
(`_Held`) and answers when no channel took the send.

`_deliver` is the real carrier: `_take_token` (rate limit) → consent and timing once more
(`_consent_now`, `_not_now`) → in-app stored with its outcome, or `_mark_sending` then
`_call_provider` (timeout, retries, unknown outcomes).
"""

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime

import httpx

from kit.clock import Clock
from services.dispatch import fatigue, links, ratelimit, templates, timing
from services.dispatch.channels import EMAIL, INAPP, PUSH, Content, Outgoing, ProviderError
from services.dispatch.links import Links
from services.dispatch.outcomes import STRICT, Cleared, Outcome, SendSpec, Setup, TakenOver
from services.dispatch.profiles import Person
from services.dispatch.providers import NOT_WRITTEN
from services.dispatch.providers.registry import adapter_for
from services.dispatch.reach import Address, ConsentCheck, address_of, check_consent, night_consent
from services.dispatch.repository import DispatchRepository
from services.dispatch.tokens import ADVERTISING


@dataclass(frozen=True)
class Route:
    """A channel of the send with its provider and the person's address on it."""
    channel: str
    provider: str
    config: dict
    address: Address


class _Held:
    """What held the channels tried so far back: the first suppression, the earliest deferral."""

    def __init__(self) -> None:
        self.suppressed: Outcome | None = None
        self.deferred: Outcome | None = None

    def suppress(self, outcome: Outcome) -> None:
        self.suppressed = self.suppressed or outcome

    def defer(self, outcome: Outcome) -> None:
        if self.deferred is None or outcome.deferred_until < self.deferred.deferred_until:
            self.deferred = outcome

    def outcome(self, attempts: list[dict]) -> Outcome:
        """No channel took the send: a channel that may send later beats one that may not
        (suppressed) or could not (failed)."""
        if self.deferred is not None:
            return self.deferred
        if self.suppressed is not None:
            return self.suppressed
        return Outcome("failed", reason="; ".join(_labelled(a["channel"], a["reason"]) for a in attempts)
                       or "no channel could carry it", rule="no_channel")


class Pipeline:
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

    # -- the decisions ----------------------------------------------------------------
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
        now, held = clock.now(), _Held()
        for channel in spec.channels:
            attempt = _recorder(attempts, channel, clock)
            route = _route(channel, setup.configs, person, attempt)
            if route is None:
                continue
            consent = check_consent(person, channel, spec.advertising, spec.transactional)
            if not consent.allowed:
                held.suppress(_refused(route, consent, attempt))
                continue
            waiting = self._waiting(setup.policy, route, spec, person, now, consent.evidence, attempt)
            if waiting is not None:
                if spec.order == STRICT:
                    return waiting
                held.defer(waiting)
                continue
            decision = await self._reserve(workspace_id, spec, person, setup, channel, now, send_id, simulation_id)
            if not decision.allowed:
                held.suppress(_over_limit(route, decision, consent.evidence, attempt))
                continue
            outcome = await self._render_and_carry(spec, person, setup, route, consent.evidence, tracked, carry,
                                                   decision.reservation, attempt)
            if outcome is not None:
                return outcome
        return held.outcome(attempts)

    def _waiting(self, policy: dict, route: Route, spec: SendSpec, person: Person, now: datetime, evidence: dict,
                 attempt) -> Outcome | None:
        """The deferral when quiet hours, the night rule or Kakao's window keep the channel
        from sending now."""
        deferral = self._deferral(policy, route.channel, spec, person, now)
        if deferral is None:
            return None
        return _deferred(deferral, route.channel, route.provider, evidence, attempt)

    def _deferral(self, policy: dict, channel: str, spec: SendSpec, person: Person, now: datetime):
        quiet = policy.get("quiet_hours") or {}
        return timing.next_allowed(
            now, channel=channel, advertising=spec.advertising, profile_zone=person.zone,
            quiet_hours=(quiet["start"], quiet["end"]) if quiet else None,
            night_consent=night_consent(person), quiet_hours_informational=quiet.get("informational", False),
            night_rule_exempt=timing.exempt_from_night_rule(policy))

    async def _reserve(self, workspace_id: str, spec: SendSpec, person: Person, setup: Setup, channel: str,
                       now: datetime, send_id: str, simulation_id: str | None) -> fatigue.Decision:
        """Fatigue: every limit of the policy decided, and the send counted, in one step."""
        return await fatigue.decide(
            self.redis, setup.limits,
            workspace_id=workspace_id, profile_id=spec.profile_id, channel=channel, template_id=spec.template_id,
            journey_id=spec.journey_id or None, transactional=spec.transactional, now=now, zone=person.zone,
            send_id=send_id, simulation_id=simulation_id)

    async def _render_and_carry(self, spec: SendSpec, person: Person, setup: Setup, route: Route, evidence: dict,
                                tracked: Links, carry, reservation, attempt) -> Outcome | None:
        """The message rendered for the channel and handed to `carry`; None: try the next channel."""
        outcome = None
        try:
            content = _render(spec, person, setup, route, tracked, attempt)
            if content is None:
                return None
            outcome = await carry(Cleared(route.channel, route.provider, route.config, route.address, content,
                                          evidence), attempt)
        finally:
            # A message not sent, for whatever reason, does not count against the person.
            if outcome is None or outcome.status not in ("sent", "delivered"):
                await fatigue.release(self.redis, reservation)
        return outcome

    # -- the provider call ------------------------------------------------------------
    async def _deliver(self, workspace_id: str, row, owner: str, spec: SendSpec, policy: dict, cleared: Cleared,
                       attempt, urls: list[str]) -> Outcome | None:
        """Rate limit; consent and timing checked once more, right before the call (an
        opt-out that committed meanwhile, a wait that ran into the night); `sending`
        committed with the tracked links' `urls`; then the provider. None: try the next channel.
        In-app has no provider: its message is stored with the outcome, in one transaction."""
        await self._take_token(workspace_id, cleared)
        fresh, recheck, withdrawn = await self._consent_now(workspace_id, spec, cleared.channel, cleared.provider,
                                                            attempt)
        if withdrawn:
            return withdrawn
        if held := self._not_now(policy, spec, cleared, fresh, recheck.evidence, attempt):
            return held
        if cleared.channel == INAPP:
            # No provider and no `sending` state: the message is stored with the outcome (`_run`).
            attempt("sent", "", cleared.provider)
            return Outcome("sent", cleared.channel, cleared.provider, provider_message_id=row.id,
                           consent=recheck.evidence, inapp=cleared.content, links=list(urls))
        await self._mark_sending(workspace_id, row, owner, cleared, urls)
        return await self._call_provider(workspace_id, row, spec, cleared, recheck, attempt)

    async def _take_token(self, workspace_id: str, cleared: Cleared) -> None:
        """The provider's rate limit, shared by every replica: waits for a token, never drops."""
        config = cleared.config
        await ratelimit.wait_for_token(
            self.redis, f"nudge:dispatch:rate:{workspace_id}:{cleared.provider}",
            float(config.get("rate_per_second", self.settings.provider_rate_per_second)),
            int(config.get("burst", self.settings.provider_burst)), self.clock)

    def _not_now(self, policy: dict, spec: SendSpec, cleared: Cleared, fresh: Person, evidence: dict,
                 attempt) -> Outcome | None:
        """A deferral when the wait ran into a time the channel may not send, or the process is stopping."""
        channel, provider = cleared.channel, cleared.provider
        if deferral := self._deferral(policy, channel, spec, fresh, self.clock.now()):
            return _deferred(deferral, channel, provider, evidence, attempt)
        if self._stopping and channel != INAPP:
            # Shutting down: a provider call started now could be cut off; another replica makes it.
            attempt("deferred", "the dispatch process is stopping", provider)
            return Outcome("deferred", channel, provider, reason="the dispatch process stopped before the provider "
                           "call; another replica sends it", rule="retry", deferred_until=self.clock.now(),
                           consent=evidence)
        return None

    async def _mark_sending(self, workspace_id: str, row, owner: str, cleared: Cleared, urls: list[str]) -> None:
        """`sending` committed before the call, with the tracked links' originals: a crash
        during the call is then an unknown outcome, never a second send."""
        async with self.sessions() as session, session.begin():
            if not await DispatchRepository(session).mark_sending(workspace_id, row.id, owner, cleared.channel,
                                                                  cleared.provider, self.clock.now(), links=urls):
                raise TakenOver(row.id)

    async def _call_provider(self, workspace_id: str, row, spec: SendSpec, cleared: Cleared, recheck: ConsentCheck,
                             attempt) -> Outcome | None:
        """The provider call with a timeout and retries with backoff. A try that may have
        reached a provider without an idempotency key is not repeated, and once one may
        have, no other channel is tried. None: try the next channel."""
        channel, provider, config = cleared.channel, cleared.provider, cleared.config
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
                ambiguous = _ambiguous(err)
                uncertain = uncertain or ambiguous
                if ambiguous and not (adapter.idempotent or config.get("resend_on_timeout")):
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


def _recorder(attempts: list[dict], channel: str, clock: Clock):
    """`attempt(outcome, reason, provider)`: one try of `channel` in the send's `attempts`."""
    def attempt(outcome: str, reason: str, provider: str = "") -> None:
        attempts.append({"channel": channel, "provider": provider, "outcome": outcome, "reason": reason,
                         "at": clock.now().isoformat()})
    return attempt


def _route(channel: str, configs: dict, person: Person, attempt) -> Route | None:
    """The channel's provider and the person's address on it; None (and why, in `attempt`)
    when there is no provider, no address, or the provider cannot reach the device."""
    config_row = configs.get(channel)
    if config_row is None and channel != INAPP:
        attempt("failed", f"no provider configured for {channel}")
        return None
    provider = config_row.provider if config_row else "inapp"
    config = config_row.config if config_row else {}
    address = address_of(person, channel, config)
    if address is None:
        attempt("unreachable", f"the profile has no address for {channel}", provider)
        return None
    if channel == PUSH and provider == "apns" and address.platform != "ios":
        # FCM reaches both platforms; APNs only Apple devices.
        attempt("unreachable", f"a {address.platform} device cannot be reached through APNs", provider)
        return None
    return Route(channel, provider, config, address)


def _refused(route: Route, consent: ConsentCheck, attempt) -> Outcome:
    attempt("suppressed", consent.reason, route.provider)
    return Outcome("suppressed", route.channel, route.provider, reason=consent.reason, rule=consent.rule,
                   consent=consent.evidence)


def _over_limit(route: Route, decision: fatigue.Decision, evidence: dict, attempt) -> Outcome:
    reason = f"fatigue limit: {decision.rule}"
    attempt("suppressed", reason, route.provider)
    return Outcome("suppressed", route.channel, route.provider, reason=reason, rule=f"fatigue:{decision.rule}",
                   next_allowed_at=decision.next_allowed_at, consent=evidence)


def _render(spec: SendSpec, person: Person, setup: Setup, route: Route, tracked: Links, attempt) -> Content | None:
    """The channel's content of the template for this person, with the policy's sender name
    and opt-out, its links tracked; None (and why, in `attempt`) when the template fails."""
    policy, channel = setup.policy, route.channel
    tracking = tracked.tracking(links.utm_for(policy.get("utm") or {}, channel, spec.journey_id, spec.node_id),
                                unsubscribe=_unsubscribe_category(channel, spec))
    try:
        return templates.render(channel, setup.template.channels[channel], _variables(person, spec),
                                advertising=spec.advertising, sender_name=policy.get("sender_name", ""),
                                opt_out={"phone": policy.get("opt_out_phone", ""),
                                         "url": policy.get("unsubscribe_url", ""),
                                         "app": policy.get("opt_out_app", "")},
                                tracking=tracking)
    except templates.RenderError as err:
        attempt("failed", f"template: {err}", route.provider)
        return None


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


def _deferred(deferral, channel: str, provider: str, evidence: dict, attempt) -> Outcome:
    """A channel that may not send now (quiet hours, the night rule, Kakao's window) waits until it may."""
    attempt("deferred", f"{deferral.reason} until {deferral.until.isoformat()}", provider)
    return Outcome("deferred", channel, provider, reason=f"deferred by {deferral.reason} until "
                   f"{deferral.until.isoformat()}", rule=deferral.reason, deferred_until=deferral.until,
                   consent=evidence)


def _ambiguous(err: Exception) -> bool:
    """Whether a failed try may have reached the provider: our own deadline, a transport
    failure past the connect, or what the adapter says."""
    if isinstance(err, ProviderError):
        return err.ambiguous
    if isinstance(err, httpx.TransportError):
        return not isinstance(err, NOT_WRITTEN)
    return isinstance(err, TimeoutError)


def _labelled(channel: str, reason: str) -> str:
    """A channel's failure in the send's reason, prefixed once: a provider named like its
    channel (webhook) already says which it is."""
    return reason if reason.startswith(f"{channel}:") else f"{channel}: {reason}"


def _variables(person: Person, spec: SendSpec) -> dict:
    return {"profile": person.traits, "event": spec.variables.get("event", {}),
            "journey": spec.variables.get("journey", {})}
