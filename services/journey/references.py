"""What a journey refers to outside itself — the segments and templates it names (and the
field naming each, for errors) and the template variables its sends will have — for the
checks the service makes of the segment and dispatch services on save and publish. Pure."""

from services.journey.nodes import (BroadcastTrigger, Condition, DateTraitTrigger, EventTrigger, Journey, Send,
                                    SegmentTrigger)
import rules


def segment_fields(journey: Journey) -> dict[str, str]:
    """Each segment the journey names → the field that first names it (`trigger.segment`,
    `exit_criteria.segment_exited[0]`, `nodes.<id>.rule`), in definition order: what an error names."""
    found: dict[str, str] = {}
    if isinstance(journey.trigger, (SegmentTrigger, BroadcastTrigger)):
        found[journey.trigger.segment_id] = "trigger.segment"
    for i, segment_id in enumerate(journey.exit_criteria.segment_exited):
        found.setdefault(segment_id, f"exit_criteria.segment_exited[{i}]")
    for node_id, node in journey.nodes.items():
        if isinstance(node, Condition):
            for segment_id in sorted(rules.referenced_segments(node.rule)):
                found.setdefault(segment_id, f"nodes.{node_id}.rule")
    return found


# What a journey send gives its template (engine.RunState.send_variables): `profile` (the
# person's traits), `event` (the properties of the event that entered the run; event
# triggers only) and `journey` with these fields.
JOURNEY_VARIABLES = ("id", "version", "run_id", "variant")


def missing_variable(journey: Journey, needed: list[str]) -> str | None:
    """The first variable a template needs (`event.seq`, `journey.coupon`: dispatch's
    GetTemplate `variables`) that this journey's sends will not have, with why; else None."""
    for variable in needed:
        namespace, _, name = variable.partition(".")
        if namespace == "event" and not isinstance(journey.trigger, EventTrigger):
            kind = {SegmentTrigger: "a segment", DateTraitTrigger: "a date trait",
                    BroadcastTrigger: "a broadcast"}[type(journey.trigger)]
            return (f"{variable}, but no event enters the runs of a journey triggered by {kind} (event is "
                    f"empty there; or give it a default: {{{{ {variable} | default('') }}}})")
        if namespace == "journey" and name not in (*JOURNEY_VARIABLES, "*"):  # `*`: a computed key may be one
            return f"{variable}, but a journey send has only {', '.join('journey.' + v for v in JOURNEY_VARIABLES)}"
    return None


def template_fields(journey: Journey) -> dict[str, str]:
    """Each template the journey sends → the field of the first send node naming it."""
    found: dict[str, str] = {}
    for node_id, node in journey.nodes.items():
        if isinstance(node, Send):
            found.setdefault(node.template_id, f"nodes.{node_id}.template")
    return found


def referenced_segments(journey: Journey) -> set[str]:
    return set(segment_fields(journey))


def referenced_templates(journey: Journey) -> set[str]:
    return set(template_fields(journey))
