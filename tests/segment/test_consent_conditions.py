"""Consent in segment rules: the rule language's `consent` condition, evaluated on the
consent the profile service announces on nudge.events.v1 (profile.consent_changed), live
through the gateway (backfill, realtime changes, the time-driven "held for 700 days", a
merge, preview and explain) and as pure rules."""

from datetime import datetime, timedelta, timezone

import pytest

from kit.errors import InvalidArgument
import rules
from kit.payloads import EVENTS
from kit.streams import StreamEvent
from rules.evaluation import Outcome, ProfileFacts, evaluate
from tests.support.api import becomes, create_segment, is_member, profile_of
from tests.support.streams import consumed_past, last_entry, trail
from tests.support.waiting import eventually

# The two-yearly consent confirmation (정보통신망법 §50 ⑧): SMS advertising consent held for 700 days.
HELD_700_DAYS = {"consent": {"purpose": "ads:sms", "state": "granted", "since": {"op": "before", "ago": "P700D"}}}
T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _clock(segment_clock):
    return segment_clock


async def identify(ws, user: str) -> str:
    response = await ws.tracking.post("/v1/identify", json={"userId": user, "traits": {"name": user}})
    assert response.status_code == 200, response.text
    return await profile_of(ws, user)


async def put_consent(ws, profile: str, purpose: str, granted: bool, at: datetime | None = None) -> None:
    kind, channel = purpose.split(":")
    entry = {"granted": granted, "source": "test", **({"at": at.isoformat()} if at else {})}
    body = {"ads" if kind == "ads" else "channels": {channel: entry}}
    response = await ws.admin.put(f"/v1/profiles/{profile}/consent", json=body)
    assert response.status_code == 200, response.text


# ---- live, through the gateway ----------------------------------------------------------------

async def test_consent_held_for_700_days_backfills_moves_with_time_and_follows_changes(workspace, segment_clock,
                                                                                      redis, segment_platform):
    now = datetime.now(timezone.utc)
    old, recent, withdrawn, nearly = [await identify(workspace, u) for u in ("old", "recent", "withdrawn", "nearly")]
    await put_consent(workspace, old, "ads:sms", True, now - timedelta(days=720))
    await put_consent(workspace, recent, "ads:sms", True, now - timedelta(days=10))
    await put_consent(workspace, withdrawn, "ads:sms", False, now - timedelta(days=800))
    await put_consent(workspace, nearly, "ads:sms", True, now - timedelta(days=700) + MINUTE)

    def last_consent(fields) -> bool:  # announced after the other three
        event = StreamEvent.from_fields(fields)
        return (event.type == "profile.consent_changed" and event.workspace_id == workspace.id
                and event.profile_id == nearly)
    marker = await eventually(lambda: last_entry(redis, EVENTS, last_consent))
    await consumed_past(redis, EVENTS, segment_platform.consumer.group, marker)  # the segment service has all four

    # Backfill: consent recorded before the segment existed counts.
    segment = await create_segment(workspace, "ads:sms consent due for confirmation", HELD_700_DAYS)
    assert (await workspace.admin.get(f"/v1/segments/{segment}/count")).json()["count"] == 1
    assert await is_member(workspace, segment, old)
    assert not await is_member(workspace, segment, recent) and not await is_member(workspace, segment, withdrawn)
    assert not await is_member(workspace, segment, nearly)

    # Time alone: 700 days pass for `nearly` (its timer fires).
    segment_clock.advance(2 * MINUTE)
    await becomes(workspace, segment, nearly, True)

    # A change: `old` withdraws (an unsubscribe, a preference centre) and leaves now.
    await put_consent(workspace, old, "ads:sms", False)
    await becomes(workspace, segment, old, False)
    entered, exited = await trail(redis, workspace, old, 2)
    assert (entered["type"], exited["type"]) == ("segment.entered", "segment.exited")
    assert exited["trigger"]["type"] == "consent"
    # An older record arriving late changes nothing (nothing is announced): the newer withdrawal
    # stands. A consent on another channel is another purpose. The segment service has seen both
    # once it has consumed the announcement of the second, made after the first.
    await put_consent(workspace, old, "ads:sms", True, now - timedelta(days=900))
    await put_consent(workspace, recent, "ads:email", True, now - timedelta(days=900))

    def email_consent(fields) -> bool:
        event = StreamEvent.from_fields(fields)
        return (event.type == "profile.consent_changed" and event.workspace_id == workspace.id
                and "ads:email" in event.payload.get("consent", {}))
    marker = await eventually(lambda: last_entry(redis, EVENTS, email_consent))
    await consumed_past(redis, EVENTS, segment_platform.consumer.group, marker)
    assert not await is_member(workspace, segment, old)
    assert not await is_member(workspace, segment, recent)


