"""The pure rules under every run: entry rules, the calendar (wait until, date triggers,
cron), and the split's stable draw."""

from collections import Counter
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.journey.definition import Branch, Entry, Split, WaitUntil
from services.journey.engine import (HOLDOUT, choose_branch, next_cron, next_date_occurrence, next_time_of_day,
                                     next_wait_until)
from services.journey.entry import may_enter

KST = ZoneInfo("Asia/Seoul")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=KST)  # a Monday


def test_entry_once_every_time_cooldown_cap_and_window():
    earlier = [NOW - timedelta(days=3)]
    assert may_enter(Entry("once"), [], NOW, 0) and not may_enter(Entry("once"), earlier, NOW, 1)
    assert may_enter(Entry("every_time"), earlier * 5, NOW, 5)
    cooldown = Entry("cooldown", cooldown=timedelta(days=7))
    assert not may_enter(cooldown, earlier, NOW, 1)
    assert may_enter(cooldown, earlier, NOW + timedelta(days=4), 1)
    assert not may_enter(Entry("every_time", cap=10), [], NOW, 10) and may_enter(Entry("every_time", cap=10), [], NOW, 9)
    window = Entry("every_time", active_from=NOW, active_until=NOW + timedelta(days=1))
    assert [may_enter(window, [], NOW + timedelta(hours=h), 0) for h in (-1, 0, 23, 24)] == [False, True, True, False]


def test_wait_until_a_time_of_day_on_given_weekdays_in_the_profiles_zone():
    assert next_time_of_day(NOW, time(9), (), KST) == NOW.replace(hour=9) + timedelta(days=1)
    assert next_time_of_day(NOW, time(10), (), KST) == NOW  # the moment itself counts
    assert next_time_of_day(NOW, time(9), ("sat", "sun"), KST) == datetime(2026, 3, 7, 9, 0, tzinfo=KST)
    new_york = next_wait_until(WaitUntil("x", time(9)), {"timezone": "America/New_York"}, NOW)
    assert new_york == datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("America/New_York"))  # still Sunday night there


def test_wait_until_a_date_trait_with_an_offset():
    node = WaitUntil("x", time(10), trait="renewal", offset_days=-3)
    assert next_wait_until(node, {"renewal": "2026-04-01"}, NOW) == datetime(2026, 3, 29, 10, tzinfo=KST)
    assert next_wait_until(node, {}, NOW) is None


def test_date_trigger_yearly_with_offset_and_the_29th_of_february():
    assert next_date_occurrence("1990-03-05", time(9), -3, True, {}, NOW) == datetime(2027, 3, 2, 9, tzinfo=KST)
    assert next_date_occurrence("1990-03-05", time(9), 0, True, {}, NOW) == datetime(2026, 3, 5, 9, tzinfo=KST)
    assert next_date_occurrence("2000-02-29", time(9), 0, True, {}, NOW) == datetime(2027, 2, 28, 9, tzinfo=KST)
    assert next_date_occurrence("2026-01-01", time(9), 0, False, {}, NOW) is None  # once, and past
    assert next_date_occurrence("not a date", time(9), 0, True, {}, NOW) is None


def test_cron_reads_the_workspace_zone():
    assert next_cron("0 9 * * 1-5", NOW, KST) == datetime(2026, 3, 3, 9, 0, tzinfo=KST)
    assert next_cron("0 9 * * 1-5", datetime(2026, 3, 6, 9, 0, tzinfo=KST), KST) == datetime(2026, 3, 9, 9, tzinfo=KST)


def test_a_split_draws_by_weight_stably_and_keeps_a_holdout():
    split = Split((Branch(45, "a_path"), Branch(45, "b_path")), holdout=10)
    draws = Counter(choose_branch(split, f"run-{n}", "ab")[0] for n in range(20_000))
    assert set(draws) == {"a", "b", HOLDOUT}
    assert abs(draws["a"] / 20_000 - 0.45) < 0.02 and abs(draws[HOLDOUT] / 20_000 - 0.10) < 0.01
    assert choose_branch(split, "run-7", "ab") == choose_branch(split, "run-7", "ab")  # a replay draws the same
    assert [choose_branch(split, f"run-{n}", "ab") for n in range(50) if
            choose_branch(split, f"run-{n}", "ab")[0] == HOLDOUT][0][1] == "a_path"  # holdout walks branch a's waits


def test_goals_exits_and_waited_events_go_by_event_time():
    from services.journey.definition import parse_journey
    from services.journey.engine import RunState, Stepper, happened_during

    run = RunState(id="r", workspace_id="w", journey_id="j", version=1, profile_id="p", entered_at=NOW,
                   node_id="await", context={"event": {"id": "entering"}})
    assert happened_during(run, NOW) and happened_during(run, NOW + timedelta(seconds=1), "later")
    assert not happened_during(run, NOW - timedelta(seconds=1), "older")   # late and older: nothing
    assert not happened_during(run, NOW, "entering")                     # the event that entered it

    journey = parse_journey({"trigger": {"kind": "event", "event": "Signed Up"}, "start": "await", "nodes": {
        "await": {"kind": "wait_for_event", "event": "Order Completed", "timeout": "P1D", "next": "done",
                  "timeout_next": "done"}, "done": {"kind": "exit"}}})
    began = NOW + timedelta(hours=1)
    run.wait = {"until": (began + timedelta(days=1)).isoformat(), "event": "Order Completed",
                "since": began.isoformat()}
    stepper = Stepper(journey, None)
    assert stepper.event_arrived(run, "Order Completed", {}, began, "e1", occurred_at=began - timedelta(minutes=1)) == []
    assert run.wait is not None
    steps = stepper.event_arrived(run, "Order Completed", {}, began, "e2", occurred_at=began)
    assert [(s.kind, s.outcome) for s in steps] == [("event", "Order Completed")] and run.node_id == "done"
