"""A journey definition: a JSON tree parsed into frozen dataclasses and checked as a graph,
with errors that point at the offending node (`nodes.coupon.duration: expected an ISO-8601
duration`, `nodes.check.else: unknown node 'gone'`).

    {"trigger": {"kind": "event", "event": "Signed Up", "where": [<property filter>, ...]}
              | {"kind": "segment_entered" | "segment_exited", "segment": "<segment id>"}
              | {"kind": "date_trait", "trait": "birthday", "yearly": true, "offset_days": -3, "at": "09:00"}
              | {"kind": "broadcast", "segment": "<id>", "at": "<ISO date-time>" | "cron": "0 9 * * 1",
                 "rate_per_second": 100},
     "start": "<node id>",
     "nodes": {"<node id>": <node>, ...},
     "goal": {"event": "Order Completed", "where": [...]},                          optional
     "exit_criteria": {"segment_exited": ["<id>", ...], "events": [{"event": ..., "where": [...]}]},
     "entry": {"mode": "once" | "every_time" | "cooldown", "cooldown": "P30D", "cap": 1000,
               "window": {"from": "<ISO date-time>", "until": "<ISO date-time>"}}}     optional

    nodes:
    {"kind": "wait", "duration": "P2D", "next": ...}
    {"kind": "wait_until", "at": "09:00", "weekdays": ["mon", "fri"], "next": ...}     time of day (profile's zone)
    {"kind": "wait_until", "trait": "renewal_date", "offset_days": -3, "at": "09:00", "next": ...}
    {"kind": "wait_for_event", "event": ..., "where": [...], "timeout": "PT1H", "next": ..., "timeout_next": ...}
    {"kind": "condition", "rule": <segment rule>, "then": ..., "else": ...}
    {"kind": "split", "branches": [{"weight": 50, "next": ...}, ...], "holdout": 10}
    {"kind": "send", "channels": ["alimtalk", "sms"], "template": "<id>", "advertising": false,
     "transactional": false, "next": ...}                                   transactional: a receipt, a shipping notice
    {"kind": "update_trait", "trait": "vip", "value": true, "next": ...}
    {"kind": "exit"}

`channels` is the fallback order; a send's optional `"order"` is passed to dispatch:
"first_allowed" (default) takes the next channel allowed now when one must wait (night
rule, Kakao's window), "strict" waits for the first. A send or update_trait without `next` ends the run;
waits, conditions and splits must name theirs. Property filters, rules and durations are
the rule language's (the `rules` package). Pure: no I/O, no clock.
"""

import re
from datetime import datetime, time

import rules
from kit import limits
from rules.channels import ALIMTALK, CHANNELS
# The typed journey and its references live beside this parser; they are re-exported here,
# so `definition` stays the one name for the journey language.
from services.journey.nodes import (DEFAULT_BROADCAST_RATE, WAITS, BroadcastTrigger, Branch, Condition,  # noqa: F401
                                    DateTraitTrigger, Entry, EventMatch, EventTrigger, Exit, ExitCriteria,
                                    Journey, Send, SegmentTrigger, Split, UpdateTrait, Wait, WaitForEvent,
                                    WaitUntil, successors)
from services.journey.references import (JOURNEY_VARIABLES, missing_variable, referenced_segments,  # noqa: F401
                                         referenced_templates, segment_fields, template_fields)

ENTRY_MODES = ("once", "every_time", "cooldown")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_NODES = 200
MAX_RATE = 10_000        # broadcast entries per second; at least MIN_RATE (one every 100 s)
MIN_RATE = 0.01
MAX_WEIGHT = 1_000_000   # a split branch's weight
_NODE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_CRON_ITEM = re.compile(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?")
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
                ("day of week", 0, 7))


def parse_journey(tree: object) -> Journey:
    """The typed journey of a JSON tree, or InvalidArgument naming the first bad field."""
    return _Parser().journey(tree)


