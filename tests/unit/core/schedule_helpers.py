"""Small builders for the schedule tests: times in UTC, a fold loop, what it started."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from replayflow.core.messages import StartWorkflow
from replayflow.core.schedule_messages import CreateSchedule, ScheduleCommand
from replayflow.core.schedule_spec import ScheduleSpec
from replayflow.core.schedule_state import (
    Overlap,
    ScheduleAction,
    SchedulePolicies,
    ScheduleState,
)
from replayflow.core.schedules import ScheduleDecision, decide_schedule

HOUR = 3_600_000
MINUTE = 60_000


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def hourly(**spec: object) -> ScheduleSpec:
    return ScheduleSpec(cron=("0 * * * *",), **spec)  # type: ignore[arg-type]


@dataclass
class Fold:
    """Folds commands into one schedule, keeping every decision."""

    state: ScheduleState | None = None
    decisions: list[ScheduleDecision] = field(default_factory=list)

    def __call__(self, command: ScheduleCommand, now: int) -> ScheduleDecision:
        decision = decide_schedule(self.state, command, now)
        assert decision.rejected is None, decision.rejected
        self.state = decision.state
        self.decisions.append(decision)
        return decision

    @property
    def live(self) -> ScheduleState:
        assert self.state is not None
        return self.state

    def started(self) -> list[str]:
        return [
            c.instance_id
            for d in self.decisions
            for c in d.commands
            if isinstance(c, StartWorkflow)
        ]

    def events(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for d in self.decisions for e in d.events if isinstance(e, kind)]


def created(
    spec: ScheduleSpec | None = None,
    now: int = 0,
    overlap: Overlap = Overlap.ALLOW_ALL,
    catchup_ms: int = 5 * MINUTE,
    pause_on_failure: bool = False,
    schedule_id: str = "nightly",
) -> Fold:
    fold = Fold()
    fold(
        CreateSchedule(
            schedule_id=schedule_id,
            spec=spec or hourly(),
            action=ScheduleAction(workflow="report", input='{"x":1}'),
            policies=SchedulePolicies(
                overlap=overlap, catchup_window_ms=catchup_ms, pause_on_failure=pause_on_failure
            ),
        ),
        now,
    )
    return fold
