from pydantic import SecretStr, field_validator

from kit.settings import ServiceSettings, secret_or_generated
from services.dispatch.egress import Allowance


class DispatchSettings(ServiceSettings):
    grpc_port: int = 50053
    profile_addr: str = "localhost:50051"  # contact and consent come from the profile service
    journey_addr: str = "127.0.0.1:50054"  # asked whether a live journey uses a template before it is deleted
    # Provider calls: deadline of one try, and tries for a retryable failure (backoff between).
    provider_timeout_seconds: float = 10.0
    provider_attempts: int = 3
    # Default provider rate limit (messages per second, burst) when a channel config sets none.
    provider_rate_per_second: float = 100.0
    provider_burst: int = 100
    # A send found `sending` for longer than this was cut off by a crash: it is reported
    # as failed (unknown outcome), never sent again.
    sending_lease_seconds: float = 120.0
    # At SIGTERM, sends already at a provider get this long to finish; then they are recorded
    # failed (unknown_outcome), never left `sending`. Below the gRPC grace (10 s) and the
    # gateway's, so their callers still get the outcome.
    drain_seconds: float = 6.0
    # How often each replica looks for deferred sends that are due.
    deferred_poll_seconds: float = 1.0
    # nudge.events.v1, read for erasures (what dispatch holds of an erased person is forgotten).
    consumer_group: str = "dispatch"
    consumer_batch: int = 500
    consumer_reclaim_idle_ms: int = 30_000
    # Where tracked links, the open pixel and unsubscribe links point: the gateway, as the
    # people who get the messages reach it (an https URL in production: mail clients only
    # POST a one-click unsubscribe to https).
    tracking_base_url: str = "http://localhost:8080"
    # Signs those links' tokens; unset in the embedded mode → a random secret kept in data_dir.
    link_secret: SecretStr | None = None
    # The operator's exceptions to the egress guard (egress.py): internal addresses or networks,
    # each with an optional port, that sends may reach ("10.1.0.0/16, 127.0.0.1:2525, [::1]:8025").
    # Empty: only public addresses. Never a workspace's to set.
    egress_allow: str = ""

    @field_validator("egress_allow")
    @classmethod
    def _parses(cls, value: str) -> str:
        Allowance.parse(value)  # a typo fails the start, not every send
        return value

    def link_key(self) -> bytes:
        return secret_or_generated(self.link_secret, self.data_dir, "link-secret")
