"""Schedule commands (requests, keyed `schedule:<id>` on replayflow.commands) and the
facts a schedule records. Times are epoch milliseconds; the fold gets `now` from the
orchestrator, so no command needs a clock of its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from replayflow.core.schedule_spec import ScheduleSpec
from replayflow.core.schedule_state import FireKind, Overlap, ScheduleAction, SchedulePolicies

# ---------------------------------------------------------------------------------------
# Commands


@dataclass(frozen=True)
class CreateSchedule:
    """Create a schedule. When it exists: with `upsert` it is updated (so every
    orchestrator may declare the schedules in its code at start, and one exists);
    without, an identical definition is a no-op and a different one is rejected."""

    schedule_id: str
    spec: ScheduleSpec
    action: ScheduleAction
    policies: SchedulePolicies = field(default_factory=SchedulePolicies)
    paused: bool = False
    note: str = ""
    upsert: bool = False


@dataclass(frozen=True)
class UpdateSchedule:
    """Replace the parts given; the change applies from the first slot after now."""

    schedule_id: str
    spec: ScheduleSpec | None = None
    action: ScheduleAction | None = None
    policies: SchedulePolicies | None = None


@dataclass(frozen=True)
class DeleteSchedule:
    """Remove the schedule; the runs it started go on."""

    schedule_id: str


@dataclass(frozen=True)
class PauseSchedule:
    schedule_id: str
    note: str = ""


@dataclass(frozen=True)
class UnpauseSchedule:
    schedule_id: str
    note: str = ""


@dataclass(frozen=True)
class TriggerSchedule:
    """Start a run now. `at_ms` names the slot (the client stamps it, so a retried
    request names the same run); None: the orchestrator's now. `overlap` overrides the
    schedule's policy for this run."""

    schedule_id: str
    at_ms: int | None = None
    overlap: Overlap | None = None


@dataclass(frozen=True)
class BackfillSchedule:
    """Run every slot in [start_ms, end_ms) that this schedule has not started, under
    `overlap` (None: the schedule's policy). The range ends at now at the latest."""

    schedule_id: str
    start_ms: int
    end_ms: int
    overlap: Overlap | None = None


@dataclass(frozen=True)
class FireSchedule:
    """Made by the orchestrator when the schedule's timer is due."""

    schedule_id: str


@dataclass(frozen=True)
class ScheduleRunEnded:
    """A run this schedule started has ended with `status` (an instance Status); sent by
    the instance's fold, as a child's end is reported to its parent."""

    schedule_id: str
    instance_id: str
    status: str


ScheduleCommand = (
    CreateSchedule
    | UpdateSchedule
    | DeleteSchedule
    | PauseSchedule
    | UnpauseSchedule
    | TriggerSchedule
    | BackfillSchedule
    | FireSchedule
    | ScheduleRunEnded
)

# ---------------------------------------------------------------------------------------
# Facts: what the schedule accepted, each with the schedule id, a per-schedule sequence
# number starting at 1, and the orchestrator's time.


@dataclass(frozen=True)
class ScheduleCreated:
    schedule_id: str
    seq: int
    at: int
    spec: ScheduleSpec
    action: ScheduleAction
    policies: SchedulePolicies
    paused: bool
    note: str


@dataclass(frozen=True)
class ScheduleUpdated:
    schedule_id: str
    seq: int
    at: int
    spec: ScheduleSpec
    action: ScheduleAction
    policies: SchedulePolicies


@dataclass(frozen=True)
class ScheduleDeleted:
    schedule_id: str
    seq: int
    at: int


@dataclass(frozen=True)
class SchedulePaused:
    schedule_id: str
    seq: int
    at: int
    note: str


@dataclass(frozen=True)
class ScheduleUnpaused:
    schedule_id: str
    seq: int
    at: int
    note: str


@dataclass(frozen=True)
class ScheduleFired:
    """A run was started for `slot_ms`; `jitter_ms` is how long after its slot."""

    schedule_id: str
    seq: int
    at: int
    slot_ms: int
    instance_id: str
    kind: FireKind
    jitter_ms: int = 0


@dataclass(frozen=True)
class SlotBuffered:
    """The slot waits for the running run to end (buffer_one, buffer_all)."""

    schedule_id: str
    seq: int
    at: int
    slot_ms: int
    kind: FireKind


@dataclass(frozen=True)
class SlotSkipped:
    """The slot will not run; `reason` is one of SKIP_REASONS, `detail` says more."""

    schedule_id: str
    seq: int
    at: int
    slot_ms: int
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class SlotsMissed:
    """Every slot in (after_ms, through_ms] came due while no orchestrator ran and is
    older than the catch-up window: none of them runs."""

    schedule_id: str
    seq: int
    at: int
    after_ms: int
    through_ms: int


@dataclass(frozen=True)
class RunStopRequested:
    """cancel_other / terminate_other asked a running run to stop for a newer slot."""

    schedule_id: str
    seq: int
    at: int
    instance_id: str
    terminate: bool


@dataclass(frozen=True)
class ScheduleRunClosed:
    """A run this schedule started ended with `status`."""

    schedule_id: str
    seq: int
    at: int
    instance_id: str
    status: str


ScheduleEvent = (
    ScheduleCreated
    | ScheduleUpdated
    | ScheduleDeleted
    | SchedulePaused
    | ScheduleUnpaused
    | ScheduleFired
    | SlotBuffered
    | SlotSkipped
    | SlotsMissed
    | RunStopRequested
    | ScheduleRunClosed
)

SKIP_REASONS = (
    "overlap",  # skip: a run was still running
    "buffer_full",  # buffer_one already holds a slot, or buffer_all holds MAX_BUFFERED
    "superseded",  # cancel_other / terminate_other: a later slot of the same batch runs
    "already_started",  # the slot's instance was started before (trigger or backfill)
    "paused",  # the slot came due while the schedule was paused
)
