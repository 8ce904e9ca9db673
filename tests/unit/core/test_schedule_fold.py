"""The schedule fold: firing, overlap policies, catch-up, pause, trigger, backfill, DST,
update and delete, each through decide_schedule() alone."""

from __future__ import annotations

import pytest

from replayflow.core.messages import CancelWorkflow, TerminateWorkflow
from replayflow.core.schedule_messages import (
    BackfillSchedule,
    CreateSchedule,
    DeleteSchedule,
    FireSchedule,
    PauseSchedule,
    ScheduleCreated,
    ScheduleFired,
    ScheduleRunEnded,
    SlotBuffered,
    SlotSkipped,
    SlotsMissed,
    TriggerSchedule,
    UnpauseSchedule,
    UpdateSchedule,
)
from replayflow.core.schedule_spec import ScheduleSpec
from replayflow.core.schedule_state import SCHEDULE_TIMER, Overlap, ScheduleAction
from replayflow.core.schedules import decide_schedule
from tests.unit.core.schedule_helpers import HOUR, MINUTE, created, hourly, utc

T0 = utc(2026, 1, 1)
SID = "nightly"


def slot_id(hour: int, day: int = 1) -> str:
    return f"{SID}-202601{day:02d}T{hour:02d}0000Z"


def test_create_records_the_schedule_and_sets_the_timer() -> None:
    fold = created(now=T0 + 10 * MINUTE)
    decision = fold.decisions[0]
    assert [type(e) for e in decision.events] == [ScheduleCreated]
    assert decision.timers_set == ((SCHEDULE_TIMER, utc(2026, 1, 1, 1)),)
    assert fold.live.next_slot_ms == utc(2026, 1, 1, 1)


def test_a_due_timer_starts_the_slot_and_sets_the_next_timer() -> None:
    fold = created(now=T0)
    decision = fold(FireSchedule(SID), utc(2026, 1, 1, 1))
    (start,) = decision.commands
    assert start.instance_id == slot_id(1)
    assert (start.workflow, start.input, start.version) == ("report", '{"x":1}', None)
    assert decision.timers_set == ((SCHEDULE_TIMER, utc(2026, 1, 1, 2)),)
    assert fold.live.last_run is not None and fold.live.last_run_running
    # A second fire for the same due time changes nothing but re-arms the timer.
    again = fold(FireSchedule(SID), utc(2026, 1, 1, 1) + 5)
    assert again.commands == () and again.events == ()


def test_create_is_idempotent_and_upsert_updates() -> None:
    fold = created(now=T0)
    same = decide_schedule(
        fold.state,
        CreateSchedule(SID, hourly(), ScheduleAction("report", '{"x":1}'), fold.live.policies),
        T0 + 1,
    )
    assert not same.changed and same.rejected is None
    other = CreateSchedule(SID, hourly(), ScheduleAction("other"), fold.live.policies)
    assert decide_schedule(fold.state, other, T0 + 1).rejected
    upserted = decide_schedule(fold.state, CreateSchedule(**{**other.__dict__, "upsert": True}), 2)
    assert upserted.state is not None and upserted.state.action.workflow == "other"


# -- overlap: slot 01:00 is running when slot 02:00 comes due


def two_slots(overlap: Overlap) -> tuple[object, object]:
    fold = created(now=T0, overlap=overlap)
    fold(FireSchedule(SID), utc(2026, 1, 1, 1))
    second = fold(FireSchedule(SID), utc(2026, 1, 1, 2))
    return fold, second


def test_overlap_skip() -> None:
    fold, second = two_slots(Overlap.SKIP)
    assert second.commands == ()
    (skipped,) = second.events
    assert isinstance(skipped, SlotSkipped) and skipped.reason == "overlap"
    fold(ScheduleRunEnded(SID, slot_id(1), "COMPLETED"), utc(2026, 1, 1, 2, 30))
    assert fold.started() == [slot_id(1)]


def test_overlap_allow_all() -> None:
    fold, _ = two_slots(Overlap.ALLOW_ALL)
    assert fold.started() == [slot_id(1), slot_id(2)]
    assert fold.live.running == (slot_id(1), slot_id(2))


