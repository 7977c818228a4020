"""Identity rules through the profile use cases, on the real database."""

import asyncio
import secrets
from datetime import timedelta

import pytest

from kit.errors import InvalidArgument
from services.profile.calls import Call
from services.profile.service import DUPLICATE, REJECTED, STORED
from tests.support.calls import T0, call


@pytest.fixture
def ws() -> str:
    return "ws-" + secrets.token_hex(4)


async def one_profile(service, ws, identifier_type, value):
    views = await service.lookup(ws, "test", identifier_type, value)
    assert len(views) == 1, f"{identifier_type}={value} → {len(views)} profiles"
    return views[0]


def identities(view) -> set[tuple[str, str]]:
    return {(t, v) for t, v, _ in view.identities}


async def test_anonymous_visitor_becomes_known_on_identify(profile_service, ws):
    await profile_service.ingest(ws, [call("track", anonymous_id="a1", event="Product Viewed"),
                                      call("page", T0 + timedelta(minutes=1), anonymous_id="a1", name="Home")])
    await profile_service.ingest(ws, [call("identify", T0 + timedelta(minutes=5), anonymous_id="a1",
                                           user_id="u1", traits={"name": "Kim"})])
    known = await one_profile(profile_service, ws, "user_id", "u1")
    assert identities(known) == {("user_id", "u1"), ("anonymous_id", "a1")}
    assert known.row["traits"] == {"name": "Kim"}
    rows, _ = await profile_service.list_events(ws, "test", str(known.row["id"]), 50, "")
    assert [r.type for r in rows] == ["identify", "page", "track"]


async def test_anonymous_profile_with_events_merges_into_existing_known_profile(profile_service, ws):
    await profile_service.ingest(ws, [call("identify", user_id="u1", traits={"plan": "pro", "city": "Seoul"})])
    await profile_service.ingest(ws, [call("track", anonymous_id="a9", event="Cart Viewed"),
                                      call("identify", T0 + timedelta(hours=1), anonymous_id="a9",
                                           traits={"city": "Busan"})])
    anonymous = await one_profile(profile_service, ws, "anonymous_id", "a9")
    await profile_service.ingest(ws, [call("identify", T0 + timedelta(hours=2), user_id="u1", anonymous_id="a9")])

    merged = await one_profile(profile_service, ws, "anonymous_id", "a9")
    known = await one_profile(profile_service, ws, "user_id", "u1")
    assert merged.row["id"] == known.row["id"] != anonymous.row["id"]
    assert known.merged_ids == [anonymous.row["id"]]
    # trait conflicts resolve by recency: Busan was set later than Seoul
    assert known.row["traits"] == {"plan": "pro", "city": "Busan"}
    rows, _ = await profile_service.list_events(ws, "test", str(known.row["id"]), 50, "")
    assert sorted(r.type for r in rows) == ["identify", "identify", "identify", "track"]
    # the merged id still leads to the survivor
    assert (await profile_service.get_profile(ws, "test", str(anonymous.row["id"]))).row["id"] == known.row["id"]


async def test_alias_merges_the_previous_identity(profile_service, ws):
    await profile_service.ingest(ws, [call("track", anonymous_id="old-device", event="Viewed"),
                                      call("identify", user_id="u2", traits={"tier": "gold"})])
    results = await profile_service.ingest(ws, [call("alias", user_id="u2", previous_id="old-device")])
    assert results[0].outcome == STORED
    known = await one_profile(profile_service, ws, "user_id", "u2")
    assert ("anonymous_id", "old-device") in identities(known)
    assert len(known.merged_ids) == 1
    rows, _ = await profile_service.list_events(ws, "test", str(known.row["id"]), 50, "")
    assert sorted(r.type for r in rows) == ["alias", "identify", "track"]


async def test_alias_of_a_former_user_id_merges_both_known_profiles(profile_service, ws):
    await profile_service.ingest(ws, [call("identify", user_id="legacy-7", traits={"a": 1}),
                                      call("identify", user_id="new-7", traits={"b": 2})])
    await profile_service.ingest(ws, [call("alias", user_id="new-7", previous_id="legacy-7")])
    profile = await one_profile(profile_service, ws, "user_id", "new-7")
    assert profile.row["id"] == (await one_profile(profile_service, ws, "user_id", "legacy-7")).row["id"]
    assert profile.row["traits"] == {"a": 1, "b": 2}


async def test_two_user_ids_sharing_an_email_stay_apart_by_default(profile_service, ws):
    await profile_service.ingest(ws, [call("identify", user_id="mom", traits={"email": "family@example.com"}),
                                      call("identify", user_id="kid", traits={"email": "Family@Example.com "})])
    views = await profile_service.lookup(ws, "test", "email", "FAMILY@example.com")
    assert len(views) == 2
    assert {v for view in views for t, v, _ in view.identities if t == "user_id"} == {"mom", "kid"}


async def test_two_user_ids_sharing_an_email_merge_when_email_is_unique(profile_service, ws):
    await profile_service.set_identity_policy(ws, "test", ["email"])
    await profile_service.ingest(ws, [call("identify", user_id="web-1", traits={"email": "lee@example.com"})])
    await profile_service.ingest(ws, [call("identify", T0 + timedelta(days=1), user_id="app-1",
                                           traits={"email": "lee@example.com"})])
    profile = await one_profile(profile_service, ws, "email", "lee@example.com")
    assert {v for t, v, _ in profile.identities if t == "user_id"} == {"web-1", "app-1"}


