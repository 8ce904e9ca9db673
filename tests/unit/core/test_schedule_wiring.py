"""The pure parts that wire schedules into the engine: routing, rf.Schedule and the
declarations of code, the instance side of a run (its schedule and slot recorded, its
end reported, a refused start reported), the facts-to-description fold, rerun specs,
an update landing while a slot is due, and the state record."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

import replayflow as rf
from replayflow.core.decide import Decider
from replayflow.core.entities import Entity, route, timer_command
from replayflow.core.messages import FireTimer, StartWorkflow, WorkflowStarted
from replayflow.core.names import check_instance_id
from replayflow.core.schedule_declaration import as_schedules
from replayflow.core.schedule_messages import (
    CreateSchedule,
    FireSchedule,
    PauseSchedule,
    ScheduleFired,
    ScheduleRunEnded,
    TriggerSchedule,
    UpdateSchedule,
)
from replayflow.core.schedule_spec import ScheduleSpec
from replayflow.core.schedule_state import REJECTED, Overlap, ScheduleAction
from replayflow.core.schedule_view import apply, describe, fold
from replayflow.core.schedules import decide_schedule
from replayflow.store.schedule_serde import dump_definition, dump_schedule, load_schedule
from tests.unit.core.schedule_helpers import MINUTE, created, hourly, utc

T0 = utc(2026, 1, 1)


# -- routing ------------------------------------------------------------------------------


def test_schedule_commands_route_to_the_schedule_key_and_timers_back() -> None:
    for command in (
        CreateSchedule("s", hourly(), ScheduleAction("w")),
        FireSchedule("s"),
        ScheduleRunEnded("s", "s-1", "COMPLETED"),
    ):
        assert route(command).entity is Entity.SCHEDULE
        assert route(command).record_key == b"~schedule:s"
    assert timer_command("~schedule:s", "schedule") == FireSchedule("s")
    assert timer_command("order-1", "sleep/0") == FireTimer("order-1", "sleep/0")
    # '~' cannot start an instance id: no instance's timer is ever taken for a schedule's.
    with pytest.raises(rf.ValidationError):
        check_instance_id("~schedule:s")


# -- rf.Schedule ---------------------------------------------------------------------------


def test_a_schedule_is_checked_where_it_is_written() -> None:
    for bad, message in (
        ({"cron": "0 25 * * *"}, "invalid cron"),
        ({"cron": "@daily", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"every": "1h", "overlap": "sometimes"}, "unknown overlap policy"),
        ({"offset": "5m"}, "needs 'every'"),
        ({}, "at least one cron expression or interval"),
        ({"every": "1h", "start": datetime(2026, 1, 1)}, "needs a time zone"),
        ({"cron": "@daily", "after": "1h"}, "not both"),
        ({"every": "1h", "id": "-bad"}, "invalid schedule id"),
        ({"every": "1h", "input": object()}, "JSON"),
    ):
        with pytest.raises(rf.ValidationError, match=message):
            rf.Schedule(**bad)  # type: ignore[arg-type]
    schedule = rf.Schedule(
        cron=["0 8 * * 1-5", "@hourly"],
        every="15m",
        offset="2m",
        tz="Europe/Berlin",
        start=datetime(2026, 1, 1, tzinfo=UTC),
        jitter="30s",
        input={"a": 1},
        overlap="buffer_all",
        catchup_window="1h",
    )
    assert hash(schedule)  # a list of crons and a dict input do not stop hashing
    command = schedule.create_command("s", "report", upsert=True)
    assert command.spec.cron == ("0 8 * * 1-5", "@hourly")
    assert command.spec.intervals[0].every_ms == 15 * MINUTE
    assert command.spec.start_ms == T0 and command.spec.jitter_ms == 30_000
    assert command.action == ScheduleAction("report", '{"a":1}')
    assert command.policies.overlap is Overlap.BUFFER_ALL and command.upsert


def test_workflows_declare_schedules_and_the_newest_version_counts() -> None:
    @rf.workflow(name="rep", version="1", schedule=rf.Schedule(every="1h"))
    async def v1(ctx: rf.Context) -> None: ...

    @rf.workflow(
        name="rep",
        version="2",
        schedule=[rf.Schedule(cron="@daily", id="rep-daily"), rf.Schedule(every="2h")],
    )
    async def v2(ctx: rf.Context) -> None: ...

    declared = rf.Registry.of(v1, v2).schedule_declarations()
    assert [(c.schedule_id, c.upsert) for c in declared] == [("rep-daily", True), ("rep", True)]
    assert {c.action.workflow for c in declared} == {"rep"}
    with pytest.raises(rf.ValidationError, match="several schedules with the id"):
        as_schedules([rf.Schedule(every="1h"), rf.Schedule(every="2h")], "rep")
    with pytest.raises(rf.ValidationError, match=r"takes rf\.Schedule"):
        as_schedules(["0 * * * *"], "rep")  # type: ignore[list-item]


# -- the instance side of a run -------------------------------------------------------------


@rf.workflow(name="wired")
async def wired(ctx: rf.Context) -> int:
    return 1


def decider() -> Decider:
    return Decider(rf.Registry.of(wired))


def test_a_run_records_its_schedule_and_slot_and_reports_its_end() -> None:
    start = StartWorkflow("s-x", "wired", schedule_id="s", schedule_slot=T0)
    decision = decider().decide(None, start, T0)
    started = decision.events[0]
    assert isinstance(started, WorkflowStarted)
    assert (started.schedule_id, started.schedule_slot) == ("s", T0)
    assert decision.state is not None and decision.state.info.schedule_id == "s"
    assert ScheduleRunEnded("s", "s-x", "COMPLETED") in decision.commands


def test_a_refused_or_taken_start_tells_its_schedule() -> None:
    refused = decider().decide(None, StartWorkflow("s-x", "nope", schedule_id="s"), T0)
    assert refused.rejected and refused.commands == (ScheduleRunEnded("s", "s-x", REJECTED),)
    plain = decider().decide(None, StartWorkflow("s-x", "nope"), T0)
    assert plain.rejected and plain.commands == ()
    # The slot's id was taken by a start of someone else's: REJECTED at once.
    taken = decider().decide(None, StartWorkflow("s-x", "wired"), T0).state
    again = decider().decide(taken, StartWorkflow("s-x", "wired", schedule_id="s"), T0)
    assert again.commands == (ScheduleRunEnded("s", "s-x", REJECTED),)
    # The schedule's own run asked again once ended: how it ended.
    mine = StartWorkflow("s-x", "wired", schedule_id="s", schedule_slot=T0)
    ended = decider().decide(None, mine, T0).state
    assert decider().decide(ended, mine, T0).commands == (
        ScheduleRunEnded("s", "s-x", "COMPLETED"),
    )


# -- facts into descriptions ----------------------------------------------------------------


def test_the_view_folds_facts_once_and_describes_the_next_fire_times() -> None:
    fold_ = created(now=T0)
    fold_(FireSchedule("nightly"), utc(2026, 1, 1, 1))
    fold_(ScheduleRunEnded("nightly", "nightly-20260101T010000Z", "FAILED"), utc(2026, 1, 1, 1, 5))
    fold_(PauseSchedule("nightly", note="look at it"), utc(2026, 1, 1, 1, 6))
    facts = [e for d in fold_.decisions for e in d.events]
    rows = fold(facts + facts)  # delivered twice: the same row
    assert rows == fold(facts)
    row = rows["nightly"]
    assert apply(row, facts[0]) is row
    described = describe(row, utc(2026, 1, 1, 1, 30), 3)
    assert described.paused and described.note == "look at it"
    assert [(r.instance_id, r.status) for r in described.recent_runs] == [
        ("nightly-20260101T010000Z", "FAILED")
    ]
    assert described.next_fire_times == (utc(2026, 1, 1, 2), utc(2026, 1, 1, 3), utc(2026, 1, 1, 4))
    assert described.to_dict()["recent_runs"][0]["status"] == "FAILED"


# -- rerun specs ------------------------------------------------------------------------------


def test_a_rerun_spec_starts_at_once_and_again_the_delay_after_each_end() -> None:
    spec = ScheduleSpec(rerun_after_ms=10 * MINUTE)
    fold_ = created(spec=spec, now=T0 + 250)
    assert fold_.live.next_slot_ms == T0 + 1000  # the first whole second after creation
    fold_(FireSchedule("nightly"), T0 + 1000)
    assert fold_.live.next_fire_ms is None  # nothing until the run ends
    fold_(ScheduleRunEnded("nightly", "nightly-20260101T000001Z", "COMPLETED"), T0 + 5 * MINUTE)
    assert fold_.live.next_slot_ms == T0 + 15 * MINUTE
    # A run that cannot start ends at once: the next comes a second later at the soonest.
    quick = created(spec=ScheduleSpec(rerun_after_ms=0), now=T0)
    quick(FireSchedule("nightly"), T0 + 1000)
    quick(ScheduleRunEnded("nightly", "nightly-20260101T000001Z", REJECTED), T0 + 1000)
    assert quick.live.next_slot_ms == T0 + 2000


# -- update while a slot is due --------------------------------------------------------------


def test_an_update_landing_while_a_slot_is_due_fires_it_under_the_old_definition() -> None:
    fold_ = created(now=T0)
    # 01:00 is due, its timer not fired yet (later in the same batch, or no orchestrator).
    update = fold_(
        UpdateSchedule("nightly", spec=hourly(timezone="Asia/Kolkata")), utc(2026, 1, 1, 1, 0, 2)
    )
    fired = [e for e in update.events if isinstance(e, ScheduleFired)]
    assert [e.instance_id for e in fired] == ["nightly-20260101T010000Z"]
    # Kolkata is UTC+5:30: its next full hour is 01:30 UTC.
    assert fold_.live.next_slot_ms == utc(2026, 1, 1, 1, 30)
    stale = decide_schedule(fold_.state, FireSchedule("nightly"), utc(2026, 1, 1, 1, 0, 3))
    assert stale.commands == ()


# -- the state record ------------------------------------------------------------------------


def test_the_state_record_round_trips() -> None:
    fold_ = created(now=T0, overlap=Overlap.BUFFER_ALL)
    for hour in (1, 2, 3):
        fold_(FireSchedule("nightly"), utc(2026, 1, 1, hour))
    fold_(TriggerSchedule("nightly", at_ms=utc(2026, 1, 1, 3, 30)), utc(2026, 1, 1, 3, 30))
    state = replace(fold_.live, paused=True, note="ünïcode")
    assert load_schedule(dump_definition(state), dump_schedule(state)) == state
    tombstone = replace(state, deleted=True)
    assert load_schedule(dump_definition(tombstone), dump_schedule(tombstone)) == tombstone
    assert b'"cron"' not in dump_schedule(state)  # a fire rewrites the small record only
    assert state.with_changes(paused=False) == replace(state, paused=False)


def test_a_scheduled_run_replays_identically() -> None:
    from replayflow.testing import Environment

    @rf.workflow(name="replayed", schedule=rf.Schedule(cron="0 * * * *"))
    async def replayed(ctx: rf.Context) -> int:
        await ctx.sleep("nap", "10m")
        return 1

    env = Environment(replayed)
    env.advance("2h")
    runs = env.instances("replayed")
    assert runs == ["replayed-20260101T010000Z", "replayed-20260101T020000Z"]
    for run in runs:
        assert env.replay(run).identical, env.replay(run).difference