def test_overlap_buffer_one_keeps_one_and_starts_it_when_the_run_ends() -> None:
    fold, second = two_slots(Overlap.BUFFER_ONE)
    assert isinstance(second.events[0], SlotBuffered)
    third = fold(FireSchedule(SID), utc(2026, 1, 1, 3))
    assert third.events[0].reason == "buffer_full"  # type: ignore[union-attr]
    ended = fold(ScheduleRunEnded(SID, slot_id(1), "COMPLETED"), utc(2026, 1, 1, 3, 10))
    assert [c.instance_id for c in ended.commands] == [slot_id(2)]
    assert fold.live.buffered == ()
    fold(ScheduleRunEnded(SID, slot_id(2), "COMPLETED"), utc(2026, 1, 1, 3, 20))
    assert fold.started() == [slot_id(1), slot_id(2)]


def test_overlap_buffer_all_runs_every_slot_one_after_another() -> None:
    fold, _ = two_slots(Overlap.BUFFER_ALL)
    fold(FireSchedule(SID), utc(2026, 1, 1, 3))
    assert fold.live.buffered == (utc(2026, 1, 1, 2), utc(2026, 1, 1, 3))
    for hour in (1, 2, 3):
        assert fold.live.running == (slot_id(hour),)
        fold(ScheduleRunEnded(SID, slot_id(hour), "COMPLETED"), utc(2026, 1, 1, 3, 10 * hour))
    assert fold.started() == [slot_id(1), slot_id(2), slot_id(3)]
    assert fold.live.running == ()


@pytest.mark.parametrize(
    ("overlap", "stop"),
    [(Overlap.CANCEL_OTHER, CancelWorkflow), (Overlap.TERMINATE_OTHER, TerminateWorkflow)],
)
def test_overlap_cancel_or_terminate_other(overlap: Overlap, stop: type) -> None:
    fold, second = two_slots(overlap)
    stop_cmd, start = second.commands  # type: ignore[attr-defined]
    assert isinstance(stop_cmd, stop) and stop_cmd.instance_id == slot_id(1)
    assert start.instance_id == slot_id(2)
    # The old run is asked once, even when another slot comes before it ends.
    third = fold(FireSchedule(SID), utc(2026, 1, 1, 3))
    stops = [c for c in third.commands if isinstance(c, stop)]
    assert [c.instance_id for c in stops] == [slot_id(2)]


# -- catch-up: the orchestrator was down from 00:30 to 03:10 across slots 01, 02 and 03


def test_catch_up_inside_the_window_starts_every_missed_slot() -> None:
    fold = created(now=T0 + 30 * MINUTE, catchup_ms=4 * HOUR)
    late = fold(FireSchedule(SID), utc(2026, 1, 1, 3, 10))
    assert [c.instance_id for c in late.commands] == [slot_id(1), slot_id(2), slot_id(3)]
    assert late.timers_set == ((SCHEDULE_TIMER, utc(2026, 1, 1, 4)),)


def test_catch_up_outside_the_window_records_the_missed_slots() -> None:
    fold = created(now=T0 + 30 * MINUTE, catchup_ms=5 * MINUTE)
    late = fold(FireSchedule(SID), utc(2026, 1, 1, 3, 10))
    assert late.commands == ()
    (missed,) = late.events
    assert isinstance(missed, SlotsMissed)
    assert missed.after_ms == T0 + 30 * MINUTE and missed.through_ms >= utc(2026, 1, 1, 3)
    assert fold.live.next_slot_ms == utc(2026, 1, 1, 4)


def test_catch_up_window_splits_the_missed_slots() -> None:
    fold = created(now=T0 + 30 * MINUTE, catchup_ms=90 * MINUTE)
    late = fold(FireSchedule(SID), utc(2026, 1, 1, 3, 10))
    assert [c.instance_id for c in late.commands] == [slot_id(2), slot_id(3)]
    assert isinstance(late.events[0], SlotsMissed)
    # Every slot in (after, through] was missed: 01:00, and no slot that ran.
    assert utc(2026, 1, 1, 1) <= late.events[0].through_ms < utc(2026, 1, 1, 2)


def test_catch_up_under_skip_starts_the_first_and_skips_the_rest() -> None:
    fold = created(now=T0 + 30 * MINUTE, catchup_ms=4 * HOUR, overlap=Overlap.SKIP)
    fold(FireSchedule(SID), utc(2026, 1, 1, 3, 10))
    assert fold.started() == [slot_id(1)]
    assert [e.reason for e in fold.events(SlotSkipped)] == ["overlap", "overlap"]


