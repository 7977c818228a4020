"""What an erasure leaves in the profile service: blind-indexed tombstones of the person's
identifiers, so a replay of their calls is dropped rather than stored as a new person."""

import secrets
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from kit.blind import blind_index
from services.profile.models import erased_identifiers
from services.profile.service import ERASED, STORED
from tests.support.calls import T0, call


@pytest.fixture
def ws() -> str:
    return "ws-" + secrets.token_hex(4)


async def _erased_person(service, ws: str) -> str:
    """Kim, known by userId, two devices (one merged in), email and phone; then erased."""
    await service.ingest(ws, [call("track", anonymous_id="laptop", event="Price Checked")])
    await service.ingest(ws, [call("identify", T0 + timedelta(minutes=1), user_id="kim", anonymous_id="phone-app",
                                   traits={"email": "Kim@Example.com", "phone": "010-2345-6789"})])
    await service.ingest(ws, [call("identify", T0 + timedelta(minutes=2), user_id="kim", anonymous_id="laptop")])
    (view,) = await service.lookup(ws, "test", "user_id", "kim")
    assert len(view.merged_ids) == 1  # the laptop's profile was merged in
    await service.delete(ws, "test", str(view.row["id"]))
    return str(view.row["id"])


async def _outcomes(service, ws: str, calls) -> list[str]:
    return [r.outcome for r in await service.ingest(ws, calls)]


async def test_a_replayed_call_naming_any_identifier_of_an_erased_person_is_dropped(profile_service, ws):
    await _erased_person(profile_service, ws)
    before = T0 + timedelta(days=1)  # made before the erasure (now), sent late
    replays = [call("track", before, user_id="kim", event="Signed Up"),
               call("page", before, anonymous_id="laptop", name="Home"),  # the merged profile's device
               call("identify", before, user_id="new-id", traits={"email": "kim@example.com"}),
               call("track", before, user_id="new-id-2", context={"traits": {"phone": "+82 10-2345-6789"}}),
               call("alias", before, user_id="new-id-3", previous_id="phone-app")]
    assert await _outcomes(profile_service, ws, replays) == [ERASED] * len(replays)
    for identifier_type, value in [("user_id", "kim"), ("user_id", "new-id"), ("user_id", "new-id-3"),
                                   ("anonymous_id", "laptop"), ("email", "kim@example.com"),
                                   ("phone", "+821023456789")]:
        assert await profile_service.lookup(ws, "test", identifier_type, value) == [], (identifier_type, value)


async def test_a_replayed_body_with_its_old_sent_at_is_still_a_replay(profile_service, ws):
    await _erased_person(profile_service, ws)
    # The body as the device sent it then: the clock-skew correction (receivedAt − (sentAt −
    # timestamp)) dates it now, but the device dated it before the erasure.
    replay = call("track", datetime.now(timezone.utc) + timedelta(seconds=1), user_id="kim", event="Signed Up")
    replay.original_timestamp, replay.sent_at = T0, T0 + timedelta(milliseconds=1)
    assert replay.timestamp > T0 + timedelta(days=30)
    assert await _outcomes(profile_service, ws, [replay]) == [ERASED]


async def test_calls_made_after_the_erasure_are_a_new_person(profile_service, ws):
    first = await _erased_person(profile_service, ws)
    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert await _outcomes(profile_service, ws, [
        call("identify", later, user_id="kim", traits={"email": "kim@example.com"}),
        call("track", T0, user_id="kim", event="Old Event")]) == [STORED, ERASED]  # a replay still is one
    (again,) = await profile_service.lookup(ws, "test", "user_id", "kim")
    assert str(again.row["id"]) != first
    rows, _ = await profile_service.list_events(ws, "test", str(again.row["id"]), 50, "")
    assert [r.type for r in rows] == ["identify"]


async def test_the_tombstones_hold_keyed_digests_not_the_identifiers(profile_service, profile_settings, ws):
    await _erased_person(profile_service, ws)
    async with profile_service.sessions() as session:
        digests = set(await session.scalars(select(erased_identifiers.c.digest).where(
            erased_identifiers.c.workspace_id == ws)))
    key = profile_settings.blind_key()
    assert digests == {blind_index(key, t, v) for t, v in [
        ("user_id", "kim"), ("anonymous_id", "phone-app"), ("anonymous_id", "laptop"),
        ("email", "kim@example.com"), ("phone", "+821023456789")]}
    assert all(len(d) == 32 and b"kim" not in d.lower() for d in digests)
    assert blind_index(b"another key", "user_id", "kim") not in digests  # guessing needs the key