class _Parser(rules.Parser):
    """The rule parser's leaves (durations, property filters, strings, choices) plus journeys."""

    def journey(self, tree: object) -> Journey:
        if not isinstance(tree, dict):
            self.fail("journey", "expected a journey object")
        extra = sorted(set(tree) - {"trigger", "start", "nodes", "goal", "exit_criteria", "entry"})
        if extra:
            self.fail(extra[0], "not allowed here")
        trigger = self.trigger(tree.get("trigger"), "trigger")
        raw_nodes = tree.get("nodes")
        if not isinstance(raw_nodes, dict) or not raw_nodes:
            self.fail("nodes", "expected a non-empty object of node id → node")
        if len(raw_nodes) > MAX_NODES:
            self.fail("nodes", f"at most {MAX_NODES} nodes")
        nodes = {node_id: self.node(node_id, n) for node_id, n in raw_nodes.items()}
        start = self.text(tree.get("start"), "start")
        goal = self.event_match(tree["goal"], "goal") if "goal" in tree else None
        exits = self.exit_criteria(tree.get("exit_criteria", {}), "exit_criteria")
        entry = self.entry(tree.get("entry", {}), "entry")
        self.check_graph(start, nodes)
        return Journey(trigger, start, nodes, goal, exits, entry)

    # -- trigger ------------------------------------------------------------------------
    def trigger(self, tree: object, path: str):
        kinds = ("event", "segment_entered", "segment_exited", "date_trait", "broadcast")
        if not isinstance(tree, dict):
            self.fail(path, 'expected a trigger object {"kind": ..., ...}')
        kind = self.choice(tree.get("kind"), kinds, f"{path}.kind")
        if kind == "event":
            return EventTrigger(self.event_match(tree, path, {"kind"}))
        if kind in ("segment_entered", "segment_exited"):
            self.only(tree, path, {"kind", "segment"})
            return SegmentTrigger(self.text(tree.get("segment"), f"{path}.segment"), kind.removeprefix("segment_"))
        if kind == "date_trait":
            self.only(tree, path, {"kind", "trait", "yearly", "offset_days", "at"})
            yearly = tree.get("yearly", True)
            if not isinstance(yearly, bool):
                self.fail(f"{path}.yearly", "expected true or false")
            return DateTraitTrigger(self.text(tree.get("trait"), f"{path}.trait"),
                                    self.time_of_day(tree.get("at"), f"{path}.at"),
                                    self.days(tree.get("offset_days", 0), f"{path}.offset_days"), yearly)
        self.only(tree, path, {"kind", "segment", "at", "cron", "rate_per_second"})
        segment = self.text(tree.get("segment"), f"{path}.segment")
        if ("at" in tree) == ("cron" in tree):
            self.fail(path, "give exactly one of at (one time) or cron (recurring)")
        rate = tree.get("rate_per_second", DEFAULT_BROADCAST_RATE)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not MIN_RATE <= rate <= MAX_RATE:
            self.fail(f"{path}.rate_per_second", f"expected a number of entries per second from {MIN_RATE} "
                                                 f"to {MAX_RATE}")
        if "at" in tree:
            return BroadcastTrigger(segment, at=self.instant(tree["at"], f"{path}.at"), rate_per_second=rate)
        return BroadcastTrigger(segment, cron=self.cron(tree["cron"], f"{path}.cron"), rate_per_second=rate)

    # -- nodes --------------------------------------------------------------------------
    def node(self, node_id: str, tree: object):
        path = f"nodes.{node_id}"
        if not _NODE_ID.fullmatch(node_id):
            self.fail(path, "node ids are 1 to 64 letters, digits, _ or -")
        if not isinstance(tree, dict):
            self.fail(path, 'expected a node object {"kind": ..., ...}')
        kinds = ("wait", "wait_until", "wait_for_event", "condition", "split", "send", "update_trait", "exit")
        kind = self.choice(tree.get("kind"), kinds, f"{path}.kind")
        if kind == "wait":
            self.only(tree, path, {"kind", "duration", "next"})
            return Wait(self.duration(tree.get("duration"), f"{path}.duration"), self.ref(tree, "next", path))
        if kind == "wait_until":
            return self.wait_until(tree, path)
        if kind == "wait_for_event":
            return WaitForEvent(self.event_match(tree, path, {"kind", "timeout", "next", "timeout_next"}),
                                self.duration(tree.get("timeout"), f"{path}.timeout"),
                                self.ref(tree, "next", path), self.ref(tree, "timeout_next", path))
        if kind == "condition":
            self.only(tree, path, {"kind", "rule", "then", "else"})
            return Condition(rules.parse(tree.get("rule"), f"{path}.rule"),
                             self.ref(tree, "then", path), self.ref(tree, "else", path))
        if kind == "split":
            return self.split(tree, path)
        if kind == "send":
            return self.send(tree, path)
        if kind == "update_trait":
            self.only(tree, path, {"kind", "trait", "value", "next"})
            if "value" not in tree:
                self.fail(f"{path}.value", "expected the value to set (null clears the trait)")
            return UpdateTrait(self.text(tree.get("trait"), f"{path}.trait"), tree["value"],
                               self.ref(tree, "next", path, required=False))
        self.only(tree, path, {"kind"})
        return Exit()

    def wait_until(self, tree: dict, path: str) -> WaitUntil:
        next_ = self.ref(tree, "next", path)
        if "trait" in tree:
            self.only(tree, path, {"kind", "trait", "offset_days", "at", "next"})
            at = self.time_of_day(tree["at"], f"{path}.at") if "at" in tree else None
            return WaitUntil(next_, at, trait=self.text(tree["trait"], f"{path}.trait"),
                             offset_days=self.days(tree.get("offset_days", 0), f"{path}.offset_days"))
        self.only(tree, path, {"kind", "at", "weekdays", "next"})
        weekdays = tree.get("weekdays", [])
        if not isinstance(weekdays, list) or ("weekdays" in tree and not weekdays):
            self.fail(f"{path}.weekdays", f"expected a non-empty array of {', '.join(WEEKDAYS)}")
        days = tuple(self.choice(d, WEEKDAYS, f"{path}.weekdays[{i}]") for i, d in enumerate(weekdays))
        if len(set(days)) != len(days):
            self.fail(f"{path}.weekdays", "a weekday is repeated")
        return WaitUntil(next_, self.time_of_day(tree.get("at"), f"{path}.at"), days)

    def split(self, tree: dict, path: str) -> Split:
        self.only(tree, path, {"kind", "branches", "holdout"})
        branches = tree.get("branches")
        if not isinstance(branches, list) or not branches:
            self.fail(f"{path}.branches", 'expected a non-empty array of {"weight": ..., "next": ...}')
        parsed = []
        for i, branch in enumerate(branches):
            at = f"{path}.branches[{i}]"
            if not isinstance(branch, dict):
                self.fail(at, 'expected {"weight": ..., "next": ...}')
            self.only(branch, at, {"weight", "next"})
            parsed.append(Branch(self.weight(branch.get("weight"), f"{at}.weight"), self.ref(branch, "next", at)))
        holdout = self.weight(tree["holdout"], f"{path}.holdout") if "holdout" in tree else 0
        return Split(tuple(parsed), holdout)

    def send(self, tree: dict, path: str) -> Send:
        self.only(tree, path, {"kind", "channels", "template", "advertising", "transactional", "order", "next"})
        channels = tree.get("channels")
        if not isinstance(channels, list) or not channels:
            self.fail(f"{path}.channels", "expected a non-empty array of channels, in fallback order")
        parsed = tuple(self.choice(c, CHANNELS, f"{path}.channels[{i}]") for i, c in enumerate(channels))
        if len(set(parsed)) != len(parsed):
            self.fail(f"{path}.channels", "a channel is repeated")
        advertising = tree.get("advertising")
        if not isinstance(advertising, bool):
            self.fail(f"{path}.advertising", "expected true or false (is this message advertising?)")
        if advertising and ALIMTALK in parsed:
            self.fail(f"{path}.channels[{parsed.index(ALIMTALK)}]",
                      "alimtalk carries informational messages only; use friendtalk for advertising")
        order = self.choice(tree.get("order", "first_allowed"), ("first_allowed", "strict"), f"{path}.order")
        transactional = tree.get("transactional", False)
        if not isinstance(transactional, bool):
            self.fail(f"{path}.transactional", "expected true or false (is this a receipt or a notice the "
                                               "person asked for?)")
        if transactional and advertising:
            self.fail(f"{path}.transactional", "an advertising message is never transactional (fatigue "
                                               "limits apply to it)")
        return Send(parsed, self.text(tree.get("template"), f"{path}.template"), advertising,
                    self.ref(tree, "next", path, required=False), order, transactional)

    # -- goal, exits, entry -------------------------------------------------------------
    def event_match(self, tree: object, path: str, also: set[str] = frozenset()) -> EventMatch:
        if not isinstance(tree, dict):
            self.fail(path, 'expected {"event": ..., "where": [...]}')
        self.only(tree, path, {"event", "where", *also})
        where = tree.get("where", [])
        if not isinstance(where, list):
            self.fail(f"{path}.where", "expected an array of property filters")
        return EventMatch(self.text(tree.get("event"), f"{path}.event"),
                          tuple(self.property_filter(f, f"{path}.where[{i}]") for i, f in enumerate(where)))

    def exit_criteria(self, tree: object, path: str) -> ExitCriteria:
        if not isinstance(tree, dict):
            self.fail(path, 'expected {"segment_exited": [...], "events": [...]}')
        self.only(tree, path, {"segment_exited", "events"})
        segments, events = tree.get("segment_exited", []), tree.get("events", [])
        if not isinstance(segments, list):
            self.fail(f"{path}.segment_exited", "expected an array of segment ids")
        if not isinstance(events, list):
            self.fail(f"{path}.events", "expected an array of events")
        return ExitCriteria(
            tuple(self.text(s, f"{path}.segment_exited[{i}]") for i, s in enumerate(segments)),
            tuple(self.event_match(e, f"{path}.events[{i}]") for i, e in enumerate(events)))

    def entry(self, tree: object, path: str) -> Entry:
        if not isinstance(tree, dict):
            self.fail(path, 'expected {"mode": ..., "cooldown": ..., "cap": ..., "window": ...}')
        self.only(tree, path, {"mode", "cooldown", "cap", "window"})
        mode = self.choice(tree.get("mode", "once"), ENTRY_MODES, f"{path}.mode")
        cooldown = None
        if mode == "cooldown":
            cooldown = self.duration(tree.get("cooldown"), f"{path}.cooldown")
        elif "cooldown" in tree:
            self.fail(f"{path}.cooldown", 'only with "mode": "cooldown"')
        cap = tree.get("cap")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            self.fail(f"{path}.cap", "expected a whole number ≥ 1")
        window = tree.get("window", {})
        if not isinstance(window, dict) or ("window" in tree and not window):
            self.fail(f"{path}.window", 'expected {"from": <date-time>, "until": <date-time>} (either may be left out)')
        self.only(window, f"{path}.window", {"from", "until"})
        start = self.instant(window["from"], f"{path}.window.from") if "from" in window else None
        until = self.instant(window["until"], f"{path}.window.until") if "until" in window else None
        if start and until and start >= until:
            self.fail(f"{path}.window.until", "must be after window.from")
        return Entry(mode, cooldown, cap, start, until)

    # -- the graph ----------------------------------------------------------------------
    def check_graph(self, start: str, nodes: dict) -> None:
        if start not in nodes:
            self.fail("start", f"unknown node {start!r}")
        for node_id, node in nodes.items():
            for field, target in successors(node):
                if target not in nodes:
                    self.fail(f"nodes.{node_id}.{field}", f"unknown node {target!r}")
        reached, todo = {start}, [start]
        while todo:
            for _, target in successors(nodes[todo.pop()]):
                if target not in reached:
                    reached.add(target)
                    todo.append(target)
        for node_id in nodes:
            if node_id not in reached:
                self.fail(f"nodes.{node_id}", "not reachable from start")
        self.check_loops_wait(start, nodes)
        ending = {i for i, n in nodes.items() if not successors(n)}
        grew = True
        while grew:
            grew = False
            for node_id, node in nodes.items():
                if node_id not in ending and any(t in ending for _, t in successors(node)):
                    ending.add(node_id)
                    grew = True
        if start not in ending:
            self.fail("nodes", "no path from start reaches an exit or a node without next")

    def check_loops_wait(self, start: str, nodes: dict) -> None:
        """Refuses a loop through no wait, naming the field that closes it: it would spin forever."""
        state: dict[str, str] = {}  # visiting | done

        def visit(node_id: str, trail: list[str]) -> None:
            state[node_id] = "visiting"
            for field, target in successors(nodes[node_id]):
                if isinstance(nodes[target], WAITS):
                    continue
                if state.get(target) == "visiting":
                    stack = [*trail, node_id]
                    loop = " → ".join([*stack[stack.index(target):], target])
                    self.fail(f"nodes.{node_id}.{field}", f"loop {loop} passes through no wait")
                if target not in state:
                    visit(target, [*trail, node_id])
            state[node_id] = "done"

        for node_id in nodes:
            if node_id not in state and not isinstance(nodes[node_id], WAITS):
                visit(node_id, [])

    # -- leaves -------------------------------------------------------------------------
    def ref(self, tree: dict, key: str, path: str, required: bool = True) -> str | None:
        if key not in tree and not required:
            return None
        return self.text(tree.get(key), f"{path}.{key}")

    def time_of_day(self, value: object, path: str) -> time:
        match = _TIME_OF_DAY.fullmatch(value) if isinstance(value, str) else None
        if not match:
            self.fail(path, 'expected a time of day "HH:MM" (00:00 to 23:59)')
        return time(int(match[1]), int(match[2]))

    def days(self, value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not -366 <= value <= 366:
            self.fail(path, "expected a whole number of days from -366 to 366")
        return value

    def weight(self, value: object, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_WEIGHT:
            self.fail(path, f"expected a weight > 0 and at most {MAX_WEIGHT}")
        return value

    def instant(self, value: object, path: str) -> datetime:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None or "T" not in value:
            self.fail(path, "expected an ISO-8601 date-time with a zone, such as 2025-05-01T09:00:00+09:00")
        return limits.check_moment(parsed, path)

    def cron(self, value: object, path: str) -> str:
        fields = value.split() if isinstance(value, str) else []
        if len(fields) != 5:
            self.fail(path, 'expected a cron expression of 5 fields "minute hour day month weekday"')
        for text, (name, low, high) in zip(fields, _CRON_FIELDS):
            for item in text.split(","):
                match = _CRON_ITEM.fullmatch(item)
                first, last = (int(match[2]), int(match[3] or match[2])) if match and match[2] else (low, high)
                if not match or not low <= first <= last <= high or (match[4] and int(match[4]) == 0):
                    self.fail(path, f"bad {name} field {text!r}: expected *, N, N-M, lists and /step "
                                    f"within {low}-{high}")
        return " ".join(fields)