# -- pause, unpause, trigger


def test_pause_stops_the_timer_and_unpause_continues_from_then() -> None:
    fold = created(now=T0)
    paused = fold(PauseSchedule(SID, note="maintenance"), T0 + MINUTE)
    assert paused.timers_cancelled == ((SCHEDULE_TIMER, utc(2026, 1, 1, 1)),)
    assert fold.live.paused and fold.live.note == "maintenance"
    assert not fold(FireSchedule(SID), utc(2026, 1, 1, 1)).changed  # a stale timer
    resumed = fold(UnpauseSchedule(SID, note="done"), utc(2026, 1, 1, 2, 30))
    assert resumed.timers_set == ((SCHEDULE_TIMER, utc(2026, 1, 1, 3)),)
    fold(FireSchedule(SID), utc(2026, 1, 1, 3))
    assert fold.started() == [slot_id(3)]  # slots 01 and 02 fell in the pause


def test_trigger_starts_a_run_now_even_while_paused_and_once_per_request() -> None:
    fold = created(now=T0)
    fold(PauseSchedule(SID), T0 + 1)
    at = utc(2026, 1, 1, 0, 17, 5) + 250
    fold(TriggerSchedule(SID, at_ms=at), at + 3)
    fold(TriggerSchedule(SID, at_ms=at), at + 900)  # the client retried
    assert fold.started() == [f"{SID}-20260101T001705Z"]
    assert fold.events(SlotSkipped)[0].reason == "already_started"


def test_trigger_follows_the_overlap_policy_unless_overridden() -> None:
    fold = created(now=T0, overlap=Overlap.SKIP)
    fold(TriggerSchedule(SID), T0 + MINUTE)
    fold(TriggerSchedule(SID), T0 + 2 * MINUTE)
    fold(TriggerSchedule(SID, overlap=Overlap.ALLOW_ALL), T0 + 3 * MINUTE)
    assert len(fold.started()) == 2


def test_pause_on_failure() -> None:
    fold = created(now=T0, pause_on_failure=True)
    fold(FireSchedule(SID), utc(2026, 1, 1, 1))
    fold(ScheduleRunEnded(SID, slot_id(1), "FAILED"), utc(2026, 1, 1, 1, 5))
    assert fold.live.paused and slot_id(1) in fold.live.note and "FAILED" in fold.live.note
    assert fold.live.recent[-1].status == "FAILED" and not fold.live.last_run_running
    assert timer_of(fold) is None


def timer_of(fold: object) -> int | None:
    from replayflow.core.schedules import timer_due

    return timer_due(fold.state)  # type: ignore[attr-defined]


# -- backfill


def test_backfill_of_a_day_of_hourly_slots() -> None:
    fold = created(now=utc(2026, 1, 3))
    day = fold(BackfillSchedule(SID, utc(2026, 1, 1), utc(2026, 1, 2)), utc(2026, 1, 3, 0, 5))
    assert [c.instance_id for c in day.commands] == [slot_id(h) for h in range(24)]
    again = fold(BackfillSchedule(SID, utc(2026, 1, 1), utc(2026, 1, 2)), utc(2026, 1, 3, 0, 6))
    assert again.commands == ()
    assert {e.reason for e in again.events} == {"already_started"}


def test_backfill_under_buffer_all_runs_the_slots_in_sequence() -> None:
    fold = created(now=utc(2026, 1, 3))
    fold(
        BackfillSchedule(SID, utc(2026, 1, 1), utc(2026, 1, 2), overlap=Overlap.BUFFER_ALL),
        utc(2026, 1, 3, 0, 5),
    )
    assert fold.started() == [slot_id(0)]
    for hour in range(24):
        fold(ScheduleRunEnded(SID, slot_id(hour), "COMPLETED"), utc(2026, 1, 3, 0, 10) + hour)
    assert fold.started() == [slot_id(h) for h in range(24)]


