"""When a message may go out: the Korean night rule at its exact edges, Kakao's advertising
window, quiet hours in the person's zone (wrapping midnight), and a property: the moment
returned is allowed by every rule and no earlier minute is."""

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from kit.errors import InvalidArgument
from services.dispatch import timing
from services.dispatch.channels import ALIMTALK, CHANNELS, EMAIL, FRIENDTALK, INAPP, PUSH, SMS

KST = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")


def kst(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, second, tzinfo=KST)


def ad(now: datetime, channel: str = SMS, **options):
    return timing.next_allowed(now, channel=channel, advertising=True, **options)


@pytest.mark.parametrize("moment, deferred", [
    (kst(10, 20, 59, 59), False), (kst(10, 21), True), (kst(11, 7, 59, 59), True), (kst(11, 8), False)])
def test_advertising_at_the_night_rule_edges(moment, deferred):
    result = ad(moment)
    if deferred:
        assert result == timing.Deferral(kst(11, 8), "night_rule")
    else:
        assert result is None


def test_advertising_at_half_past_ten_waits_for_eight_unless_night_consent():
    assert ad(kst(10, 22, 30)) == timing.Deferral(kst(11, 8), "night_rule")
    assert ad(kst(10, 22, 30), night_consent=True) is None


def test_night_rule_is_korean_time_whatever_the_persons_zone():
    # 09:30 in New York is 23:30 in Seoul: still night for the law.
    now = datetime(2025, 3, 10, 9, 30, tzinfo=NEW_YORK)
    assert ad(now, profile_zone=NEW_YORK) == timing.Deferral(kst(11, 8), "night_rule")
    assert ad(now, profile_zone="America/New_York").until.tzinfo is NEW_YORK  # given back in the caller's zone


@pytest.mark.parametrize("channel", [c for c in CHANNELS if c != ALIMTALK])
def test_informational_messages_are_never_deferred_by_the_night_rule(channel):
    for hour in (21, 23, 0, 3, 7):
        assert timing.next_allowed(kst(10, hour), channel=channel, advertising=False) is None


@pytest.mark.parametrize("moment, expected", [
    (kst(10, 19, 59, 59), None),
    (kst(10, 20), timing.Deferral(kst(11, 8), "kakao_ad_window")),
    (kst(10, 20, 30), timing.Deferral(kst(11, 8), "kakao_ad_window")),
    (kst(11, 7, 59, 59), timing.Deferral(kst(11, 8), "kakao_ad_window")),
    (kst(11, 8), None)])
def test_friendtalk_advertising_only_between_eight_and_eight(moment, expected):
    # Night consent does not lift Kakao's own window.
    assert ad(moment, FRIENDTALK, night_consent=True) == expected


def test_friendtalk_at_night_without_consent_names_the_law_first():
    assert ad(kst(10, 22), FRIENDTALK) == timing.Deferral(kst(11, 8), "night_rule")
    assert timing.next_allowed(kst(10, 22), channel=FRIENDTALK, advertising=False) is None


def test_quiet_hours_wrap_midnight_in_the_persons_zone():
    quiet = ("22:00", "07:30")
    in_ny = lambda *a: datetime(2025, 6, *a, tzinfo=NEW_YORK)  # noqa: E731
    # 23:15 in New York (12:15 next day in Seoul: the night rule allows it) → 07:30 New York.
    assert ad(in_ny(10, 23, 15), PUSH, profile_zone=NEW_YORK, quiet_hours=quiet) == \
        timing.Deferral(in_ny(11, 7, 30), "quiet_hours")
    assert ad(in_ny(11, 2), PUSH, profile_zone=NEW_YORK, quiet_hours=quiet) == \
        timing.Deferral(in_ny(11, 7, 30), "quiet_hours")
    assert ad(in_ny(11, 7, 30), PUSH, profile_zone=NEW_YORK, quiet_hours=quiet) is None
    assert ad(in_ny(10, 21, 59), PUSH, profile_zone=NEW_YORK, quiet_hours=quiet) is None
    # Informational: only if the workspace says quiet hours apply to it.
    info = dict(channel=EMAIL, advertising=False, profile_zone=NEW_YORK, quiet_hours=quiet)
    assert timing.next_allowed(in_ny(10, 23, 15), **info) is None
    assert timing.next_allowed(in_ny(10, 23, 15), **info, quiet_hours_informational=True) == \
        timing.Deferral(in_ny(11, 7, 30), "quiet_hours")


def test_rules_combine_to_the_latest_end():
    # Night rule ends 08:00 KST, quiet hours (Seoul) 22:00–09:00: the later one decides.
    assert ad(kst(10, 22, 30), INAPP, quiet_hours=("22:00", "09:00")) == timing.Deferral(kst(11, 9), "quiet_hours")
    # Quiet hours in the afternoon push an 07:00 message past the night rule and then on.
    assert ad(kst(11, 7), INAPP, quiet_hours=("08:00", "12:00")) == timing.Deferral(kst(11, 12), "quiet_hours")


def test_quiet_hours_across_a_dst_change():
    # New York springs forward at 02:00 on 2025-03-09; quiet hours end at 02:30, a time
    # that does not exist that night: the first moment after it is 03:00 EDT.
    now = datetime(2025, 3, 9, 1, 0, tzinfo=NEW_YORK)
    result = timing.next_allowed(now, channel=EMAIL, advertising=False, profile_zone=NEW_YORK,
                                 quiet_hours=("23:00", "02:30"), quiet_hours_informational=True)
    assert result.until == datetime(2025, 3, 9, 7, 0, tzinfo=timezone.utc)


