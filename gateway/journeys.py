"""Journeys with the admin key: definitions and their lifecycle (draft, published, paused,
archived), versions, stats, a profile's runs with their steps, and simulations of a saved
or an unsaved definition."""

from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from gateway import auth
from gateway import answers
from gateway.answers import answer
from gateway.edge import AwareMoment, CheckedRoute, Description, Id, Name
from gateway.errors import ADMIN_ERRORS, ApiError
from gateway.rpc import context_of, rpc, time_json
from gateway.workspaces import Principal
from kit.transport import timestamp
from nudge.journey.v1 import journey_pb2 as pb
from nudge.journey.v1.journey_pb2_grpc import JourneyServiceStub

router = APIRouter(tags=["journeys"], route_class=CheckedRoute, responses=ADMIN_ERRORS)
Admin = Annotated[Principal, Depends(auth.admin)]


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def journey_json(journey: pb.Journey) -> dict:
    return {"id": journey.id, "name": journey.name, "description": journey.description, "status": journey.status,
            "version": journey.version, "definition": orjson.loads(journey.definition_json),
            "createdAt": time_json(journey, "created_at"), "updatedAt": time_json(journey, "updated_at")}


def _run_json(run: pb.Run) -> dict:
    return {"id": run.id, "journeyId": run.journey_id, "version": run.version, "profileId": run.profile_id,
            "status": run.status, "nodeId": run.node_id or None, "variant": run.variant or None,
            "endReason": run.end_reason or None, "enteredAt": time_json(run, "entered_at"),
            "endedAt": time_json(run, "ended_at"), "nextAt": time_json(run, "next_at")}


def _step_json(step: pb.Step) -> dict:
    return {"seq": step.seq, "nodeId": step.node_id or None, "kind": step.kind, "outcome": step.outcome or None,
            "detail": orjson.loads(step.detail_json) if step.detail_json else None, "at": time_json(step, "at")}


def _stats_json(stats: pb.JourneyStats) -> dict:
    return {"journeyId": stats.journey_id, "entered": stats.entered, "active": stats.active,
            "converted": stats.converted, "exited": stats.exited, "completed": stats.completed,
            "nodes": [{"nodeId": n.node_id, "reached": n.reached, "waiting": n.waiting, "outcomes": dict(n.outcomes)}
                      for n in stats.nodes]}


def _simulation_json(reply: pb.SimulateReply) -> dict:
    return {"steps": [{"at": time_json(s, "at"), "nodeId": s.node_id or None, "kind": s.kind,
                       "outcome": s.outcome or None, "channel": s.channel or None,
                       "templateId": s.template_id or None, "reason": s.reason or None,
                       "detail": orjson.loads(s.detail_json) if s.detail_json else None} for s in reply.steps],
            "endStatus": reply.end_status, "endReason": reply.end_reason or None,
            "endedAt": time_json(reply, "ended_at")}


class JourneyIn(BaseModel):
    """A definition, or a starter from `GET /v1/journey-templates` with its slots mapped."""
    id: str = Field("", max_length=64, description="generated when empty")
    name: Name | None = Field(None, description="required with a definition; from a starter, the starter's by default")
    description: Description = Field("", description="from a starter, the starter's by default")
    definition: dict[str, Any] | None = Field(None, description="trigger, start, nodes, goal, exit_criteria, entry")
    starter: Id | None = Field(None, description="a starter's id, instead of a definition")
    templates: dict[str, str] | None = Field(None, description="with a starter: template slot -> your template id; "
                                                               "a slot not given uses the template named like it")
    segments: dict[str, str] | None = Field(None, description="with a starter: segment slot -> your segment id; "
                                                              "every segment slot is required")


class JourneyPatch(BaseModel):
    name: Name | None = None
    description: Description | None = None
    definition: dict[str, Any] | None = Field(None, description="a change to a published or paused journey "
                                                                "publishes its next version")


class TimelineEventIn(BaseModel):
    event: Name
    at: AwareMoment
    properties: dict[str, Any] = Field(default_factory=dict)


class SimulationIn(BaseModel):
    profile: dict[str, Any] = Field(..., description="the synthetic person: {\"traits\": {...}, "
                                                     "\"consents\": {...}, \"segments\": [...]}")
    startAt: AwareMoment
    timeline: list[TimelineEventIn] = Field(..., max_length=1_000)
    until: AwareMoment | None = Field(None, description="default: startAt + 400 days; at most 3,660 days after it")