async def test_withdrawn_state_preview_and_explain(workspace):
    now = datetime.now(timezone.utc)
    quitter, keeper = await identify(workspace, "quitter"), await identify(workspace, "keeper")
    await put_consent(workspace, quitter, "channel:email", False, now - timedelta(days=3))
    await put_consent(workspace, keeper, "channel:email", True, now - timedelta(days=3))
    newsletter_leavers = {"consent": {"purpose": "channel:email", "state": "withdrawn",
                                      "since": {"op": "within", "ago": "P7D"}}}

    async def previewed():
        body = (await workspace.admin.post("/v1/segments/preview", json={"rules": newsletter_leavers})).json()
        return body if body["count"] == 1 else None
    preview = await eventually(previewed)
    assert preview["sample"] == [quitter] and preview["total"] == 2

    segment = await create_segment(workspace, "left the newsletter this week", newsletter_leavers)
    explained = (await workspace.admin.get(f"/v1/segments/{segment}/explain/{quitter}")).json()
    assert explained["member"] is True
    [condition] = explained["conditions"]
    assert condition["satisfied"] and condition["value"]["granted"] is False
    assert "withdrawn" in condition["reason"]
    assert datetime.fromisoformat(explained["nextChange"].replace("Z", "+00:00")) > now + timedelta(days=3)
    assert not (await workspace.admin.get(f"/v1/segments/{segment}/explain/{keeper}")).json()["member"]


async def test_a_merged_persons_consent_counts_for_the_survivor(workspace):
    segment = await create_segment(workspace, "push ads", {"consent": {"purpose": "ads:push", "state": "granted"}})
    response = await workspace.tracking.post("/v1/identify", json={"anonymousId": "anon-consent",
                                                                  "traits": {"seen": True}})
    assert response.status_code == 200
    anonymous = await eventually(lambda: _lookup(workspace, "anonymousId", "anon-consent"))
    await put_consent(workspace, anonymous["id"], "ads:push", True)
    await becomes(workspace, segment, anonymous["id"], True)
    known = await identify(workspace, "known-consent")
    assert not await is_member(workspace, segment, known)
    response = await workspace.tracking.post("/v1/identify", json={"userId": "known-consent",
                                                                  "anonymousId": "anon-consent"})
    assert response.status_code == 200

    async def survivor_is_member():
        survivor = (await workspace.admin.get("/v1/profiles", params={"userId": "known-consent"})).json()[
            "profiles"][0]
        return survivor["mergedIds"] and await is_member(workspace, segment, survivor["id"])
    await eventually(survivor_is_member)
    assert (await workspace.admin.get(f"/v1/segments/{segment}/count")).json()["count"] == 1


async def _lookup(ws, key: str, value: str):
    found = (await ws.admin.get("/v1/profiles", params={key: value})).json().get("profiles")
    return found[0] if found else None


async def test_consent_rule_errors_name_the_node(workspace):
    for tree, field in (
            ({"consent": {"purpose": "marketing", "state": "granted"}}, "rules.consent.purpose"),
            ({"consent": {"purpose": "ads:sms", "state": "maybe"}}, "rules.consent.state"),
            ({"consent": {"purpose": "ads:sms", "state": "granted", "since": {"op": "around", "ago": "P1D"}}},
             "rules.consent.since.op"),
            ({"all": [{"consent": {"purpose": "ads:sms", "state": "granted", "since": {"op": "before",
                                                                                      "ago": "700 days"}}}]},
             "rules.all[0].consent.since.ago"),
            ({"consent": {"purpose": "ads:sms", "state": "granted", "until": "P1D"}}, "rules.consent.until")):
        response = await workspace.admin.post("/v1/segments", json={"name": "bad", "rules": tree})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"]["field"] == field


