"""Journey definitions: the seed journeys parse; bad trees name the bad field."""

import copy
from datetime import time, timedelta

import pytest

from kit.errors import InvalidArgument
from services.journey import definition as d
from services.journey import starters
import rules
from tests.support.journeys import send, wait

# The starter library's journeys (services/journey/starters.py), their slot names as ids.
WELCOME, CART, POST_PURCHASE, DORMANCY, BIRTHDAY, CONSENT = (starters.definition(i) for i in (
    "onboarding", "cart-abandonment", "post-purchase", "dormancy", "birthday", "ads-consent-confirmation"))


def schedule_of(journey: d.Journey) -> list[tuple[int, str, str]]:
    """(day, template, first channel) of each send along the path from start (a straight journey)."""
    schedule, at, node_id = [], timedelta(0), journey.start
    while node_id and not isinstance(node := journey.nodes[node_id], d.Exit):
        if isinstance(node, d.Wait):
            at += node.duration
        else:
            schedule.append((at.days, node.template_id, node.channels[0]))
        node_id = node.next
    return schedule


def test_onboarding_starter_parses_with_the_articles_schedule_and_goal():
    journey = d.parse_journey(WELCOME)
    assert journey.trigger == d.EventTrigger(d.EventMatch("Signed Up"))
    assert journey.goal == d.EventMatch("Order Completed")
    assert journey.entry == d.Entry(mode="once")
    assert schedule_of(journey) == [
        (0, "onboarding-welcome", "alimtalk"), (0, "onboarding-first-coupon", "friendtalk"),
        (1, "onboarding-coupon-expiry", "alimtalk"), (2, "onboarding-coupon", "friendtalk"),
        (3, "onboarding-coupon-reminder", "friendtalk"), (6, "onboarding-reviews", "friendtalk"),
        (14, "onboarding-survey", "email"), (30, "onboarding-last-try", "friendtalk")]
    welcome = journey.nodes["welcome"]
    assert (welcome.channels, welcome.advertising, welcome.next) == (("alimtalk", "email"), False, "first_coupon")
    assert d.referenced_templates(journey) == set(starters.STARTERS["onboarding"].templates)
    assert d.referenced_segments(journey) == set()


def test_cart_post_purchase_dormancy_birthday_and_consent_starters_parse():
    cart = d.parse_journey(CART)
    assert cart.entry == d.Entry("cooldown", cooldown=timedelta(days=7))
    assert schedule_of(cart) == [(1, "cart-d1", "push"), (3, "cart-d3", "friendtalk"), (7, "cart-d7", "sms")]
    assert schedule_of(d.parse_journey(POST_PURCHASE)) == [
        (1, "post-purchase-thanks", "alimtalk"), (14, "post-purchase-recommend", "friendtalk"),
        (30, "post-purchase-repurchase", "push")]

    dormancy = d.parse_journey(DORMANCY)
    # counted from the entry at D+265 (no visit for 265 days)
    assert [(day + 265, template) for day, template, _ in schedule_of(dormancy)] == [
        (265, "dormancy-notice"), (280, "dormancy-notice"), (295, "dormancy-notice"), (310, "dormancy-notice"),
        (325, "dormancy-notice"), (335, "dormancy-final-notice"), (351, "dormancy-winback"),
        (358, "dormancy-winback-final")]
    assert d.referenced_segments(dormancy) == {"dormant-265d"}
    assert dormancy.exit_criteria.segment_exited == ("dormant-265d",)

    birthday = d.parse_journey(BIRTHDAY)
    assert birthday.trigger == d.DateTraitTrigger("birthday", time(9, 0), offset_days=0, yearly=True)
    assert birthday.nodes["mark"] == d.UpdateTrait("birthday_coupon_year_sent", True, "in_7d")

    consent = d.parse_journey(CONSENT)
    assert consent.trigger == d.SegmentTrigger("ads-consent-due", "entered")
    assert consent.nodes["in_2y"] == d.Wait(timedelta(days=730), "still_consented")
    assert consent.nodes["still_consented"].rule == rules.SegmentRef("ads-consent-due")
    assert d.successors(consent.nodes["still_consented"]) == (("then", "notice"), ("else", "done"))
    assert not consent.nodes["notice"].advertising  # the notice is informational, not advertising


