"""What the schedule routes accept and answer, declared once (pydantic models for the
inputs, typed dicts for the answers), as request_models.py and reply_models.py do for
instances. A body becomes an rf.Schedule, so the API refuses what the engine would (a
bad cron, zone, duration or policy) with the engine's own words."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, NotRequired

from pydantic import BeforeValidator, Field, StrictStr
from typing_extensions import TypedDict

from replayflow.api.request_models import (
    MAX_REASON,
    Body,
    EpochMs,
    PathParams,
    Payload,
    Query,
    Version,
    WorkflowName,
    _integer,
)
from replayflow.core import names
from replayflow.core.schedule_declaration import Schedule
from replayflow.core.schedule_state import MAX_SCHEDULE_ID_LENGTH, Overlap, check_schedule_id

MAX_CRON = 20  # expressions per schedule

OverlapName = Overlap  # its values: skip, buffer_one, buffer_all, cancel_other, ...
ScheduleId = Annotated[
    str,
    BeforeValidator(check_schedule_id),
    Field(
        json_schema_extra={
            "pattern": f"^(?:{names.INSTANCE_ID.pattern})$",
            "maxLength": MAX_SCHEDULE_ID_LENGTH,
        },
        description="the schedule id: '<id>-<slot>' names its runs",
    ),
]
# A duration: "15m", "1h30m", ISO 8601 "PT15M", or a number of seconds.
DurationValue = Annotated[
    StrictStr | float, Field(description="'15m', '1h30m', 'PT15M', or a number of seconds")
]
Note = Annotated[StrictStr, Field(max_length=MAX_REASON)]


def _cron_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Crons = Annotated[
    list[Annotated[StrictStr, Field(max_length=200)]],
    BeforeValidator(_cron_list),
    Field(max_length=MAX_CRON, description="cron expressions (one string, or a list)"),
]


class ScheduleFields(Body):
    """When a schedule fires, what it starts, and its policies (as rf.Schedule)."""

    cron: Crons | None = None
    every: DurationValue | None = Field(None, description="an interval, e.g. '15m'")
    offset: DurationValue | None = Field(None, description="the interval's phase, e.g. '2m'")
    after: DurationValue | None = Field(
        None, description="instead of cron/every: rerun this long after each run ended"
    )
    timezone: StrictStr | None = Field(None, description="IANA zone for cron (default UTC)")
    start: EpochMs | None = Field(None, description="no slot before (epoch ms)")
    end: EpochMs | None = Field(None, description="no slot after (epoch ms)")
    jitter: DurationValue | None = Field(None, description="start runs up to this late")
    input: Payload = None
    version: Version | None = Field(None, description="workflow version (default: newest)")
    overlap: OverlapName | None = Field(None, description="default skip")
    catchup_window: DurationValue | None = Field(None, description="default '5m'")
    pause_on_failure: bool | None = None

    def schedule(self, **extra: Any) -> Schedule:
        """The rf.Schedule this body describes (ValidationError: what is wrong)."""
        given = {
            "cron": tuple(self.cron or ()),
            "every": self.every,
            "offset": self.offset,
            "after": self.after,
            "tz": self.timezone,
            "start": self.start,
            "end": self.end,
            "jitter": self.jitter,
            "input": self.input,
            "version": self.version,
            "overlap": self.overlap,
            "catchup_window": self.catchup_window,
            "pause_on_failure": self.pause_on_failure,
            **extra,
        }
        return Schedule(**{k: v for k, v in given.items() if v is not None})


class CreateScheduleRequest(ScheduleFields):
    id: ScheduleId
    workflow: WorkflowName
    paused: bool | None = Field(None, description="create it paused")
    note: Note | None = None
    upsert: bool | None = Field(None, description="update it when it exists")


class UpdateScheduleRequest(ScheduleFields):
    workflow: WorkflowName | None = Field(
        None, description="with it, what runs (workflow, input, version) is replaced too"
    )


class NoteRequest(Body):
    note: Note | None = None


class TriggerRequest(Body):
    overlap: OverlapName | None = Field(None, description="for this run (default: the policy)")


class BackfillRequest(Body):
    start: EpochMs = Field(description="first time of the range, inclusive (epoch ms)")
    end: EpochMs = Field(description="end of the range, exclusive (epoch ms)")
    overlap: OverlapName | None = Field(None, description="for these runs (default: the policy)")


class SchedulePath(PathParams):
    MATCH: ClassVar[dict[str, str]] = {"id": ".+"}

    id: ScheduleId


NextCount = Annotated[int, Field(ge=0, le=100), BeforeValidator(_integer)]
PageSize = Annotated[int, Field(ge=1, le=1000), BeforeValidator(_integer)]


class ScheduleQuery(Query):
    next: NextCount = Field(5, description="how many next fire times (default 5)")


class ScheduleListQuery(Query):
    limit: PageSize = Field(100, description="page size (default 100)")
    after: StrictStr | None = Field(None, description="next_after of the last page")


# ------------------------------------------------------------------------- answers


class IntervalShape(TypedDict):
    every_ms: int
    offset_ms: int


class SpecShape(TypedDict):
    cron: list[str]
    intervals: list[IntervalShape]
    timezone: str
    start_ms: int | None
    end_ms: int | None
    jitter_ms: int
    rerun_after_ms: int | None


class ActionShape(TypedDict):
    workflow: str
    input: str  # JSON text
    version: str | None


class PoliciesShape(TypedDict):
    overlap: str
    catchup_window_ms: int
    pause_on_failure: bool


class RunShape(TypedDict):
    slot_ms: int
    instance_id: str
    kind: str
    started_at: int
    status: str
    ended_at: int | None


class ScheduleShape(TypedDict):
    """A schedule: definition, state, next fire times (epoch ms) and recent runs."""

    id: str
    spec: SpecShape
    action: ActionShape
    policies: PoliciesShape
    paused: bool
    note: str
    created_at: int
    updated_at: int
    next_fire_times: list[int]
    recent_runs: list[RunShape]
    running: list[str]
    buffered: list[int]
    skipped: int
    missed: list[list[int]]


class SchedulePage(TypedDict):
    items: list[ScheduleShape]
    next_after: str | None


class ScheduleAccepted(TypedDict):
    id: str
    requested: str
    instance_id: NotRequired[str]  # trigger: the run's instance id