async def test_policy_rejects_unknown_identifier_types(profile_service, ws):
    with pytest.raises(InvalidArgument) as err:
        await profile_service.set_identity_policy(ws, "test", ["email", "shoe_size"])
    assert err.value.field == "unique_identifiers[1]"


async def test_phone_and_email_are_normalized(profile_service, ws):
    await profile_service.ingest(ws, [call("identify", user_id="u3",
                                           traits={"email": "  Park@Example.COM", "phone": "010-9876-5432"})])
    profile = await one_profile(profile_service, ws, "phone", "+82 10 9876 5432")
    assert {("email", "park@example.com"), ("phone", "+821098765432")} <= identities(profile)
    assert (await one_profile(profile_service, ws, "phone", "01098765432")).row["id"] == profile.row["id"]
    assert (await one_profile(profile_service, ws, "email", "park@example.com")).row["id"] == profile.row["id"]


async def test_invalid_phone_rejects_only_that_call(profile_service, ws):
    results = await profile_service.ingest(ws, [
        call("identify", user_id="u4", traits={"phone": "12"}),
        call("track", user_id="u4", event="Ok")])
    assert results[0].outcome == REJECTED and results[0].field == "traits.phone"
    assert results[1].outcome == STORED
    profile = await one_profile(profile_service, ws, "user_id", "u4")
    assert not any(t == "phone" for t, _, _ in profile.identities)


async def test_resent_message_ids_are_stored_once(profile_service, ws):
    first = await profile_service.ingest(ws, [call("track", user_id="u5", event="Paid", message_id="pay-1"),
                                              call("track", user_id="u5", event="Paid", message_id="pay-1")])
    again = await profile_service.ingest(ws, [call("track", user_id="u5", event="Paid", message_id="pay-1")])
    assert [r.outcome for r in first] == [STORED, DUPLICATE]
    assert again[0].outcome == DUPLICATE
    profile = await one_profile(profile_service, ws, "user_id", "u5")
    rows, _ = await profile_service.list_events(ws, "test", str(profile.row["id"]), 50, "")
    assert len(rows) == 1


async def test_late_identify_does_not_overwrite_newer_traits(profile_service, ws):
    await profile_service.ingest(ws, [call("identify", T0 + timedelta(hours=3), user_id="u6", traits={"plan": "pro"})])
    await profile_service.ingest(ws, [call("identify", T0, user_id="u6", traits={"plan": "free", "age": 30})])
    profile = await one_profile(profile_service, ws, "user_id", "u6")
    assert profile.row["traits"] == {"plan": "pro", "age": 30}


async def test_clock_skew_is_corrected_from_sent_at(profile_service, ws):
    device_clock = T0 - timedelta(days=365)  # the phone thinks it is last year
    skewed = Call(type="track", message_id="skew-1", user_id="u7", event="Opened",
                  original_timestamp=device_clock - timedelta(seconds=30), sent_at=device_clock,
                  received_at=T0)
    await profile_service.ingest(ws, [skewed])
    profile = await one_profile(profile_service, ws, "user_id", "u7")
    rows, _ = await profile_service.list_events(ws, "test", str(profile.row["id"]), 50, "")
    assert rows[0].timestamp == T0 - timedelta(seconds=30)
    assert rows[0].call["originalTimestamp"] == skewed.original_timestamp.isoformat()


async def test_workspaces_never_see_each_other(profile_service, ws):
    await profile_service.ingest(ws, [call("identify", user_id="same-id", traits={"owner": "A"})])
    other = "ws-" + secrets.token_hex(4)
    await profile_service.ingest(other, [call("identify", user_id="same-id", traits={"owner": "B"})])
    a = await one_profile(profile_service, ws, "user_id", "same-id")
    b = await one_profile(profile_service, other, "user_id", "same-id")
    assert a.row["id"] != b.row["id"] and a.row["traits"] == {"owner": "A"}


async def test_concurrent_first_sightings_of_one_visitor_make_one_profile(profile_service, profile_replicas, ws):
    batches = [[call("track", anonymous_id="rush", event=f"E{i}"),
                call("identify", anonymous_id="rush", user_id="rusher", traits={"n": i})] for i in range(6)]
    results = await asyncio.gather(*(profile_replicas[i % 4].ingest(ws, b) for i, b in enumerate(batches)))
    assert {r.outcome for batch in results for r in batch} == {STORED}
    profile = await one_profile(profile_service, ws, "anonymous_id", "rush")
    assert profile.row["id"] == (await one_profile(profile_service, ws, "user_id", "rusher")).row["id"]
    rows, _ = await profile_service.list_events(ws, "test", str(profile.row["id"]), 50, "")
    assert len(rows) == 12


async def test_concurrent_merges_of_crossing_identities_converge(profile_service, profile_replicas, ws):
    await profile_service.set_identity_policy(ws, "test", ["email", "phone"])
    batches = [[call("identify", user_id=f"x{i}", traits={"email": "one@example.com", "phone": "01055556666"})]
               for i in range(4)]
    await asyncio.gather(*(replica.ingest(ws, b) for replica, b in zip(profile_replicas, batches, strict=True)))
    profile = await one_profile(profile_service, ws, "email", "one@example.com")
    assert (await one_profile(profile_service, ws, "phone", "01055556666")).row["id"] == profile.row["id"]
    assert {v for t, v, _ in profile.identities if t == "user_id"} == {"x0", "x1", "x2", "x3"}
