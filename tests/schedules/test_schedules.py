"""Schedules end to end, on every engine (conftest.py: the in-memory environment and the
orchestrator on Kafka, both on a virtual clock): runs in virtual time, every overlap
policy, catch-up after an outage, pause, unpause, trigger and backfill, DST in
Europe/Berlin, update and delete, declarations by several orchestrators at once,
pause on failure and refused starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import replayflow as rf
from replayflow.core.schedule_messages import (
    ScheduleCreated,
    ScheduleFired,
    ScheduleUpdated,
    SlotSkipped,
    SlotsMissed,
)
from tests.schedules import declared
from tests.schedules import definitions as d

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ids(schedule_id: str, *hours: int, day: int = 1) -> list[str]:
    return [f"{schedule_id}-202601{day:02d}T{h:02d}0000Z" for h in hours]


def ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def test_an_hourly_schedule_starts_24_runs_in_a_day(engines: Any) -> None:
    engine = engines(T0)
    engine.schedules.create("hourly", "quick", rf.Schedule(cron="0 * * * *", input={"n": 1}))
    engine.advance("1d")
    expected = ids("hourly", *range(1, 24)) + ids("hourly", 0, day=2)
    assert engine.instances(d.quick) == expected
    assert all(engine.status(i) == "COMPLETED" for i in expected)
    described = engine.schedules.describe("hourly", next=3)
    assert described.workflow == "quick" and described.action.input == '{"n":1}'
    assert described.next_fire_times == tuple(
        ms(T0 + timedelta(days=1, hours=h)) for h in (1, 2, 3)
    )
    assert [r.instance_id for r in described.recent_runs][-2:] == expected[-2:]
    assert {r.status for r in described.recent_runs} == {"COMPLETED"}
    assert described.running == ()
    assert [s.schedule_id for s in engine.schedules.list()] == ["hourly"]


# -- overlap: `slow` runs 95 minutes, so each hourly slot comes while a run is running


@pytest.mark.parametrize(
    ("overlap", "started", "statuses"),
    [
        ("skip", (1, 3), {}),
        ("allow_all", (1, 2, 3, 4), {}),
        ("buffer_one", (1, 2, 3), {}),
        ("buffer_all", (1, 2, 3), {}),
        ("cancel_other", (1, 2, 3, 4), {1: "CANCELLED", 2: "CANCELLED", 3: "CANCELLED"}),
        ("terminate_other", (1, 2, 3, 4), {1: "TERMINATED", 2: "TERMINATED", 3: "TERMINATED"}),
    ],
)
def test_overlap_policy(
    engines: Any, overlap: str, started: tuple[int, ...], statuses: dict[int, str]
) -> None:
    engine = engines(T0)
    engine.schedules.create("o", "slow", rf.Schedule(cron="0 * * * *", overlap=overlap))
    engine.advance("4h30m")
    assert engine.instances(d.slow) == ids("o", *started)
    for hour, status in statuses.items():
        assert engine.status(ids("o", hour)[0]) == status
    described = engine.schedules.describe("o")
    skipped = [f for f in engine.facts("o") if isinstance(f, SlotSkipped)]
    if overlap == "skip":
        assert [(f.slot_ms, f.reason) for f in skipped] == [
            (ms(T0 + timedelta(hours=h)), "overlap") for h in (2, 4)
        ]
    if overlap == "buffer_one":
        # 02 waited for 01 and ran; 03 waits for 02; 04 found the buffer full.
        assert described.buffered == ()
        assert [(f.slot_ms, f.reason) for f in skipped] == [
            (ms(T0 + timedelta(hours=4)), "buffer_full")
        ]
    if overlap == "buffer_all":
        assert described.buffered == (ms(T0 + timedelta(hours=4)),)
        engine.advance("1h30m")  # 03 ends at 05:45 and 04 starts; 05 and 06 wait
        assert engine.instances(d.slow) == ids("o", 1, 2, 3, 4)
        assert engine.schedules.describe("o").buffered == tuple(
            ms(T0 + timedelta(hours=h)) for h in (5, 6)
        )
    if overlap in ("cancel_other", "terminate_other", "skip", "allow_all"):
        assert described.buffered == ()


# -- catch-up after the orchestrator was down across three slots


def test_catch_up_inside_the_window_starts_the_three_missed_slots(engines: Any) -> None:
    engine = engines(T0)
    schedule = rf.Schedule(cron="0 * * * *", catchup_window="4h", overlap="buffer_all")
    engine.schedules.create("c", "quick", schedule)
    engine.advance("30m")
    engine.outage("2h40m")  # down from 00:30 to 03:10: slots 01, 02 and 03 missed
    # One after another (buffer_all): each as the previous one ends.
    assert engine.instances(d.quick) == ids("c", 1, 2, 3)
    engine.advance("1h")
    assert engine.instances(d.quick) == ids("c", 1, 2, 3, 4)


def test_catch_up_outside_the_window_records_the_slots_as_missed(engines: Any) -> None:
    engine = engines(T0)
    engine.schedules.create("c", "quick", rf.Schedule(cron="0 * * * *", catchup_window="5m"))
    engine.advance("30m")
    engine.outage("2h40m")
    assert engine.instances(d.quick) == []
    (missed,) = [f for f in engine.facts("c") if isinstance(f, SlotsMissed)]
    assert ms(T0 + timedelta(hours=3)) <= missed.through_ms < ms(T0 + timedelta(hours=4))
    assert engine.schedules.describe("c").missed == ((missed.after_ms, missed.through_ms),)
    engine.advance("1h")
    assert engine.instances(d.quick) == ids("c", 4)


# -- pause, unpause, trigger, backfill


def test_pause_trigger_backfill_a_day_and_unpause(engines: Any) -> None:
    engine = engines(T0)
    engine.schedules.create("p", "quick", rf.Schedule(cron="0 * * * *"))
    engine.schedules.pause("p", note="warehouse migration")
    engine.advance("1d")
    assert engine.instances(d.quick) == []
    described = engine.schedules.describe("p")
    assert described.paused and described.note == "warehouse migration"

    triggered = engine.schedules.trigger("p")  # works while paused
    assert triggered == "p-20260102T000000Z"
    engine.schedules.trigger("p")  # the same second: the same run, started once
    assert engine.instances(d.quick) == [triggered]

    engine.advance("30m")
    engine.schedules.backfill("p", T0, T0 + timedelta(days=1), overlap="allow_all")
    day = ids("p", *range(24))
    assert engine.instances(d.quick) == sorted([*day, triggered])
    engine.schedules.backfill("p", T0, T0 + timedelta(days=1), overlap="allow_all")
    assert len(engine.instances(d.quick)) == 25  # started slots never start again

    engine.schedules.unpause("p", note="done")
    engine.advance("1h")  # 01:00 of day 2
    assert engine.instances(d.quick)[-1] == "p-20260102T010000Z"
    assert not engine.schedules.describe("p").paused


# -- DST in Europe/Berlin


def test_spring_forward_runs_a_fixed_time_job_once_at_the_first_instant_after_the_gap(
    engines: Any,
) -> None:
    engine = engines(datetime(2026, 3, 28, 12, tzinfo=UTC))
    engine.schedules.create("nightly", "quick", rf.Schedule(cron="30 2 * * *", tz="Europe/Berlin"))
    engine.advance("2d")
    # 2026-03-29 02:30 does not exist in Berlin: 03:00 CEST (01:00 UTC) instead; the
    # next day 02:30 CEST (00:30 UTC).
    assert engine.instances(d.quick) == [
        "nightly-20260329T010000Z",
        "nightly-20260330T003000Z",
    ]


def test_fall_back_runs_an_hourly_job_25_times_on_the_long_day(engines: Any) -> None:
    # 2026-10-25 in Berlin: 00:00 CEST is 22:00 UTC the day before; 25 hours long.
    day_start = datetime(2026, 10, 24, 22, tzinfo=UTC)
    engine = engines(day_start - timedelta(minutes=1))
    engine.schedules.create("h", "quick", rf.Schedule(cron="30 * * * *", tz="Europe/Berlin"))
    engine.advance(timedelta(hours=25, minutes=1))
    runs = engine.instances(d.quick)
    assert len(runs) == 25
    # Both 02:30s ran: 00:30 UTC (CEST) and 01:30 UTC (CET), an hour apart.
    assert "h-20261025T003000Z" in runs and "h-20261025T013000Z" in runs


# -- update and delete


def test_update_applies_from_the_next_slot_and_delete_stops_it(engines: Any) -> None:
    engine = engines(T0)
    engine.schedules.create("u", "quick", rf.Schedule(cron="0 * * * *"))
    engine.advance("2h10m")
    assert engine.instances(d.quick) == ids("u", 1, 2)
    engine.schedules.update("u", rf.Schedule(cron="*/30 * * * *", input="v2"))
    engine.advance("50m")  # 02:30 and 03:00 under the new spec
    assert engine.instances(d.quick) == [*ids("u", 1, 2), "u-20260101T023000Z", *ids("u", 3)]
    described = engine.schedules.describe("u")
    assert described.spec.cron == ("*/30 * * * *",)
    assert described.action.input == "null"  # the action stays unless a workflow is given
    engine.schedules.update("u", rf.Schedule(cron="*/30 * * * *", input="v2"), workflow="quick")
    assert engine.schedules.describe("u").action.input == '"v2"'

    engine.schedules.delete("u")
    engine.advance("2h")
    assert len(engine.instances(d.quick)) == 4
    assert engine.schedules.describe("u") is None and engine.schedules.list() == []

    # Created again under the same id: its facts go on in order, new slots start.
    engine.schedules.create("u", "quick", rf.Schedule(cron="0 * * * *"))
    engine.advance("1h")
    assert engine.instances(d.quick)[-1] == "u-20260101T060000Z"
    seqs = [f.seq for f in engine.facts("u")]
    assert seqs == list(range(1, len(seqs) + 1))


# -- declared in code, by two orchestrators at once


def test_a_schedule_declared_by_two_orchestrators_at_once_exists_once(engines: Any) -> None:
    engine = engines(T0, declared, orchestrators=2)
    facts = engine.facts("declared")
    assert [type(f) for f in facts] == [ScheduleCreated]  # the second upsert changed nothing
    assert not any(isinstance(f, ScheduleUpdated) for f in facts)
    engine.advance("3h")
    assert engine.instances(declared.declared) == ids("declared", 1, 2, 3)
    fired = [f for f in engine.facts("declared") if isinstance(f, ScheduleFired)]
    assert [f.instance_id for f in fired] == ids("declared", 1, 2, 3)


# -- failures


def test_pause_on_failure_pauses_after_a_failed_run(engines: Any) -> None:
    engine = engines(T0)
    engine.schedules.create("f", "broken", rf.Schedule(every="1h", pause_on_failure=True))
    engine.advance("3h")
    assert engine.instances(d.broken) == ids("f", 1)
    described = engine.schedules.describe("f")
    assert described.paused and "ended FAILED" in described.note
    assert [r.status for r in described.recent_runs] == ["FAILED"]


def test_a_start_the_engine_refuses_does_not_block_the_schedule(engines: Any) -> None:
    engine = engines(T0)
    engine.schedules.create("r", "no_such_workflow", rf.Schedule(every="1h"))
    engine.advance("2h")
    described = engine.schedules.describe("r")
    assert [(r.instance_id, r.status) for r in described.recent_runs] == [
        (i, "REJECTED") for i in ids("r", 1, 2)
    ]
    assert described.running == ()


def test_waiting_runs_show_as_running_until_they_end(engines: Any) -> None:
    engine = engines(T0)
    engine.schedules.create("w", "waits", rf.Schedule(cron="0 * * * *", overlap="skip"))
    engine.advance("2h")
    (run,) = engine.instances(d.waits)
    assert engine.schedules.describe("w").running == (run,)
    engine.send_event(run, "go", 1)
    assert engine.status(run) == "COMPLETED"
    assert engine.schedules.describe("w").running == ()
    engine.advance("1h")
    assert engine.instances(d.waits) == [run, *ids("w", 3)]