class UnsavedSimulationIn(SimulationIn):
    definition: dict[str, Any]


def _simulate_request(principal: Principal, body: SimulationIn, **journey: str) -> pb.SimulateRequest:
    """`journey`: the saved journey's `id`, or an unsaved `definition_json`."""
    message = pb.SimulateRequest(
        context=context_of(principal), profile_json=_json_text(body.profile), start_at=timestamp(body.startAt),
        timeline=[pb.TimelineEvent(event=e.event, at=timestamp(e.at), properties_json=_json_text(e.properties))
                  for e in body.timeline], **journey)
    if body.until is not None:
        message.until.CopyFrom(timestamp(body.until))
    return message


def _refused(field: str, reason: str) -> ApiError:
    return ApiError(422, "invalid_argument", f"{field}: {reason}", {"fields": [{"field": field, "reason": reason}]})


@router.post("/v1/journeys", responses=answer(answers.Journey, 201),
             status_code=201, summary="Create a journey (a draft until published), from a "
                                                      "definition or from a starter")
async def create_journey(body: JourneyIn, request: Request, principal: Admin) -> dict:
    if body.starter is not None:
        if body.definition is not None:
            raise _refused("starter", "give a definition or a starter, not both")
        return journey_json(await rpc(request).journey.CreateFromStarter(pb.CreateFromStarterRequest(
            context=context_of(principal), id=body.id, name=body.name or "", description=body.description,
            starter=body.starter, templates=body.templates or {}, segments=body.segments or {})))
    if body.definition is None:
        raise _refused("definition", "required (or a starter)")
    for field in ("templates", "segments"):
        if getattr(body, field) is not None:
            raise _refused(field, "only with a starter")
    if body.name is None:
        raise _refused("name", "required")
    return journey_json(await rpc(request).journey.CreateJourney(pb.CreateJourneyRequest(
        context=context_of(principal), id=body.id, name=body.name, description=body.description,
        definition_json=_json_text(body.definition))))


def _starter_json(starter: pb.JourneyStarter) -> dict:
    return {"id": starter.id, "name": starter.name, "description": starter.description, "source": starter.source,
            "templates": [{"slot": t.slot, "description": t.description, "channels": list(t.channels),
                           "advertising": t.advertising} for t in starter.templates],
            "segments": [{"slot": s.slot, "description": s.description, "rules": orjson.loads(s.rules_json)}
                         for s in starter.segments],
            "definition": orjson.loads(starter.definition_json)}


@router.get("/v1/journey-templates", responses=answer(answers.Starters),
            summary="The starter library: ready-made journeys to create one from")
async def list_starters(request: Request, principal: Admin) -> dict:
    reply = await rpc(request).journey.ListStarters(pb.ListStartersRequest(context=context_of(principal)))
    return {"journeyTemplates": [_starter_json(s) for s in reply.starters]}


@router.get("/v1/journey-templates/{template_id}", responses=answer(answers.Starter),
            summary="One starter: its slots and its definition")
async def get_starter(template_id: str, request: Request, principal: Admin) -> dict:
    return _starter_json(await rpc(request).journey.GetStarter(pb.StarterRef(
        context=context_of(principal), id=template_id)))


@router.get("/v1/journeys", responses=answer(answers.Journeys),
            summary="Journeys of the workspace, of one status if given")
async def list_journeys(request: Request, principal: Admin,
                        status: Literal["draft", "published", "paused", "archived"] | None = None) -> dict:
    reply = await rpc(request).journey.ListJourneys(pb.ListJourneysRequest(
        context=context_of(principal), status=status or ""))
    return {"journeys": [journey_json(j) for j in reply.journeys]}


@router.post("/v1/journeys/simulate", responses=answer(answers.Simulation),
             summary="Replay a timeline through an unsaved definition")
async def simulate_unsaved(body: UnsavedSimulationIn, request: Request, principal: Admin) -> dict:
    return _simulation_json(await rpc(request).journey.Simulate(_simulate_request(
        principal, body, definition_json=_json_text(body.definition))))


@router.get("/v1/journeys/{journey_id}", responses=answer(answers.Journey),
            summary="A journey with its latest definition")