def test_backfill_runs_slots_that_were_skipped_but_not_ones_that_ran() -> None:
    fold = created(now=T0 + 30 * MINUTE, catchup_ms=90 * MINUTE)
    fold(FireSchedule(SID), utc(2026, 1, 1, 3, 10))  # 01 missed; 02 and 03 start
    fold(BackfillSchedule(SID, T0, utc(2026, 1, 1, 4)), utc(2026, 1, 1, 3, 20))
    assert sorted(fold.started()) == [slot_id(0), slot_id(1), slot_id(2), slot_id(3)]


def test_backfill_never_reaches_past_now() -> None:
    fold = created(now=T0)
    late = fold(BackfillSchedule(SID, T0, utc(2026, 1, 2)), utc(2026, 1, 1, 2, 30))
    assert [c.instance_id for c in late.commands] == [slot_id(0), slot_id(1), slot_id(2)]


# -- DST in Europe/Berlin, through the fold


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ((27, 28, 29, 30), ["20260328T013000Z", "20260329T010000Z", "20260330T003000Z"]),
        ((23, 24, 25, 26), ["20261024T003000Z", "20261025T003000Z", "20261026T013000Z"]),
    ],
)
def test_daily_berlin_slot_runs_once_a_day_across_dst(
    days: tuple[int, ...], expected: list[str]
) -> None:
    month = 3 if days[0] == 27 else 10
    spec = ScheduleSpec(cron=("30 2 * * *",), timezone="Europe/Berlin")
    fold = created(spec=spec, now=utc(2026, month, days[0], 12))
    while fold.live.next_fire_ms is not None and fold.live.next_fire_ms < utc(
        2026, month, days[-1], 12
    ):
        fold(FireSchedule(SID), fold.live.next_fire_ms)
    assert fold.started() == [f"{SID}-{name}" for name in expected]


# -- update and delete


def test_update_applies_from_the_next_slot() -> None:
    fold = created(now=T0)
    fold(FireSchedule(SID), utc(2026, 1, 1, 1))
    update = fold(
        UpdateSchedule(SID, spec=ScheduleSpec(cron=("*/15 * * * *",)), action=ScheduleAction("v2")),
        utc(2026, 1, 1, 1, 5),
    )
    assert update.timers_cancelled == ((SCHEDULE_TIMER, utc(2026, 1, 1, 2)),)
    assert update.timers_set == ((SCHEDULE_TIMER, utc(2026, 1, 1, 1, 15)),)
    fired = fold(FireSchedule(SID), utc(2026, 1, 1, 1, 15))
    (start,) = fired.commands
    assert start.workflow == "v2" and start.instance_id == f"{SID}-20260101T011500Z"
    assert not fold(UpdateSchedule(SID, action=ScheduleAction("v2")), utc(2026, 1, 1, 2)).changed


def test_delete_removes_the_schedule_and_its_timer() -> None:
    fold = created(now=T0)
    deleted = fold(DeleteSchedule(SID), T0 + MINUTE)
    assert deleted.state is not None and deleted.state.deleted and deleted.timers_cancelled
    assert not deleted.timers_set
    after = decide_schedule(deleted.state, FireSchedule(SID), utc(2026, 1, 1, 1))
    assert after.rejected and "no schedule" in after.rejected
    assert decide_schedule(None, FireSchedule(SID), utc(2026, 1, 1, 1)).rejected


def test_unknown_commands_raise_and_bad_ids_are_rejected() -> None:
    with pytest.raises(TypeError):
        decide_schedule(None, object(), 0)  # type: ignore[arg-type]
    bad = CreateSchedule("-bad id", hourly(), ScheduleAction("w"))
    assert decide_schedule(None, bad, 0).rejected
    assert decide_schedule(
        None, CreateSchedule("x" * 190, hourly(), ScheduleAction("w")), 0
    ).rejected


def test_fired_facts_record_the_slot_the_instance_and_the_jitter() -> None:
    fold = created(spec=hourly(jitter_ms=10 * MINUTE), now=T0)
    due = fold.live.next_fire_ms
    assert due is not None and utc(2026, 1, 1, 1) <= due < utc(2026, 1, 1, 1, 10)
    fold(FireSchedule(SID), due)
    (fired,) = fold.events(ScheduleFired)
    assert fired.slot_ms == utc(2026, 1, 1, 1) and fired.jitter_ms == due - fired.slot_ms
    assert fired.instance_id == slot_id(1)
