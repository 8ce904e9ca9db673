"""What a schedule looks like to readers, folded from its facts alone (the history
topic): `apply(row, fact)` keeps a JSON-able row per schedule; `describe(row, now, n)`
adds the next n fire times. The HTTP API's read model keeps these rows; the Python
client and the test environment fold a schedule's facts the same way, so all three
describe a schedule alike.

Applying a fact whose seq the row has seen changes nothing, so facts delivered twice
(at-least-once readers) are harmless. Sequence numbers go on across a delete and a new
create under the same id (core/schedule_state.ScheduleState.deleted).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from replayflow.core.schedule_json import (
    action_dict,
    action_from,
    policies_dict,
    policies_from,
    spec_dict,
    spec_from,
)
from replayflow.core.schedule_messages import (
    RunStopRequested,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduleEvent,
    ScheduleFired,
    SchedulePaused,
    ScheduleRunClosed,
    ScheduleUnpaused,
    ScheduleUpdated,
    SlotBuffered,
    SlotSkipped,
    SlotsMissed,
)
from replayflow.core.schedule_spec import ScheduleSpec, fire_time, next_fire_times, rerun_slot
from replayflow.core.schedule_state import ScheduleAction, SchedulePolicies

RECENT_RUNS = 20  # runs a row keeps, newest last

Row = dict[str, Any]


def apply(row: Row | None, event: ScheduleEvent) -> Row | None:
    """The row after one fact; the same row when the fact was applied already."""
    if row is not None and event.seq <= row["seq"]:
        return row
    if isinstance(event, ScheduleCreated):
        row = _created(row, event)
    elif row is None:
        return None  # the schedule's start was not seen (a reader began mid-way)
    else:
        row = dict(row)
        _APPLY.get(type(event), _ignore)(row, event)
    row["seq"] = event.seq
    row["updated_at"] = event.at
    return row


def fold(events: Iterable[Any], rows: dict[str, Row] | None = None) -> dict[str, Row]:
    """Fold facts (others are skipped) into rows by schedule id."""
    rows = {} if rows is None else rows
    for event in events:
        if isinstance(event, ScheduleEvent):
            row = apply(rows.get(event.schedule_id), event)
            if row is not None:
                rows[event.schedule_id] = row
    return rows


def _created(row: Row | None, e: ScheduleCreated) -> Row:
    return {
        "id": e.schedule_id,
        "seq": e.seq,
        "created_at": e.at,
        "updated_at": e.at,
        "deleted": False,
        "spec": spec_dict(e.spec),
        "action": action_dict(e.action),
        "policies": policies_dict(e.policies),
        "paused": e.paused,
        "note": e.note,
        "runs": [],
        "running": [],
        "buffered": [],
        "last_slot_ms": None,  # the latest slot of the spec handled (started, skipped, ...)
        "skipped": 0,
        "missed": [],  # (after, through] ranges recorded as missed, newest last (max 10)
    }


def _updated(row: Row, e: ScheduleUpdated) -> None:
    row.update(
        spec=spec_dict(e.spec),
        action=action_dict(e.action),
        policies=policies_dict(e.policies),
        last_slot_ms=max(row["last_slot_ms"] or 0, e.at),  # from the next slot on
    )


def _deleted(row: Row, e: ScheduleDeleted) -> None:
    row.update(deleted=True, running=[], buffered=[])


def _paused(row: Row, e: SchedulePaused) -> None:
    row.update(paused=True, note=e.note)


def _unpaused(row: Row, e: ScheduleUnpaused) -> None:
    row.update(paused=False, note=e.note, last_slot_ms=max(row["last_slot_ms"] or 0, e.at))


def _fired(row: Row, e: ScheduleFired) -> None:
    run = {
        "slot_ms": e.slot_ms,
        "instance_id": e.instance_id,
        "kind": str(e.kind),
        "started_at": e.at,
        "status": "RUNNING",
        "ended_at": None,
    }
    row["runs"] = [*row["runs"], run][-RECENT_RUNS:]
    row["running"] = [*row["running"], e.instance_id]
    row["buffered"] = [s for s in row["buffered"] if s != e.slot_ms]
    _handled(row, e.slot_ms, str(e.kind))


def _buffered(row: Row, e: SlotBuffered) -> None:
    row["buffered"] = [*row["buffered"], e.slot_ms]
    _handled(row, e.slot_ms, str(e.kind))


def _skipped(row: Row, e: SlotSkipped) -> None:
    row["skipped"] += 1
    row["buffered"] = [s for s in row["buffered"] if s != e.slot_ms]
    _handled(row, e.slot_ms, "spec")


def _missed(row: Row, e: SlotsMissed) -> None:
    row["missed"] = [*row["missed"], [e.after_ms, e.through_ms]][-10:]
    _handled(row, e.through_ms, "spec")


def _stop_requested(row: Row, e: RunStopRequested) -> None:
    for run in row["runs"]:
        if run["instance_id"] == e.instance_id and run["status"] == "RUNNING":
            run["status"] = "TERMINATING" if e.terminate else "CANCELLING"


def _closed(row: Row, e: ScheduleRunClosed) -> None:
    row["running"] = [i for i in row["running"] if i != e.instance_id]
    row["runs"] = [
        {**run, "status": e.status, "ended_at": e.at}
        if run["instance_id"] == e.instance_id
        else run
        for run in row["runs"]
    ]


def _handled(row: Row, slot_ms: int, kind: str) -> None:
    if kind in ("spec", "buffered"):
        row["last_slot_ms"] = max(row["last_slot_ms"] or 0, slot_ms)


def _ignore(row: Row, e: Any) -> None:
    pass


_APPLY: dict[type[Any], Any] = {
    ScheduleUpdated: _updated,
    ScheduleDeleted: _deleted,
    SchedulePaused: _paused,
    ScheduleUnpaused: _unpaused,
    ScheduleFired: _fired,
    SlotBuffered: _buffered,
    SlotSkipped: _skipped,
    SlotsMissed: _missed,
    RunStopRequested: _stop_requested,
    ScheduleRunClosed: _closed,
}


# -- descriptions ----------------------------------------------------------------------


@dataclass(frozen=True)
class RunView:
    slot_ms: int
    instance_id: str
    kind: str  # spec, trigger, backfill, buffered
    started_at: int
    status: str  # RUNNING, CANCELLING, TERMINATING, or how it ended
    ended_at: int | None


@dataclass(frozen=True)
class ScheduleDescription:
    """A schedule as `describe` shows it: its definition, state, next fire times (ms,
    jitter included; a paused schedule's are those it would have) and recent runs."""

    schedule_id: str
    spec: ScheduleSpec
    action: ScheduleAction
    policies: SchedulePolicies
    paused: bool
    note: str
    created_at: int
    updated_at: int
    next_fire_times: tuple[int, ...]
    recent_runs: tuple[RunView, ...]  # oldest first
    running: tuple[str, ...]
    buffered: tuple[int, ...]
    skipped: int
    missed: tuple[tuple[int, int], ...]

    @property
    def workflow(self) -> str:
        return self.action.workflow

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, field names as in the Avro records (the HTTP API's shape)."""
        return {
            "id": self.schedule_id,
            "spec": spec_dict(self.spec),
            "action": action_dict(self.action),
            "policies": policies_dict(self.policies),
            "paused": self.paused,
            "note": self.note,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "next_fire_times": list(self.next_fire_times),
            "recent_runs": [vars(run) for run in self.recent_runs],
            "running": list(self.running),
            "buffered": list(self.buffered),
            "skipped": self.skipped,
            "missed": [list(m) for m in self.missed],
        }


def describe(row: Row, now_ms: int, n: int = 5) -> ScheduleDescription:
    spec = spec_from(row["spec"])
    return ScheduleDescription(
        schedule_id=row["id"],
        spec=spec,
        action=action_from(row["action"]),
        policies=policies_from(row["policies"]),
        paused=row["paused"],
        note=row["note"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        next_fire_times=tuple(upcoming(row, spec, now_ms, n)),
        recent_runs=tuple(RunView(**run) for run in row["runs"]),
        running=tuple(row["running"]),
        buffered=tuple(row["buffered"]),
        skipped=row["skipped"],
        missed=tuple((a, b) for a, b in row["missed"]),
    )


def upcoming(row: Row, spec: ScheduleSpec, now_ms: int, n: int) -> list[int]:
    """The next n fire times after now (and after every slot handled)."""
    after = max(now_ms, row["last_slot_ms"] or row["created_at"])
    if spec.rerun_after_ms is None:
        return [fire_time(spec, row["id"], slot) for slot in next_fire_times(spec, after, n)]
    if row["running"] or row["buffered"] or n <= 0:
        return []  # a rerun comes after the running one ends
    runs = row["runs"]
    earliest = runs[-1]["ended_at"] + spec.rerun_after_ms if runs else row["created_at"]
    slot = rerun_slot(spec, max(earliest, now_ms), row["last_slot_ms"] or 0)
    return [] if slot is None else [fire_time(spec, row["id"], slot)]