async def get_journey(journey_id: str, request: Request, principal: Admin) -> dict:
    return journey_json(await rpc(request).journey.GetJourney(pb.JourneyRef(
        context=context_of(principal), id=journey_id)))


@router.patch("/v1/journeys/{journey_id}", responses=answer(answers.Journey),
              summary="Rename, describe or change the definition of a journey")
async def update_journey(journey_id: str, body: JourneyPatch, request: Request, principal: Admin) -> dict:
    given = body.model_dump(exclude_unset=True, exclude_none=True)
    if not given:
        raise ApiError(422, "invalid_argument", "body: give at least one of name, description, definition",
                       {"field": "body"})
    message = pb.UpdateJourneyRequest(context=context_of(principal), id=journey_id)
    if "name" in given:
        message.name = body.name
    if "description" in given:
        message.description = body.description
    if "definition" in given:
        message.definition_json = _json_text(body.definition)
    return journey_json(await rpc(request).journey.UpdateJourney(message))


@router.delete("/v1/journeys/{journey_id}", status_code=204, summary="Delete a draft or archived journey")
async def delete_journey(journey_id: str, request: Request, principal: Admin) -> Response:
    await rpc(request).journey.DeleteJourney(pb.JourneyRef(context=context_of(principal), id=journey_id))
    return Response(status_code=204)


def _transition(action: str, method: Callable[[JourneyServiceStub], Any], summary: str) -> None:
    """A lifecycle route; `method` picks the journey service's RPC, e.g. `lambda journey: journey.PublishJourney`."""
    @router.post(f"/v1/journeys/{{journey_id}}/{action}", responses=answer(answers.Journey),
                 summary=summary, name=f"{action}_journey")
    async def transition(journey_id: str, request: Request, principal: Admin) -> dict:
        return journey_json(await method(rpc(request).journey)(pb.JourneyRef(
            context=context_of(principal), id=journey_id)))


_transition("publish", lambda journey: journey.PublishJourney,
            "Publish the definition as the next version; new entries start")
_transition("pause", lambda journey: journey.PauseJourney, "Stop new entries and hold every run's timers")
_transition("resume", lambda journey: journey.ResumeJourney, "Resume entries and the held timers")
_transition("archive", lambda journey: journey.ArchiveJourney, "End the journey: no new entries, live runs end")


@router.get("/v1/journeys/{journey_id}/versions", responses=answer(answers.Versions),
            summary="Published versions, oldest first")
async def list_versions(journey_id: str, request: Request, principal: Admin) -> dict:
    reply = await rpc(request).journey.ListVersions(pb.JourneyRef(context=context_of(principal), id=journey_id))
    return {"versions": [{"version": v.version, "definition": orjson.loads(v.definition_json),
                          "publishedAt": time_json(v, "published_at")} for v in reply.versions]}


@router.get("/v1/journeys/{journey_id}/stats", responses=answer(answers.JourneyStats),
            summary="Entered, active, converted, exited, completed; per node")
async def journey_stats(journey_id: str, request: Request, principal: Admin) -> dict:
    return _stats_json(await rpc(request).journey.GetStats(pb.JourneyRef(
        context=context_of(principal), id=journey_id)))


@router.post("/v1/journeys/{journey_id}/simulate", responses=answer(answers.Simulation),
             summary="Replay a timeline through a journey's latest definition")
async def simulate_saved(journey_id: str, body: SimulationIn, request: Request, principal: Admin) -> dict:
    return _simulation_json(await rpc(request).journey.Simulate(
        _simulate_request(principal, body, id=journey_id)))


@router.get("/v1/profiles/{profile_id}/journey-runs", responses=answer(answers.Runs),
            summary="A profile's journey runs, newest first")
async def list_runs(profile_id: str, request: Request, principal: Admin, journeyId: str = "") -> dict:
    reply = await rpc(request).journey.ListRuns(pb.ListRunsRequest(
        context=context_of(principal), profile_id=profile_id, journey_id=journeyId))
    return {"runs": [_run_json(r) for r in reply.runs]}


@router.get("/v1/journey-runs/{run_id}", responses=answer(answers.RunWithSteps),
            summary="One run with every step it went through")
async def get_run(run_id: str, request: Request, principal: Admin) -> dict:
    run = await rpc(request).journey.GetRun(pb.GetRunRequest(context=context_of(principal), id=run_id))
    return {**_run_json(run), "steps": [_step_json(s) for s in run.steps]}
