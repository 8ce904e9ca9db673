"""A document's `schedule`: `cron`, `every` and `after` become a schedule of the engine
(core/schedule_spec.py does the time arithmetic, with cronsim for cron), `on` is the
event consumption strategy that starts instances from events.

    schedule: {cron: '0 8 * * MON-FRI'}     # cron, 5 fields (or 6 with seconds), UTC
    schedule: {every: {minutes: 15}}        # every 15 minutes, from the Unix epoch
    schedule: {after: PT1H}                 # again an hour after each run ended

The document language has no time zone: cron is read in UTC. The schedule's id is the
document's name; it starts that document's version. Deploying a newer version of the
document replaces the schedule with the newer one's (or deletes it when the newer one
has none): `declarations()` says what every orchestrator sends for the deployed
documents (idempotent upserts, so several orchestrators agree).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from replayflow.core.errors import ValidationError
from replayflow.core.names import version_key
from replayflow.core.schedule_messages import CreateSchedule, DeleteSchedule
from replayflow.core.schedule_spec import Interval, ScheduleSpec
from replayflow.core.schedule_state import ScheduleAction
from replayflow.dsl.durations import duration_ms
from replayflow.dsl.records import WorkflowDocument


@dataclass(frozen=True)
class Schedule:
    spec: ScheduleSpec | None = None  # from cron / every / after; None: only `on`
    on: dict[str, Any] | None = None


def parse_schedule(data: dict[str, Any]) -> Schedule:
    """The document's schedule; ValidationError (a ValueError) saying what is wrong."""
    cron = data.get("cron")
    every = data.get("every")
    after = data.get("after")
    spec = None
    if cron is not None or every is not None or after is not None:
        if cron is not None and not isinstance(cron, str):
            raise ValidationError(f"cron is one expression (text): {cron!r}")
        spec = ScheduleSpec(
            cron=(cron,) if cron is not None else (),
            intervals=(Interval(duration_ms(every)),) if every is not None else (),
            rerun_after_ms=duration_ms(after) if after is not None else None,
        )
    return Schedule(spec=spec, on=data.get("on"))


def schedule_command(record: WorkflowDocument) -> CreateSchedule | None:
    """The upsert that gives a deployed document its schedule; None without one."""
    document = json.loads(record.document)
    section = document.get("schedule")
    if not isinstance(section, dict):
        return None
    spec = parse_schedule(section).spec
    if spec is None:
        return None
    return CreateSchedule(
        schedule_id=record.name,
        spec=spec,
        action=ScheduleAction(workflow=record.name, version=record.version),
        upsert=True,
    )


def declarations(
    records: Iterable[WorkflowDocument], only: str | None = None
) -> list[CreateSchedule | DeleteSchedule]:
    """For each document name (or only `only`): its newest version's schedule, or, when
    that version has none but an older one had, the deletion of the schedule."""
    by_name: dict[str, list[WorkflowDocument]] = {}
    for record in records:
        if only is None or record.name == only:
            by_name.setdefault(record.name, []).append(record)
    found: list[CreateSchedule | DeleteSchedule] = []
    for name, versions in sorted(by_name.items()):
        versions.sort(key=lambda r: version_key(r.version))
        newest = schedule_command(versions[-1])
        if newest is not None:
            found.append(newest)
        elif any(schedule_command(r) is not None for r in versions[:-1]):
            found.append(DeleteSchedule(schedule_id=name))
    return found