def test_alimtalk_advertising_is_refused():
    with pytest.raises(InvalidArgument, match="AlimTalk carries informational messages only"):
        timing.check_channel_kind(ALIMTALK, True)
    with pytest.raises(InvalidArgument):
        ad(kst(10, 12), ALIMTALK)
    timing.check_channel_kind(ALIMTALK, False)
    timing.check_channel_kind(FRIENDTALK, True)


def test_rules_that_leave_no_moment_are_reported_not_looped():
    with pytest.raises(timing.NeverAllowed):
        ad(kst(10, 12), quiet_hours=("08:00", "21:00"))


def test_quiet_hours_policy_is_checked_with_its_field():
    assert timing.parse_quiet_hours({"start": "22:00", "end": "08:00"}) == {
        "start": "22:00", "end": "08:00", "informational": False}
    for bad, field in [({"start": "25:00", "end": "08:00"}, "p.start"), ({"start": "22:00"}, "p.end"),
                       ({"start": "9:00", "end": "08:00"}, "p.start"), ({"start": "08:00", "end": "08:00"}, "p.end"),
                       ({"start": "22:00", "end": "08:00", "zone": "UTC"}, "p.zone"),
                       ({"start": "22:00", "end": "08:00", "informational": "yes"}, "p.informational")]:
        with pytest.raises(InvalidArgument) as caught:
            timing.parse_quiet_hours(bad, path="p")
        assert caught.value.field == field


# -- property -----------------------------------------------------------------------------------
def allowed(moment: datetime, channel: str, advertising: bool, zone: ZoneInfo, quiet, night_consent: bool,
            quiet_informational: bool) -> bool:
    """The rules as a person would state them, moment by moment."""
    seoul = moment.astimezone(KST).time()
    # the night rule spares e-mail (the decree's medium, the default policy)
    if advertising and not night_consent and channel != EMAIL and (seoul >= time(21) or seoul < time(8)):
        return False
    if advertising and channel == FRIENDTALK and not time(8) <= seoul < time(20):
        return False
    if quiet and (advertising or quiet_informational):
        start, end = (time.fromisoformat(t) for t in quiet)
        local = moment.astimezone(zone).time()
        inside = start <= local < end if start < end else (local >= start or local < end)
        if inside:
            return False
    return True


# Moments around DST changes (New York, London) as well as anywhere in a decade.
DST_CHANGES = [datetime(2025, 3, 9, 7), datetime(2025, 11, 2, 6), datetime(2025, 3, 30, 1), datetime(2025, 10, 26, 1)]
moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31),
                       timezones=st.just(timezone.utc)) | st.builds(
    lambda change, minutes: change.replace(tzinfo=timezone.utc) + timedelta(minutes=minutes),
    st.sampled_from(DST_CHANGES), st.integers(-24 * 60, 24 * 60))
hhmm = st.builds(lambda h, m: f"{h:02}:{m:02}", st.integers(0, 23), st.sampled_from([0, 15, 30, 59]))


@settings(max_examples=200, deadline=None)
@given(moment=moments,
       channel=st.sampled_from([SMS, FRIENDTALK, PUSH, EMAIL]), advertising=st.booleans(),
       zone=st.sampled_from([KST, NEW_YORK, ZoneInfo("Europe/London"), ZoneInfo("Asia/Kolkata")]),
       quiet=st.none() | st.tuples(hhmm, hhmm).filter(lambda q: q[0] != q[1]),
       night_consent=st.booleans(), quiet_informational=st.booleans())
def test_the_moment_returned_is_the_first_every_rule_allows(moment, channel, advertising, zone, quiet,
                                                           night_consent, quiet_informational):
    rules = (channel, advertising, zone, quiet, night_consent, quiet_informational)
    try:
        result = timing.next_allowed(moment, channel=channel, advertising=advertising, profile_zone=zone,
                                     quiet_hours=quiet, night_consent=night_consent,
                                     quiet_hours_informational=quiet_informational)
    except timing.NeverAllowed:
        assert not any(allowed(moment + timedelta(minutes=m), *rules) for m in range(0, 3 * 24 * 60, 1))
        return
    if result is None:
        assert allowed(moment, *rules)
        return
    assert result.until > moment and allowed(result.until, *rules)
    # No earlier minute (nor the last second before it) is allowed.
    probes = [moment + timedelta(minutes=m) for m in range(int((result.until - moment) / timedelta(minutes=1)) + 1)]
    probes += [result.until - timedelta(seconds=1),
               result.until.replace(second=0, microsecond=0) - timedelta(minutes=1)]
    assert not any(allowed(p, *rules) for p in probes if moment <= p < result.until)


def test_the_night_rule_spares_email_by_default_and_the_policy_can_apply_it():
    assert ad(kst(10, 22, 30), EMAIL) is None  # 시행령 art. 61 ③ names e-mail
    assert ad(kst(10, 22, 30), EMAIL, night_rule_exempt=()) == timing.Deferral(kst(11, 8), "night_rule")
    assert ad(kst(10, 22, 30), SMS, night_rule_exempt=(EMAIL, SMS)) is None
    assert timing.exempt_from_night_rule({}) == {EMAIL}
    assert timing.exempt_from_night_rule({"night_rule": {"exempt": []}}) == frozenset()
    assert timing.parse_night_rule({}) == {"exempt": [EMAIL]}
    with pytest.raises(InvalidArgument) as refused:
        timing.parse_night_rule({"exempt": ["email", "fax"]}, path="policy.night_rule")
    assert refused.value.field == "policy.night_rule.exempt[1]"