# ---- pure -----------------------------------------------------------------------------------------

def facts(**consent) -> ProfileFacts:
    return ProfileFacts(consent={p.replace("_", ":", 1): {"granted": g, "at": a.isoformat()}
                                 for p, (g, a) in consent.items()})


@pytest.mark.parametrize("op, ago_days, member, next_change", [
    ("before", 700, False, T0 - timedelta(days=10) + timedelta(days=700)),
    ("before", 5, True, None),
    ("within", 30, True, T0 + timedelta(days=20)),
    ("after", 5, False, None),
])
def test_since_compares_the_time_the_consent_was_recorded(op, ago_days, member, next_change):
    rule = rules.parse({"consent": {"purpose": "ads:sms", "state": "granted",
                                    "since": {"op": op, "ago": f"P{ago_days}D"}}})
    assert evaluate(rule, facts(ads_sms=(True, T0 - timedelta(days=10))), T0) == Outcome(member, next_change)


def test_state_must_match_and_a_consent_never_recorded_is_neither():
    granted = rules.parse({"consent": {"purpose": "ads:kakao", "state": "granted"}})
    withdrawn = rules.parse({"consent": {"purpose": "ads:kakao", "state": "withdrawn"}})
    assert evaluate(granted, facts(ads_kakao=(True, T0)), T0).member
    assert not evaluate(withdrawn, facts(ads_kakao=(True, T0)), T0).member
    assert evaluate(withdrawn, facts(ads_kakao=(False, T0)), T0).member
    assert not evaluate(granted, facts(), T0).member and not evaluate(withdrawn, facts(), T0).member
    assert evaluate(rules.parse({"not": {"consent": {"purpose": "ads:kakao", "state": "granted"}}}), facts(), T0).member


def test_consent_rules_parse_to_typed_conditions():
    assert rules.parse(HELD_700_DAYS) == rules.ConsentCondition("ads:sms", "granted", "before", timedelta(days=700))
    assert rules.parse({"consent": {"purpose": "night_advertising", "state": "withdrawn"}}) == \
        rules.ConsentCondition("night_advertising", "withdrawn")
    with pytest.raises(InvalidArgument) as refused:
        rules.parse({"consent": "ads:sms"})
    assert refused.value.field == "rules.consent"


async def test_consent_held_before_segments_read_it_is_announced_once_at_start(workspace, profile_service,
                                                                              segment_platform, redis):
    """Consent recorded before this release: the segment service never saw it; the profile
    service's start-up job (the profiles migration 0002 lists who holds consent) announces it."""
    from sqlalchemy import text

    segment = await create_segment(workspace, "sms ads", {"consent": {"purpose": "ads:sms", "state": "granted"}})
    profile = await identify(workspace, "from-before")
    await put_consent(workspace, profile, "ads:sms", True, datetime.now(timezone.utc) - timedelta(days=800))
    await becomes(workspace, segment, profile, True)
    # As before this release: the segment service holds no consent and no membership for them.
    async with segment_platform.sessions() as session, session.begin():
        await session.execute(text("UPDATE profiles SET consent = '{}'::jsonb WHERE profile_id = :p"),
                              {"p": profile})
        await session.execute(text("DELETE FROM memberships WHERE profile_id = :p"), {"p": profile})
    await segment_platform.service.redis.delete(f"nudge:segment:{workspace.id}:{segment}:ready")
    assert not await is_member(workspace, segment, profile)
    async with profile_service.sessions() as session, session.begin():
        await session.execute(text("INSERT INTO consent_announcements (profile_id, workspace_id) VALUES (:p, :w)"),
                              {"p": profile, "w": workspace.id})

    assert await profile_service.announce_held_consent(batch=1) == 1
    await becomes(workspace, segment, profile, True)
    assert await profile_service.announce_held_consent() == 0  # once
