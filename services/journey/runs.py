"""The core every path of the journey service shares: the live journeys and their parsed
versions, a profile's entry into a journey, and writing runs that moved.

Exactly once in effect: a run's state, its steps, its next timer and its outbox entries are
written in one transaction after the run moved. A replica that dies mid-way leaves the
last committed state and a leased timer; the next claimant replays the same steps, and
every send carries an idempotency key made of run, node and step number, so dispatch
answers the first result instead of sending again.
"""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker

from kit.clock import Clock
from kit.outbox import Outbox
from kit.payloads import JourneyStep
from kit.tracing import current_trace_headers
from services.journey.clients import Platform
from services.journey.definition import Journey, parse_journey
from services.journey.engine import RunState, StepRecord, end
from services.journey.entry import may_enter
from services.journey.repository import JourneyRepository


@dataclass(frozen=True)
class LiveJourney:
    workspace_id: str
    id: str
    status: str
    version: int
    journey: Journey


class Runs:
    """State and steps shared by the use cases, the stream handlers and the scheduled loops
    (they are mixed into one `JourneyService`, so one object holds one cache of versions)."""

    def __init__(self, sessions: async_sessionmaker, outbox: Outbox, clock: Clock, platform: Platform, *,
                 owner: str, timer_batch: int = 200, lease: timedelta = timedelta(seconds=30),
                 step_concurrency: int = 32, on_commit=lambda: None) -> None:
        self.sessions = sessions
        self.outbox = outbox
        self.clock = clock
        self.platform = platform
        self.owner = owner
        self.timer_batch = timer_batch
        self.lease = lease
        self.step_concurrency = step_concurrency
        self.on_commit = on_commit
        self.timers_wanted = asyncio.Event()
        self.timer_sweeps = 0  # timer passes that took all that was due (scheduled.py)
        self._parsed: dict[tuple[str, str, int], Journey] = {}  # versions never change

    # -- entering and writing runs ----------------------------------------------------------
    async def _enter(self, repo: JourneyRepository, journey: LiveJourney, profile_id: str, at: datetime,
                     now: datetime, context: dict, trace: dict | None = None,
                     scheduled: bool = False) -> RunState | None:
        """A new run, if the entry rules allow it; it starts moving on the next timer pass, in
        the trace of what caused the entry (`trace`: the event's; else the current span's).
        A scheduled entry (a date, a broadcast) counts its waits from its due moment `at`, so a
        birthday's D+7 is 09:00 a week later however late the entry pass ran; an event's from now."""
        if await repo.is_erased(journey.workspace_id, profile_id):
            return None  # an event or segment change of someone erased, arriving after the erasure
        rules = journey.journey.entry
        previous = await repo.entries_of(journey.workspace_id, journey.id, profile_id)
        entered_in_all = 0
        if rules.cap is not None:
            await repo.journey(journey.workspace_id, journey.id, lock=True)  # the cap is counted under a lock
            entered_in_all = await repo.count_entries(journey.workspace_id, journey.id)
        if not may_enter(rules, previous, at, entered_in_all):
            return None
        run = RunState(id=str(uuid.uuid4()), workspace_id=journey.workspace_id, journey_id=journey.id,
                       version=journey.version, profile_id=profile_id, entered_at=at, node_id=journey.journey.start,
                       seq=1, context=context | {"trace": trace if trace is not None else current_trace_headers()})
        if not await repo.insert_run(run):
            return None  # already in a live run of this journey
        await self._write(repo, [(run, [StepRecord(1, "", "entered", "entered", at, context)])],
                          {run.id: min(at, now) if scheduled else now}, save=False)
        self.timers_wanted.set()
        return run

    async def _write(self, repo: JourneyRepository, changed: list[tuple[RunState, list[StepRecord]]],
                     timers: dict[str, datetime | None], save: bool = True) -> None:
        """Runs, their new steps, their timers and the stream entries, in the caller's transaction."""
        if not changed:
            return
        if save:
            await repo.save_runs([run for run, _ in changed])
        by_id = {run.id: run for run, _ in changed}
        await repo.set_timers([(by_id[run_id], due) for run_id, due in timers.items()])
        await repo.add_steps([(run, record) for run, records in changed for record in records])
        entries = []
        for run, records in changed:
            trace = run.context.get("trace")
            if trace is None:
                trace = current_trace_headers()
            for record in records:
                step = JourneyStep(run.journey_id, run.version, run.id, record.node_id, record.kind, record.outcome,
                                   run.variant, record.seq, record.detail)
                entries.append(self.outbox.event(step, run.workspace_id, run.profile_id, record.at, trace))
        if entries:
            await self.outbox.add(repo.session, entries)

    async def _live_journeys(self, repo: JourneyRepository, workspace_ids: set[str]) -> dict[str, list[LiveJourney]]:
        found: dict[str, list[LiveJourney]] = {}
        for row in await repo.live_journeys(workspace_ids):
            journey = await self._version(repo, row.workspace_id, row.id, row.version)
            found.setdefault(row.workspace_id, []).append(
                LiveJourney(row.workspace_id, row.id, row.status, row.version, journey))
        return found

    async def _version(self, repo: JourneyRepository, workspace_id: str, journey_id: str, version: int) -> Journey:
        key = (workspace_id, journey_id, version)
        if key not in self._parsed:
            self._parsed[key] = parse_journey((await repo.definitions({key}))[key])
        return self._parsed[key]


def finish(run: RunState, status: str, reason: str, outcome: str, at: datetime,
           detail: dict | None = None) -> StepRecord:
    """Ends a live run from outside its graph (goal, exit criteria, archive, merge, erasure)."""
    end(run, status, reason, at)
    run.seq += 1
    return StepRecord(run.seq, run.node_id, status, outcome, at, detail or {})
