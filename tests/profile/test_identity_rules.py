"""The pure identity rules, without a database."""

from datetime import datetime, timedelta, timezone

import pytest

from kit.errors import InvalidArgument
from services.profile import identity
from services.profile.calls import Call, corrected_timestamp

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_known_profile_survives_an_anonymous_one_even_if_younger():
    anonymous = identity.MergeCandidate("a", has_user_id=False, created_at=T0)
    known = identity.MergeCandidate("k", has_user_id=True, created_at=T0 + timedelta(days=9))
    assert identity.choose_survivor(anonymous, known) == ("k", "a")
    older = identity.MergeCandidate("o", has_user_id=True, created_at=T0)
    assert identity.choose_survivor(known, older) == ("o", "k")


def test_trait_merge_keeps_the_most_recent_value_per_trait():
    a = ({"city": "Seoul", "plan": "pro"}, {"city": identity.stamp(T0), "plan": identity.stamp(T0)})
    b = ({"city": "Busan", "plan": "free"},
         {"city": identity.stamp(T0 + timedelta(1)), "plan": identity.stamp(T0 - timedelta(1))})
    traits, _ = identity.merge_traits(a, b)
    assert traits == {"city": "Busan", "plan": "pro"}


def test_consent_change_older_than_the_held_one_is_ignored():
    consent = {}
    assert identity.apply_consent(consent, "advertising", True, T0, "signup")
    assert not identity.apply_consent(consent, "advertising", False, T0 - timedelta(hours=1), "late import")
    assert consent["advertising"]["granted"] is True


@pytest.mark.parametrize("purpose", ["ads:sms", "ads:kakao", "night_advertising", "channel:sms"])
def test_known_consent_purposes_are_accepted(purpose):
    assert identity.validate_consent_purpose(purpose, "p") == purpose


@pytest.mark.parametrize("purpose", ["marketing", "advertising", "ads:pigeon", "ads"])
def test_removed_and_unknown_purposes_are_refused(purpose):
    with pytest.raises(InvalidArgument) as err:
        identity.validate_consent_purpose(purpose, "changes[0].purpose")
    assert err.value.field == "changes[0].purpose"


def test_advertising_stands_for_advertising_on_every_channel():
    assert identity.expand_purpose("advertising") == [f"ads:{c}" for c in identity.CHANNELS]
    assert identity.expand_purpose("ads:sms") == ["ads:sms"]


def test_unknown_consent_purpose_names_the_field():
    with pytest.raises(InvalidArgument) as err:
        identity.validate_consent_purpose("channel:pigeon", "changes[0].purpose")
    assert err.value.field == "changes[0].purpose"


def test_identifiers_come_from_traits_context_and_device():
    call = Call(type="track", message_id="m", received_at=T0, anonymous_id="a",
                context={"traits": {"email": "X@Y.io"}, "device": {"token": "fcm-123"}})
    ids = identity.identifiers_of(call, "KR")
    assert ids.pairs() == [("anonymous_id", "a"), ("email", "x@y.io"), ("device_token", "fcm-123")]


def test_track_traits_are_not_identity_traits():
    call = Call(type="track", message_id="m", received_at=T0, user_id="u", traits={"email": "not-an-identifier"})
    assert identity.identifiers_of(call, "KR").pairs() == [("user_id", "u")]


def test_skew_correction_without_sent_at_keeps_the_client_time():
    assert corrected_timestamp(T0, None, T0 + timedelta(hours=5)) == T0
    assert corrected_timestamp(None, None, T0) == T0
