"""rf.Schedule: a schedule as users write it, in code or to the client.

    @rf.workflow(schedule=rf.Schedule(cron="0 8 * * 1-5", tz="Europe/Berlin"))
    async def report(ctx, input): ...

    client.schedules.create("nightly", "report", rf.Schedule(every="1h", input={"x": 1}))

Everything is checked when the Schedule is built (a bad cron, zone, duration or policy
raises ValidationError at that line), and it turns into the commands the fold takes:
`create_command` (CreateSchedule), and its parts for UpdateSchedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from replayflow.core.durations import Duration, to_ms
from replayflow.core.errors import ValidationError
from replayflow.core.payloads import dump
from replayflow.core.schedule_json import overlap_from
from replayflow.core.schedule_messages import CreateSchedule
from replayflow.core.schedule_spec import Interval, ScheduleSpec
from replayflow.core.schedule_state import (
    Overlap,
    ScheduleAction,
    SchedulePolicies,
    check_schedule_id,
)

Moment = datetime | int  # an aware datetime, or epoch milliseconds


def to_epoch_ms(value: Moment, what: str) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError(f"{what} needs a time zone: {value!r}")
        return round(value.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValidationError(f"{what} is an aware datetime or epoch milliseconds: {value!r}")


@dataclass(frozen=True)
class Schedule:
    """When to start a workflow, with what input, and what to do when runs overlap.

    cron: one expression or several ("0 8 * * 1-5", "@hourly", 6 fields with seconds
    first); every/offset: an interval ("15m", offset "2m" fires at :02, :17, ...);
    both may be given (the union fires). after: instead, rerun this long after each
    run ended (the first run at once). tz: the IANA zone cron reads its fields in.
    start/end: no slot before/after (aware datetime or epoch ms). jitter: start each
    run up to this long after its slot (deterministic per slot). overlap: skip,
    buffer_one, buffer_all, cancel_other, terminate_other or allow_all. catchup_window:
    slots missed while no orchestrator ran still start when at most this late.
    id: the schedule id; with @rf.workflow the workflow's name by default.
    """

    cron: str | Sequence[str] = ()
    every: Duration | None = None
    offset: Duration = 0
    after: Duration | None = None
    tz: str = "UTC"
    start: Moment | None = None
    end: Moment | None = None
    jitter: Duration = 0
    input: Any = field(default=None, hash=False)  # JSON-able; a dict is not hashable
    version: str | None = None
    overlap: Overlap | str = Overlap.SKIP
    catchup_window: Duration = "5m"
    pause_on_failure: bool = False
    paused: bool = False
    note: str = ""
    id: str | None = None
    _spec: ScheduleSpec = field(init=False, repr=False, compare=False)
    _policies: SchedulePolicies = field(init=False, repr=False, compare=False)
    _input: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        crons = (self.cron,) if isinstance(self.cron, str) else tuple(self.cron)
        if not isinstance(self.cron, str):
            object.__setattr__(self, "cron", crons)
        intervals: tuple[Interval, ...] = ()
        if self.every is not None:
            intervals = (Interval(to_ms(self.every), to_ms(self.offset)),)
        elif self.offset:
            raise ValidationError("an offset needs 'every'")
        spec = ScheduleSpec(
            cron=crons,
            intervals=intervals,
            timezone=self.tz,
            start_ms=None if self.start is None else to_epoch_ms(self.start, "start"),
            end_ms=None if self.end is None else to_epoch_ms(self.end, "end"),
            jitter_ms=to_ms(self.jitter),
            rerun_after_ms=None if self.after is None else to_ms(self.after),
        )
        policies = SchedulePolicies(
            overlap=overlap_from(self.overlap),
            catchup_window_ms=to_ms(self.catchup_window),
            pause_on_failure=bool(self.pause_on_failure),
        )
        if self.id is not None:
            check_schedule_id(self.id)
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_policies", policies)
        object.__setattr__(self, "_input", dump(self.input, "the schedule's workflow input"))

    @property
    def spec(self) -> ScheduleSpec:
        return self._spec

    @property
    def policies(self) -> SchedulePolicies:
        return self._policies

    def action(self, workflow: str) -> ScheduleAction:
        return ScheduleAction(workflow=workflow, input=self._input, version=self.version)

    def create_command(
        self, schedule_id: str, workflow: str, upsert: bool = False
    ) -> CreateSchedule:
        return CreateSchedule(
            schedule_id=check_schedule_id(schedule_id),
            spec=self.spec,
            action=self.action(workflow),
            policies=self.policies,
            paused=self.paused,
            note=self.note,
            upsert=upsert,
        )


def as_schedules(
    value: Schedule | Sequence[Schedule] | None, workflow: str
) -> tuple[Schedule, ...]:
    """The schedules declared on @rf.workflow(schedule=...), each with its id (the
    workflow's name unless given; several need distinct ids)."""
    if value is None:
        return ()
    found = (value,) if isinstance(value, Schedule) else tuple(value)
    for item in found:
        if not isinstance(item, Schedule):
            raise ValidationError(f"schedule= takes rf.Schedule(...) objects, got {item!r}")
    ids = [s.id or workflow for s in found]
    if len(set(ids)) != len(ids):
        raise ValidationError(
            f"workflow {workflow!r} declares several schedules with the id "
            f"{ids[0]!r}: give each rf.Schedule(id=...)"
        )
    for schedule_id in ids:
        check_schedule_id(schedule_id)
    return found
