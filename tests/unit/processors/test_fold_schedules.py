"""The schedule entity in the fold shell, over every store: its state and its one timer
in the partition store, facts to history keyed `~schedule:<id>`, starts to the commands
topic; timers in the shared index fire as FireSchedule; a run's end comes back from the
instance's fold; a batch that aborts leaves nothing behind."""

from __future__ import annotations

import replayflow as rf
from replayflow.core.decide import Decider
from replayflow.core.definitions import Registry
from replayflow.core.messages import StartWorkflow
from replayflow.core.schedule_messages import (
    CreateSchedule,
    DeleteSchedule,
    FireSchedule,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduleFired,
    ScheduleRunClosed,
    ScheduleRunEnded,
    TriggerSchedule,
)
from replayflow.core.schedule_spec import ScheduleSpec
from replayflow.core.schedule_state import REJECTED, ScheduleAction
from replayflow.processors.fold import PartitionFolder
from replayflow.store import keys
from replayflow.store.protocol import Store

HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z


@rf.workflow(name="fsched_quick")
async def quick(ctx: rf.Context) -> int:
    return 1


def folder(store: Store) -> PartitionFolder:
    return PartitionFolder(store, Decider(Registry.of(quick)))


def create(workflow: str = "fsched_quick") -> CreateSchedule:
    return CreateSchedule("s", ScheduleSpec(cron=("0 * * * *",)), ScheduleAction(workflow))


def test_state_and_timer_live_in_the_store_and_the_timer_fires_the_schedule(store: Store) -> None:
    f = folder(store)
    f.fold(create(), T0)
    [created] = [r for r in f.records if r.topic == "history"]
    assert isinstance(created.message, ScheduleCreated) and created.key == b"~schedule:s"
    assert created.partition == store.partition
    f.committed(None)
    assert store.get(keys.schedule("s")) is not None
    [(timer, _)] = list(store.scan(keys.TIMERS))
    assert keys.parse_timer(timer) == (T0 + HOUR, "~schedule:s", "schedule")
    assert f.schedule_ids() == ["s"]

    assert f.fire_due_timers(T0 + HOUR - 1) == 0
    assert f.fire_due_timers(T0 + HOUR) == 1
    [start] = [r.message for r in f.records if r.topic == "commands"]
    assert isinstance(start, StartWorkflow)
    assert (start.instance_id, start.schedule_id, start.schedule_slot) == (
        "s-20260101T010000Z",
        "s",
        T0 + HOUR,
    )
    assert [type(r.message) for r in f.records if r.topic == "history"] == [ScheduleFired]
    f.committed(None)
    [(timer, _)] = list(store.scan(keys.TIMERS))
    assert keys.parse_timer(timer)[0] == T0 + 2 * HOUR

    # The run, folded as the instance it is, tells the schedule it ended.
    f.fold(start, T0 + HOUR)
    [ended] = [r.message for r in f.records if r.topic == "commands"]
    assert ended == ScheduleRunEnded("s", "s-20260101T010000Z", "COMPLETED")
    f.committed(None)
    f.fold(ended, T0 + HOUR)
    assert [type(r.message) for r in f.records if r.topic == "history"] == [ScheduleRunClosed]
    f.committed(None)
    state = f.schedule("s")
    assert state is not None and state.running == () and state.recent[-1].status == "COMPLETED"


def test_an_aborted_batch_leaves_no_state_and_no_timer(store: Store) -> None:
    f = folder(store)
    f.fold(create(), T0)
    f.aborted()
    assert store.get(keys.schedule("s")) is None and list(store.scan(keys.TIMERS)) == []
    assert f.schedule("s") is None


def test_a_refused_start_goes_to_the_dead_letters_and_its_schedule_hears_of_it(
    store: Store,
) -> None:
    f = folder(store)
    f.fold(create("no_such_workflow"), T0)
    f.fold(TriggerSchedule("s", at_ms=T0 + 5), T0 + 5)
    [start] = [r.message for r in f.records if r.topic == "commands"]
    f.committed(None)
    f.fold(start, T0 + 6)
    assert sorted(r.topic for r in f.records) == ["commands", "dlq"]
    [ended] = [r.message for r in f.records if r.topic == "commands"]
    assert ended == ScheduleRunEnded("s", start.instance_id, REJECTED)
    f.committed(None)


def test_commands_for_no_schedule_are_refused_and_delete_leaves_a_tombstone(
    store: Store,
) -> None:
    f = folder(store)
    f.fold(FireSchedule("nope"), T0)
    [dead] = f.records
    assert dead.topic == "dlq" and "no schedule 'nope'" in dead.message.reason
    f.committed(None)
    f.fold(create(), T0)
    f.fold(DeleteSchedule("s"), T0 + 1)
    assert [type(r.message) for r in f.records if r.topic == "history"] == [
        ScheduleCreated,
        ScheduleDeleted,
    ]
    f.committed(None)
    assert list(store.scan(keys.TIMERS)) == [] and f.schedule_ids() == ["s"]
    tombstone = f.schedule("s")
    assert tombstone is not None and tombstone.deleted and tombstone.seq == 2