def test_every_other_kind_parses():
    journey = d.parse_journey({
        "trigger": {"kind": "broadcast", "segment": "seg-all", "cron": "0 9 * * 1-5", "rate_per_second": 50},
        "exit_criteria": {"events": [{"event": "Unsubscribed"}]},
        "entry": {"cap": 1000, "window": {"from": "2025-05-01T00:00:00+09:00", "until": "2025-06-01T00:00:00Z"}},
        "start": "ab",
        "nodes": {
            "ab": {"kind": "split", "branches": [{"weight": 45, "next": "morning"}, {"weight": 45, "next": "eve"}],
                   "holdout": 10},
            "morning": {"kind": "wait_until", "at": "10:30", "weekdays": ["mon", "tue"], "next": "vip"},
            "eve": {"kind": "wait_until", "trait": "renewal_date", "offset_days": -3, "next": "vip"},
            "vip": {"kind": "condition", "rule": {"segment": "seg-vip"}, "then": "promo", "else": "out"},
            "promo": send("tpl-promo", "webpush", "inapp", "webhook", next="out"),
            "out": {"kind": "exit"},
        },
    })
    assert journey.trigger == d.BroadcastTrigger("seg-all", cron="0 9 * * 1-5", rate_per_second=50)
    assert journey.nodes["ab"].holdout == 10 and journey.nodes["ab"].branches[1] == d.Branch(45, "eve")
    assert journey.nodes["morning"] == d.WaitUntil("vip", time(10, 30), ("mon", "tue"))
    assert journey.nodes["eve"] == d.WaitUntil("vip", trait="renewal_date", offset_days=-3)
    assert journey.entry.cap == 1000 and journey.entry.active_from < journey.entry.active_until
    assert d.referenced_segments(journey) == {"seg-all", "seg-vip"}
    at_nine = {"kind": "broadcast", "segment": "s", "at": "2025-05-01T09:00:00+09:00"}
    once = d.parse_journey({**BIRTHDAY, "trigger": at_nine})
    assert once.trigger.at.hour == 9 and once.trigger.rate_per_second == d.DEFAULT_BROADCAST_RATE


def edit(base, path, value):
    """A copy of `base` with the value at a dotted path replaced (None deletes it)."""
    tree = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = tree
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is None:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return tree


