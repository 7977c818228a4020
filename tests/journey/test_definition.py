"""Journey definitions: the seed journeys parse; bad trees name the bad field."""

import copy
from datetime import time, timedelta

import pytest

from kit.errors import InvalidArgument
from services.journey import definition as d
from services.segment import rules

PURCHASE = {"event": "Order Completed"}


def send(template, *channels, advertising=True, next=None):
    node = {"kind": "send", "channels": list(channels), "template": template, "advertising": advertising}
    return node | ({"next": next} if next else {})


def wait(duration, next):
    return {"kind": "wait", "duration": duration, "next": next}


# Signed up → welcome now → coupon D+2 → reminder D+3 → review D+6 → survey D+14 → last try D+30.
WELCOME = {
    "trigger": {"kind": "event", "event": "Signed Up"},
    "goal": PURCHASE,
    "start": "welcome",
    "nodes": {
        "welcome": send("tpl-welcome", "alimtalk", "sms", advertising=False, next="to_d2"),
        "to_d2": wait("P2D", "coupon"),
        "coupon": send("tpl-coupon", "friendtalk", "sms", next="to_d3"),
        "to_d3": wait("P1D", "reminder"),
        "reminder": send("tpl-coupon-reminder", "push", "sms", next="to_d6"),
        "to_d6": wait("P3D", "review"),
        "review": send("tpl-reviews", "email", next="to_d14"),
        "to_d14": wait("P8D", "survey"),
        "survey": send("tpl-survey", "email", advertising=False, next="to_d30"),
        "to_d30": wait("P16D", "last_try"),
        "last_try": send("tpl-last-try", "friendtalk", "sms", next="done"),
        "done": {"kind": "exit"},
    },
}

# Cart added → D+1 / D+3 / D+7 unless they buy; again at most every 7 days.
CART = {
    "trigger": {"kind": "event", "event": "Product Added",
                "where": [{"property": "price", "op": "gte", "value": 10000}]},
    "goal": PURCHASE,
    "entry": {"mode": "cooldown", "cooldown": "P7D"},
    "start": "to_d1",
    "nodes": {
        "to_d1": {"kind": "wait_for_event", "event": "Order Completed", "timeout": "P1D",
                  "next": "bought", "timeout_next": "d1"},
        "bought": {"kind": "exit"},
        "d1": send("tpl-cart-1", "push", "email", next="to_d3"),
        "to_d3": wait("P2D", "d3"),
        "d3": send("tpl-cart-3", "friendtalk", "email", next="to_d7"),
        "to_d7": wait("P4D", "d7"),
        "d7": send("tpl-cart-7", "email"),
    },
}

# Purchase → thank-you D+1 → recommendations D+14 → repurchase reminder D+30.
POST_PURCHASE = {
    "trigger": {"kind": "event", "event": "Order Completed"},
    "entry": {"mode": "every_time"},
    "start": "to_d1",
    "nodes": {
        "to_d1": wait("P1D", "thanks"),
        "thanks": send("tpl-thanks", "alimtalk", "sms", advertising=False, next="to_d14"),
        "to_d14": wait("P13D", "recommend"),
        "recommend": send("tpl-recommend", "email", next="to_d30"),
        "to_d30": wait("P16D", "repurchase"),
        "repurchase": send("tpl-repurchase", "friendtalk", "sms"),
    },
}

# No visit for 265 days → a notice every 15 days until day 335 (265, 280, 295, 310, 325); a visit ends it.
DORMANCY = {
    "trigger": {"kind": "segment_entered", "segment": "seg-no-visit-265d"},
    "exit_criteria": {"segment_exited": ["seg-no-visit-265d"]},
    "entry": {"mode": "every_time"},
    "start": "notice",
    "nodes": {
        "notice": send("tpl-dormancy", "alimtalk", "email", advertising=False, next="in_15d"),
        "in_15d": wait("P15D", "still_dormant"),
        "still_dormant": {"kind": "condition", "rule": {"last_seen": {"op": "more_than", "ago": "P330D"}},
                          "then": "done", "else": "notice"},
        "done": {"kind": "exit"},
    },
}

# Birthday at 09:00 in the profile's zone: a coupon, a reminder a week later.
BIRTHDAY = {
    "trigger": {"kind": "date_trait", "trait": "birthday", "at": "09:00"},
    "entry": {"mode": "every_time"},
    "start": "coupon",
    "nodes": {
        "coupon": send("tpl-birthday", "friendtalk", "sms", next="mark"),
        "mark": {"kind": "update_trait", "trait": "birthday_coupon_year_sent", "value": True, "next": "in_7d"},
        "in_7d": wait("P7D", "reminder"),
        "reminder": send("tpl-birthday-expiring", "push"),
    },
}


