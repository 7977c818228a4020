"""What a workspace configures for its sends: templates (deleted only once the journey service
confirms no live journey uses one), channel configs (credentials masked in answers) and the
send policy (fatigue, quiet hours, the night rule, opt-outs, UTM). Mixed into
`DispatchService` (service.py)."""

from kit.errors import FailedPrecondition, InvalidArgument, NotFound
from kit.transport import json_object_argument
from services.dispatch import fatigue, links, templates, timing
from services.dispatch import policy as policies
from services.dispatch.channels import CHANNELS, FRIENDTALK, INAPP, ConfigError, masked_config
from services.dispatch.models import audit_log
from services.dispatch.providers import delivery_options
from services.dispatch.providers.registry import adapter_for
from services.dispatch.repository import DispatchRepository

# The policy's texts and their longest: a sender name and a phone number go in every advertising SMS.
POLICY_TEXTS = {"sender_name": 100, "opt_out_phone": 40, "opt_out_app": 200, "unsubscribe_url": 2_000}
MAX_TEMPLATE_NAME = 200


class Management:
    async def put_template(self, workspace_id: str, actor: str, template_id: str, name: str,
                           channels_json: str) -> dict:
        if not template_id or len(template_id) > 100:
            raise InvalidArgument("id: expected 1 to 100 characters", field="id")
        if len(name) > MAX_TEMPLATE_NAME:
            raise InvalidArgument(f"name: at most {MAX_TEMPLATE_NAME} characters", field="name")
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
            row = await DispatchRepository(session).add_template_version(
                workspace_id, template_id, name or template_id, checked, self.clock.now())
            await audit_log.record(session, workspace_id, actor, "template.save", template_id,
                                   detail={"version": row.version})
        return row

    async def template(self, workspace_id: str, template_id: str, version: int = 0):
        async with self.sessions() as session:
            row = await DispatchRepository(session).template(workspace_id, template_id, version or None)
        if row is None:
            raise NotFound(f"template {template_id!r} not found", field="id")
        return row

    async def delete_template(self, workspace_id: str, actor: str, template_id: str) -> None:
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
            await audit_log.record(session, workspace_id, actor, "template.delete", template_id)

    async def list_templates(self, workspace_id: str) -> list:
        async with self.sessions() as session:
            return await DispatchRepository(session).latest_templates(workspace_id)

    async def put_channel_config(self, workspace_id: str, actor: str, channel: str, provider: str, config_json: str):
        if channel not in CHANNELS or channel == INAPP:
            raise InvalidArgument(f"channel: expected one of {', '.join(c for c in CHANNELS if c != INAPP)}",
                                  field="channel")
        try:
            adapter = adapter_for(channel, provider)
            config = delivery_options(adapter.check_config(json_object_argument(config_json, "config")))
            await adapter.check_target(config, self.http.guard)  # the addresses, as each send will check them
        except ConfigError as err:
            raise InvalidArgument(str(err), field=err.field) from None
        async with self.sessions() as session, session.begin():
            row = await DispatchRepository(session).put_channel_config(workspace_id, channel, provider, config,
                                                                       self.clock.now(), self.vault)
            # the fields set, never their values: credentials stay out of the log
            await audit_log.record(session, workspace_id, actor, "channel.update", channel,
                                   detail={"provider": provider, "fields": sorted(config)})
        return masked(row)

    async def channel_configs(self, workspace_id: str) -> list:
        async with self.sessions() as session:
            return [masked(r) for r in (await DispatchRepository(session).channel_configs(workspace_id)).values()]

    async def policy(self, workspace_id: str) -> dict:
        async with self.sessions() as session:
            return await DispatchRepository(session).policy(workspace_id) or {}

    async def set_policy(self, workspace_id: str, actor: str, policy_json: str, merge_patch: bool = False) -> dict:
        """The whole policy, or with `merge_patch` an RFC 7396 patch of the stored one (read,
        patched, checked and written in one transaction, so concurrent patches both apply)."""
        given = json_object_argument(policy_json, "policy")
        async with self.sessions() as session, session.begin():
            repo = DispatchRepository(session)
            stored = await repo.policy(workspace_id, lock=True)  # a PUT and a PATCH at once: one after the other
            policy = policies.merge_patch(stored or {}, given) if merge_patch else given
            self._check_policy(policy)
            await repo.set_policy(workspace_id, policy, self.clock.now())
            await audit_log.record(session, workspace_id, actor, "dispatch_policy.update",
                                   detail={"merge_patch": merge_patch, "fields": sorted(given)})
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
        for name, longest in POLICY_TEXTS.items():
            if not isinstance(policy.get(name, ""), str) or len(policy.get(name, "")) > longest:
                raise InvalidArgument(f"policy.{name}: expected a string of at most {longest} characters",
                                      field=f"policy.{name}")
        links.check_utm(policy.get("utm", {}))


def masked(row) -> dict:
    """A channel config as the API shows it: credentials replaced by dots."""
    return {"channel": row.channel, "provider": row.provider, "config": masked_config(row.config),
            "updated_at": row.updated_at}