@pytest.mark.parametrize("tree,field,reason", [
    ([], "journey", "expected a journey object"),
    (edit(WELCOME, "colour", "red"), "colour", "not allowed here"),
    (edit(WELCOME, "trigger.kind", "webhook"), "trigger.kind", "unknown 'webhook'"),
    (edit(CART, "trigger.where", [{"property": "price", "op": "like", "value": 1}]), "trigger.where[0].op",
     "unknown 'like'"),
    (edit(DORMANCY, "trigger.segment", ""), "trigger.segment", "non-empty string"),
    (edit(BIRTHDAY, "trigger.at", "9am"), "trigger.at", '"HH:MM"'),
    (edit(BIRTHDAY, "trigger.offset_days", 400), "trigger.offset_days", "-366 to 366"),
    ({**BIRTHDAY, "trigger": {"kind": "broadcast", "segment": "s", "cron": "0 25 * * *"}}, "trigger.cron", "hour"),
    ({**BIRTHDAY, "trigger": {"kind": "broadcast", "segment": "s", "cron": "0 9 * *"}}, "trigger.cron", "5 fields"),
    ({**BIRTHDAY, "trigger": {"kind": "broadcast", "segment": "s", "at": "2025-05-01T09:00:00"}}, "trigger.at", "zone"),
    ({**BIRTHDAY, "trigger": {"kind": "broadcast", "segment": "s"}}, "trigger", "exactly one of at"),
    ({**BIRTHDAY, "trigger": {"kind": "broadcast", "segment": "s", "cron": "* * * * *", "rate_per_second": 0}},
     "trigger.rate_per_second", "from 0.01 to 10000"),
    (edit(WELCOME, "nodes.to_d2.duration", "2 days"), "nodes.to_d2.duration", "ISO-8601 duration"),
    (edit(WELCOME, "nodes.to_d2.duration", "-P2D"), "nodes.to_d2.duration", "ISO-8601 duration"),
    (edit(WELCOME, "nodes.to_d2.next", None), "nodes.to_d2.next", "non-empty string"),
    (edit(WELCOME, "nodes.coupon.kind", "fax"), "nodes.coupon.kind", "unknown 'fax'"),
    (edit(WELCOME, "nodes.coupon.channels", []), "nodes.coupon.channels", "non-empty array"),
    (edit(WELCOME, "nodes.coupon.channels", ["sms", "pigeon"]), "nodes.coupon.channels[1]", "unknown 'pigeon'"),
    (edit(WELCOME, "nodes.coupon.channels", ["sms", "sms"]), "nodes.coupon.channels", "repeated"),
    (edit(WELCOME, "nodes.coupon.channels", ["sms", "alimtalk"]), "nodes.coupon.channels[1]", "informational messages only"),
    (edit(WELCOME, "nodes.coupon.advertising", None), "nodes.coupon.advertising", "true or false"),
    (edit(WELCOME, "nodes.coupon.template", None), "nodes.coupon.template", "non-empty string"),
    (edit(CART, "nodes.to_d1", {"kind": "wait_for_event", "event": "Order Completed", "timeout": "P1D",
                                "next": "d1"}), "nodes.to_d1.timeout_next", "non-empty string"),
    (edit(CART, "nodes.to_d1", {"kind": "wait_for_event", "event": "Order Completed", "timeout": "P1D",
                                "where": [{"property": "sku"}], "next": "d1", "timeout_next": "d1"}),
     "nodes.to_d1.where[0].op", "unknown None"),
    (edit(CONSENT, "nodes.still_consented.rule", {"last_seen": {"op": "more_than", "ago": "3d"}}),
     "nodes.still_consented.rule.last_seen.ago", "ISO-8601 duration"),
    (edit(CONSENT, "nodes.still_consented.else", None), "nodes.still_consented.else", "non-empty string"),
    (edit(BIRTHDAY, "nodes.mark.value", None), "nodes.mark.value", "value to set"),
    (edit(BIRTHDAY, "nodes.in_7d", {"kind": "wait_until", "at": "24:00", "next": "reminder"}),
     "nodes.in_7d.at", '"HH:MM"'),
    (edit(BIRTHDAY, "nodes.in_7d", {"kind": "wait_until", "at": "09:00", "weekdays": ["fri", "caturday"],
                                    "next": "reminder"}), "nodes.in_7d.weekdays[1]", "unknown 'caturday'"),
    (edit(BIRTHDAY, "nodes.in_7d", {"kind": "split", "branches": [{"weight": 1, "next": "reminder"},
                                                                  {"weight": 0, "next": "reminder"}]}),
     "nodes.in_7d.branches[1].weight", "weight > 0"),
    (edit(BIRTHDAY, "nodes.in_7d", {"kind": "split", "branches": [{"weight": 1, "next": "reminder"}],
                                    "holdout": -1}),
     "nodes.in_7d.holdout", "weight > 0"),
    (edit(BIRTHDAY, "nodes.bad id", {"kind": "exit"}), "nodes.bad id", "node ids"),
    (edit(WELCOME, "goal.where", {"property": "x"}), "goal.where", "array of property filters"),
    (edit(WELCOME, "exit_criteria", {"segment_exited": [""]}), "exit_criteria.segment_exited[0]", "non-empty"),
    (edit(WELCOME, "exit_criteria", {"events": [{"name": "X"}]}), "exit_criteria.events[0].name", "not allowed"),
    (edit(WELCOME, "entry", {"mode": "always"}), "entry.mode", "unknown 'always'"),
    (edit(WELCOME, "entry", {"mode": "cooldown"}), "entry.cooldown", "ISO-8601 duration"),
    (edit(WELCOME, "entry", {"mode": "once", "cooldown": "P1D"}), "entry.cooldown", "only with"),
    (edit(WELCOME, "entry", {"cap": 0}), "entry.cap", "≥ 1"),
    (edit(WELCOME, "entry", {"window": {"from": "2025-06-01T00:00:00Z", "until": "2025-05-01T00:00:00Z"}}),
     "entry.window.until", "after window.from"),
    # the graph
    (edit(WELCOME, "start", "hello"), "start", "unknown node 'hello'"),
    (edit(WELCOME, "nodes.to_d6.next", "reveiw"), "nodes.to_d6.next", "unknown node 'reveiw'"),
    (edit(CART, "nodes.to_d3.next", "d7"), "nodes.d3", "not reachable from start"),
    (edit(CONSENT, "nodes.in_2y", {"kind": "update_trait", "trait": "n", "value": 1, "next": "still_consented"}),
     "nodes.still_consented.then", "loop notice → in_2y → still_consented → notice passes through no wait"),
    (edit(BIRTHDAY, "nodes.reminder.next", "reminder"), "nodes.reminder.next", "loop reminder → reminder"),
    (edit(CONSENT, "nodes.done", wait("P1D", "notice")), "nodes", "no path from start reaches an exit"),
])
def test_malformed_journeys_name_the_offending_field(tree, field, reason):
    with pytest.raises(InvalidArgument) as err:
        d.parse_journey(tree)
    assert err.value.field == field
    assert reason in err.value.message and err.value.message.startswith(f"{field}: ")


def test_a_loop_through_a_wait_is_allowed_and_definitions_are_frozen():
    journey = d.parse_journey(CONSENT)
    with pytest.raises(AttributeError):
        journey.start = "done"  # type: ignore[misc]
