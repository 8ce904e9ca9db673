"""What the fold knows about one schedule, and the record of the slots it has started.

A schedule is folded like an instance, keyed `~schedule:<id>` (SCHEDULE_PREFIX): '~'
cannot start an instance id, so its key never names an instance (as with limiters).
State is immutable; decide_schedule() returns a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from replayflow.core.errors import ValidationError
from replayflow.core.names import MAX_ID_LENGTH, check_instance_id, check_name, check_version
from replayflow.core.payloads import load
from replayflow.core.schedule_spec import ScheduleSpec, next_slot, slot_instance_id

SCHEDULE_PREFIX = "~schedule:"
SCHEDULE_TIMER = "schedule"  # the one timer a schedule holds: its next fire time
MAX_RECENT_RUNS = 10
MAX_BUFFERED = 1000  # buffer_all keeps at most this many slots waiting; more are skipped
MAX_STARTED_RANGES = 200  # past this, the oldest two ranges merge (see StartedSlots)
DEFAULT_CATCHUP_WINDOW_MS = 5 * 60_000


def schedule_key(schedule_id: str) -> str:
    return f"{SCHEDULE_PREFIX}{schedule_id}"


# A run's id is `<schedule id>-<slot>`, the slot 16 characters (20260329T010000Z).
MAX_SCHEDULE_ID_LENGTH = MAX_ID_LENGTH - 17


def check_schedule_id(value: object) -> str:
    """A schedule id must leave room for the slot: `<id>-20260329T010000Z` is an instance id."""
    try:
        if not isinstance(value, str) or not value:
            raise ValidationError("empty")
        check_instance_id(slot_instance_id(value, 0))
    except ValidationError:
        raise ValidationError(
            f"invalid schedule id {value!r}: 1 to {MAX_SCHEDULE_ID_LENGTH} characters of "
            "letters, digits and "
            "._:@/+=- starting with a letter or digit (its runs are '<id>-<slot time>')"
        ) from None
    return value


class Overlap(StrEnum):
    """What a slot does while a run the schedule started is still running."""

    SKIP = "skip"  # the new slot is skipped
    BUFFER_ONE = "buffer_one"  # one slot waits for the run to end; further ones are skipped
    BUFFER_ALL = "buffer_all"  # every slot waits, and they start one after another
    CANCEL_OTHER = "cancel_other"  # running runs are cancelled, the new one starts at once
    TERMINATE_OTHER = "terminate_other"  # running runs are terminated, the new one starts
    ALLOW_ALL = "allow_all"  # the new one starts alongside


class FireKind(StrEnum):
    SPEC = "spec"  # a slot of the spec came due
    TRIGGER = "trigger"  # an operator asked for a run now
    BACKFILL = "backfill"  # a slot of a backfilled range
    BUFFERED = "buffered"  # a slot that waited for the previous run to end


# The status of a run whose start the instance refused (an unknown workflow, an instance
# of that id that exists already and was not started by this schedule for that slot).
REJECTED = "REJECTED"
FAILED_STATUSES = frozenset({"FAILED", "TIMED_OUT", REJECTED})


@dataclass(frozen=True)
class ScheduleAction:
    """Start workflow `workflow` (the newest version when None) with `input` (JSON)."""

    workflow: str
    input: str = "null"
    version: str | None = None

    def __post_init__(self) -> None:
        check_name(self.workflow, "workflow name")
        if self.version is not None:
            check_version(self.version)
        load(self.input, "the schedule's workflow input")


@dataclass(frozen=True)
class SchedulePolicies:
    overlap: Overlap = Overlap.SKIP
    catchup_window_ms: int = DEFAULT_CATCHUP_WINDOW_MS  # later than this: missed, skipped
    pause_on_failure: bool = False

    def __post_init__(self) -> None:
        Overlap(self.overlap)
        if isinstance(self.catchup_window_ms, bool) or not isinstance(self.catchup_window_ms, int):
            raise ValidationError(f"catch-up window must be milliseconds: {self.catchup_window_ms}")
        if self.catchup_window_ms < 0:
            raise ValidationError("the catch-up window cannot be negative")


@dataclass(frozen=True)
class RunRecord:
    slot_ms: int
    instance_id: str
    kind: FireKind
    started_at: int
    status: str = "RUNNING"  # an instance Status once ended
    ended_at: int | None = None


@dataclass(frozen=True)
class StartedSlots:
    """The slot times this schedule has started, kept small however long it lives.

    `ranges` are sorted disjoint (first, last, dense) triples. A sparse range is a run of
    consecutive slots of the spec, all started: it holds its two ends and the slots of
    the spec between them, and no other time (a trigger at 10:30 between started slots
    at 10:00 and 11:00 is not in it). A slot that is no slot of the spec (a trigger)
    is a range of one. A dense range holds every time from first to last.

    Ranges become dense in two cases, both erring towards "started": when the spec
    changes (a sparse range was read with the old spec), and when skips fragment the
    record past MAX_STARTED_RANGES (the oldest two merge, so the skipped slots between
    them can no longer be backfilled). Neither can ever start a slot twice, which is the
    promise this record keeps; a schedule that starts every slot has one range.
    """

    ranges: tuple[tuple[int, int, bool], ...] = ()

    def contains(self, spec: ScheduleSpec, slot_ms: int) -> bool:
        for first, last, dense in self.ranges:
            if slot_ms in (first, last) or (dense and first <= slot_ms <= last):
                return True
            if first < slot_ms < last and _is_slot(spec, slot_ms):
                return True
        return False

    def add(self, spec: ScheduleSpec, slot_ms: int) -> StartedSlots:
        if self.contains(spec, slot_ms):
            return self
        merged: list[tuple[int, int, bool]] = []
        for first, last, dense in sorted([*self.ranges, (slot_ms, slot_ms, False)]):
            if merged and _joins(spec, merged[-1], (first, last, dense)):
                merged[-1] = (merged[-1][0], last, False)
            else:
                merged.append((first, last, dense))
        while len(merged) > MAX_STARTED_RANGES:
            merged[0:2] = [(merged[0][0], merged[1][1], True)]
        return StartedSlots(tuple(merged))

    def densified(self) -> StartedSlots:
        return StartedSlots(tuple((first, last, True) for first, last, _ in self.ranges))


def _is_slot(spec: ScheduleSpec, time_ms: int) -> bool:
    return next_slot(spec, time_ms - 1) == time_ms


def _joins(spec: ScheduleSpec, left: tuple[int, int, bool], right: tuple[int, int, bool]) -> bool:
    # Sparse ranges join only when no slot of the spec lies between them, so a range never
    # holds a slot that was skipped; both ends must be slots, so it holds no trigger time.
    if left[2] or right[2]:
        return False
    ends_are_slots = _is_slot(spec, left[1]) and _is_slot(spec, right[0])
    return ends_are_slots and next_slot(spec, left[1]) == right[0]


@dataclass(frozen=True)
class ScheduleState:
    schedule_id: str
    spec: ScheduleSpec
    action: ScheduleAction
    policies: SchedulePolicies
    created_at: int
    seq: int = 0  # the last history sequence number written for this schedule
    paused: bool = False
    note: str = ""
    # Every spec slot at or before this was handled (started, buffered or skipped).
    handled_through_ms: int = 0
    next_slot_ms: int | None = None
    next_fire_ms: int | None = None  # next_slot_ms plus its jitter: the timer's due time
    running: tuple[str, ...] = ()  # instances this schedule started that have not ended
    stopping: tuple[str, ...] = ()  # running ones asked to stop by cancel/terminate_other
    buffered: tuple[int, ...] = ()  # slots waiting for the running run to end, in order
    recent: tuple[RunRecord, ...] = ()  # the last MAX_RECENT_RUNS runs, oldest first
    started: StartedSlots = field(default_factory=StartedSlots)
    # A deleted schedule leaves this tombstone: a schedule created again under its id
    # continues its sequence numbers (readers of its facts see one ordered stream) and
    # never starts a slot the old one started (the slot's instance id is taken).
    deleted: bool = False

    @property
    def key(self) -> str:
        return schedule_key(self.schedule_id)

    def with_changes(self, **changes: object) -> ScheduleState:
        """dataclasses.replace without its cost (it rebuilds every field through
        __init__): this class checks nothing on construction, so a copy of its fields
        with the changes is the same object replace() would give. The fold makes
        several per decision."""
        changed = object.__new__(ScheduleState)
        fields = changed.__dict__
        fields.update(self.__dict__)
        fields.update(changes)
        return changed

    @property
    def last_run(self) -> RunRecord | None:
        return self.recent[-1] if self.recent else None

    @property
    def last_run_running(self) -> bool:
        last = self.last_run
        return last is not None and last.instance_id in self.running