def test_signup_welcome_parses_with_its_schedule_and_goal():
    journey = d.parse_journey(WELCOME)
    assert journey.trigger == d.EventTrigger(d.EventMatch("Signed Up"))
    assert journey.goal == d.EventMatch("Order Completed")
    assert journey.entry == d.Entry(mode="once")
    schedule, at, node_id = [], timedelta(0), journey.start
    while not isinstance(node := journey.nodes[node_id], d.Exit):
        if isinstance(node, d.Wait):
            at += node.duration
        else:
            schedule.append((at.days, node.template_id, node.channels[0]))
        node_id = node.next
    assert schedule == [(0, "tpl-welcome", "alimtalk"), (2, "tpl-coupon", "friendtalk"),
                        (3, "tpl-coupon-reminder", "push"), (6, "tpl-reviews", "email"),
                        (14, "tpl-survey", "email"), (30, "tpl-last-try", "friendtalk")]
    assert journey.nodes["welcome"] == d.Send(("alimtalk", "sms"), "tpl-welcome", False, "to_d2")
    assert d.referenced_templates(journey) == {"tpl-welcome", "tpl-coupon", "tpl-coupon-reminder", "tpl-reviews",
                                               "tpl-survey", "tpl-last-try"}
    assert d.referenced_segments(journey) == set()


def test_cart_abandonment_dormancy_and_birthday_parse():
    cart = d.parse_journey(CART)
    assert cart.trigger.match.where == (rules.PropertyFilter("price", "gte", 10000),)
    assert cart.entry == d.Entry("cooldown", cooldown=timedelta(days=7))
    assert cart.nodes["to_d1"] == d.WaitForEvent(d.EventMatch("Order Completed"), timedelta(days=1), "bought", "d1")
    assert [n.duration.days for n in cart.nodes.values() if isinstance(n, d.Wait)] == [2, 4]

    dormancy = d.parse_journey(DORMANCY)
    assert dormancy.nodes["still_dormant"].rule == rules.LastSeen("more_than", timedelta(days=330))
    assert d.referenced_segments(dormancy) == {"seg-no-visit-265d"}
    assert d.successors(dormancy.nodes["still_dormant"]) == (("then", "done"), ("else", "notice"))

    birthday = d.parse_journey(BIRTHDAY)
    assert birthday.trigger == d.DateTraitTrigger("birthday", time(9, 0), offset_days=0, yearly=True)
    assert birthday.nodes["mark"] == d.UpdateTrait("birthday_coupon_year_sent", True, "in_7d")


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
    (edit(CART, "trigger.where.0.op", "like"), "trigger.where[0].op", "unknown 'like'"),
    (edit(DORMANCY, "trigger.segment", ""), "trigger.segment", "non-empty string"),
    (edit(BIRTHDAY, "trigger.at", "9am"), "trigger.at", '"HH:MM"'),
    (edit(BIRTHDAY, "trigger.offset_days", 400), "trigger.offset_days", "-366 to 366"),
    ({**BIRTHDAY, "trigger": {"kind": "broadcast", "segment": "s", "cron": "0 25 * * *"}}, "trigger.cron", "hour"),
    ({**BIRTHDAY, "trigger": {"kind": "broadcast", "segment": "s", "cron": "0 9 * *"}}, "trigger.cron", "5 fields"),
    ({**BIRTHDAY, "trigger": {"kind": "broadcast", "segment": "s", "at": "2025-05-01T09:00:00"}}, "trigger.at", "zone"),
    ({**BIRTHDAY, "trigger": {"kind": "broadcast", "segment": "s"}}, "trigger", "exactly one of at"),
    ({**BIRTHDAY, "trigger": {"kind": "broadcast", "segment": "s", "cron": "* * * * *", "rate_per_second": 0}},
     "trigger.rate_per_second", "> 0"),
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
    (edit(CART, "nodes.to_d1.timeout_next", None), "nodes.to_d1.timeout_next", "non-empty string"),
    (edit(CART, "nodes.to_d1.where", [{"property": "sku"}]), "nodes.to_d1.where[0].op", "unknown None"),
    (edit(DORMANCY, "nodes.still_dormant.rule", {"last_seen": {"op": "more_than", "ago": "3d"}}),
     "nodes.still_dormant.rule.last_seen.ago", "ISO-8601 duration"),
    (edit(DORMANCY, "nodes.still_dormant.else", None), "nodes.still_dormant.else", "non-empty string"),
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
    (edit(CART, "nodes.to_d1.next", "d1"), "nodes.bought", "not reachable from start"),
    (edit(DORMANCY, "nodes.in_15d", {"kind": "update_trait", "trait": "n", "value": 1, "next": "still_dormant"}),
     "nodes.still_dormant.else", "loop notice → in_15d → still_dormant → notice passes through no wait"),
    (edit(BIRTHDAY, "nodes.reminder.next", "reminder"), "nodes.reminder.next", "loop reminder → reminder"),
    (edit(DORMANCY, "nodes.done", wait("P1D", "notice")), "nodes", "no path from start reaches an exit"),
])
def test_malformed_journeys_name_the_offending_field(tree, field, reason):
    with pytest.raises(InvalidArgument) as err:
        d.parse_journey(tree)
    assert err.value.field == field
    assert reason in err.value.message and err.value.message.startswith(f"{field}: ")


def test_a_loop_through_a_wait_is_allowed_and_definitions_are_frozen():
    journey = d.parse_journey(DORMANCY)
    with pytest.raises(AttributeError):
        journey.start = "done"  # type: ignore[misc]
