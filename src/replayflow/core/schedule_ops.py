"""The schedule operations as one interface: create, update, delete, pause, unpause,
trigger, backfill, describe, list. Each operation is a command to the schedule; where
it goes (Kafka for the client, the in-memory fold for the test environment) and where
descriptions are read from is left to the subclass, so both offer the same calls.

    client.schedules.create("nightly", "report", rf.Schedule(cron="0 2 * * *"))
    client.schedules.pause("nightly", note="migrating the warehouse")
    client.schedules.describe("nightly").next_fire_times
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from replayflow.core.schedule_declaration import Moment, Schedule, to_epoch_ms
from replayflow.core.schedule_json import overlap_from
from replayflow.core.schedule_messages import (
    BackfillSchedule,
    DeleteSchedule,
    PauseSchedule,
    ScheduleCommand,
    TriggerSchedule,
    UnpauseSchedule,
    UpdateSchedule,
)
from replayflow.core.schedule_spec import slot_instance_id
from replayflow.core.schedule_state import Overlap, check_schedule_id
from replayflow.core.schedule_view import ScheduleDescription


class ScheduleOps(ABC):
    """Every schedule operation; a subclass sends commands and reads descriptions."""

    @abstractmethod
    def _send(self, command: ScheduleCommand) -> None:
        """Hand one command to the schedule's fold (raise when it cannot be sent)."""

    @abstractmethod
    def _now_ms(self) -> int:
        """The time a trigger is stamped with."""

    @abstractmethod
    def describe(self, schedule_id: str, next: int = 5) -> ScheduleDescription | None:
        """The schedule with its next `next` fire times and recent runs; None when
        there is none (never created, or deleted)."""

    @abstractmethod
    def list(self, next: int = 1) -> list[ScheduleDescription]:
        """Every schedule, by id."""

    # -- commands --------------------------------------------------------------------

    def create(
        self, schedule_id: str, workflow: str, schedule: Schedule, *, upsert: bool = False
    ) -> None:
        """Create a schedule that starts `workflow`. It exists already: with `upsert`
        it is updated; without, the same definition changes nothing and another one is
        refused (the command goes to the dead-letter topic)."""
        self._send(schedule.create_command(schedule_id, workflow, upsert=upsert))

    def update(self, schedule_id: str, schedule: Schedule, workflow: str | None = None) -> None:
        """Replace the spec and policies (paused and note stay as they are); with
        `workflow`, also what runs (workflow, input, version). It applies from the
        first slot after now; slots already due run under the old definition."""
        self._send(
            UpdateSchedule(
                schedule_id=check_schedule_id(schedule_id),
                spec=schedule.spec,
                action=None if workflow is None else schedule.action(workflow),
                policies=schedule.policies,
            )
        )

    def delete(self, schedule_id: str) -> None:
        """Remove the schedule; runs it started go on."""
        self._send(DeleteSchedule(schedule_id=check_schedule_id(schedule_id)))

    def pause(self, schedule_id: str, note: str = "") -> None:
        """Stop firing; slots that fall in the pause do not run."""
        self._send(PauseSchedule(schedule_id=check_schedule_id(schedule_id), note=note))

    def unpause(self, schedule_id: str, note: str = "") -> None:
        """Fire again from the first slot after now."""
        self._send(UnpauseSchedule(schedule_id=check_schedule_id(schedule_id), note=note))

    def trigger(self, schedule_id: str, overlap: Overlap | str | None = None) -> str:
        """Start a run now (also while paused), under the overlap policy or `overlap`;
        returns its instance id. Sending it again within the same second names the
        same run, which then starts once."""
        at = self._now_ms()
        self._send(
            TriggerSchedule(
                schedule_id=check_schedule_id(schedule_id),
                at_ms=at,
                overlap=None if overlap is None else overlap_from(overlap),
            )
        )
        return slot_instance_id(schedule_id, at - at % 1000)

    def backfill(
        self,
        schedule_id: str,
        start: Moment,
        end: Moment,
        overlap: Overlap | str | None = None,
    ) -> None:
        """Run every slot of the spec in [start, end) (up to now) that this schedule
        has not started, under the overlap policy or `overlap` (allow_all runs them
        side by side, buffer_all one after another)."""
        self._send(
            BackfillSchedule(
                schedule_id=check_schedule_id(schedule_id),
                start_ms=to_epoch_ms(start, "start"),
                end_ms=to_epoch_ms(end, "end"),
                overlap=None if overlap is None else overlap_from(overlap),
            )
        )
