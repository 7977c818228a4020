"""The person a send is for, read from the profile service: contacts, traits, consent; and
the consent an unsubscribe link withdraws."""

from dataclasses import dataclass, field
from datetime import datetime

import grpc
import orjson

from kit.grpc_channels import channel
from kit.transport import service_actor
from kit.zones import zone_of
from nudge.common.v1 import common_pb2
from nudge.profile.v1 import profile_pb2, profile_pb2_grpc

ACTOR = service_actor("dispatch")  # how the profile service's access log names these calls


@dataclass
class Person:
    id: str
    traits: dict
    identities: dict[str, list[str]] = field(default_factory=dict)   # type → values, oldest first
    consent: dict[str, dict] = field(default_factory=dict)            # purpose → {granted, at, source}

    @property
    def zone(self):
        return zone_of(self.traits)


class ProfileDirectory:
    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self.channel = channel(address)
        self.client = profile_pb2_grpc.ProfileServiceStub(self.channel)
        self.timeout = timeout

    async def get(self, workspace_id: str, profile_id: str) -> Person | None:
        """None when there is no such profile (erased, or never existed)."""
        try:
            reply = await self.client.GetProfile(profile_pb2.GetProfileRequest(
                context=common_pb2.RequestContext(workspace_id=workspace_id, actor=ACTOR), profile_id=profile_id),
                timeout=self.timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        identities: dict[str, list[str]] = {}
        for identity in sorted(reply.identities, key=lambda i: i.first_seen.ToDatetime()):
            identities.setdefault(identity.type, []).append(identity.value)
        consent = {c.purpose: {"granted": c.granted, "at": _iso(c.at.ToDatetime()), "source": c.source}
                   for c in reply.consent}
        return Person(reply.id, orjson.loads(reply.traits_json or "{}"), identities, consent)

    async def withdraw(self, workspace_id: str, profile_id: str, purpose: str, source: str) -> None:
        """Withdraws a consent, unless it is withdrawn already (a second unsubscribe changes
        nothing) or the profile is gone."""
        person = await self.get(workspace_id, profile_id)
        if person is None or (purpose in person.consent and not person.consent[purpose]["granted"]):
            return
        # No `at`: stamped by the profile service's clock, like the other consent records it holds.
        await self.client.UpdateConsent(profile_pb2.UpdateConsentRequest(
            context=common_pb2.RequestContext(workspace_id=workspace_id, actor=ACTOR), profile_id=profile_id,
            changes=[profile_pb2.ConsentChange(purpose=purpose, granted=False, source=source)]),
            timeout=self.timeout)

    async def close(self) -> None:
        await self.channel.close()


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z" if moment.tzinfo is None else moment.isoformat()
