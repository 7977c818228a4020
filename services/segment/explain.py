"""Why a profile is in or out of a rule: each node of the tree with what was measured for
it (a trait's value, a count, a sum, a time) and the verdict in words. Pure."""

from datetime import datetime

from rules.evaluation import EventSeries, ProfileFacts, evaluate, measure, rfm_scores, series_key
from rules import (All, Any, ConsentCondition, EventCondition, LastSeen, Not, RfmCondition,
                   SegmentRef, TraitCondition)


def explain(tree: dict, rule, facts: ProfileFacts, now: datetime, path: str = "rules") -> list[dict]:
    """Depth first, the root first: {path, condition, satisfied, value, reason} per node."""
    satisfied = evaluate(rule, facts, now).member
    value, reason = _describe(rule, facts, now, satisfied)
    found = [{"path": path, "condition": tree, "satisfied": satisfied, "value": value, "reason": reason}]
    match rule:
        case All(children) | Any(children):
            key = "all" if isinstance(rule, All) else "any"
            for i, (child_tree, child) in enumerate(zip(tree[key], children, strict=True)):
                found += explain(child_tree, child, facts, now, f"{path}.{key}[{i}]")
        case Not(child):
            found += explain(tree["not"], child, facts, now, f"{path}.not")
    return found


def _describe(rule, facts: ProfileFacts, now: datetime, satisfied: bool) -> tuple[object, str]:
    verdict = "holds" if satisfied else "does not hold"
    match rule:
        case All(children) | Any(children):
            held = sum(evaluate(c, facts, now).member for c in children)
            need = "all" if isinstance(rule, All) else "at least one"
            return held, f"{held} of {len(children)} conditions hold; {need} must"
        case Not():
            return None, f"the inner condition {'does not hold' if satisfied else 'holds'}"
        case TraitCondition(trait=trait):
            if trait not in facts.traits:
                return None, f"trait {trait!r} is not set, so the condition {verdict}"
            return facts.traits[trait], f"trait {trait!r} is {facts.traits[trait]!r}, so the condition {verdict}"
        case EventCondition():
            series = facts.series.get(series_key(rule), EventSeries())
            if rule.measure in ("first", "last"):
                past = [t for t in series.times if t <= now]
                if not past:
                    return None, f"no matching {rule.event!r} event yet"
                at = past[0] if rule.measure == "first" else past[-1]
                return at.isoformat(), f"the {rule.measure} matching {rule.event!r} was at {at.isoformat()}"
            measured, _ = measure(rule, series, now)
            span = f"in the last {rule.within}" if rule.within else "ever"
            what = "matching events" if rule.measure == "count" else f"{rule.measure} of {rule.property!r}"
            return measured, f"{what} of {rule.event!r} {span}: {measured}; needs {rule.op} {rule.value}"
        case LastSeen(op, ago):
            if facts.last_seen is None:
                return None, "never seen"
            return facts.last_seen.isoformat(), (f"last seen {now - facts.last_seen} ago; needs {op} {ago}")
        case RfmCondition():
            scores, _ = rfm_scores(facts, now)
            if scores is None:
                return None, "no orders (or no RFM edges yet), so no RFM scores"
            return scores, f"RFM scores {scores}, so the condition {verdict}"
        case SegmentRef(segment_id):
            return satisfied, f"{'a member' if satisfied else 'not a member'} of segment {segment_id}"
        case ConsentCondition(purpose=purpose):
            state = facts.consent.get(purpose)
            if state is None:
                return None, f"consent {purpose!r} was never recorded, so the condition {verdict}"
            held = "granted" if state["granted"] else "withdrawn"
            return state, f"consent {purpose!r} is {held} since {state['at']}, so the condition {verdict}"
    return None, verdict
