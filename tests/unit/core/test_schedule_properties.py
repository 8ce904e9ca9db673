"""Property: whatever fire, trigger, backfill and run-ended commands arrive, duplicated and
in any order, the schedule starts each slot's instance at most once; with a start that
is idempotent by id downstream, each fired slot runs exactly once."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from replayflow.core.messages import StartWorkflow
from replayflow.core.schedule_messages import (
    BackfillSchedule,
    FireSchedule,
    PauseSchedule,
    ScheduleFired,
    ScheduleRunEnded,
    TriggerSchedule,
    UnpauseSchedule,
    UpdateSchedule,
)
from replayflow.core.schedule_spec import ScheduleSpec
from replayflow.core.schedule_state import Overlap
from replayflow.core.schedules import decide_schedule
from tests.unit.core.schedule_helpers import MINUTE, created, utc

T0 = utc(2026, 1, 1)
SPAN = 6 * 60  # minutes of virtual time the commands fall in

steps = st.one_of(
    st.tuples(st.just("fire"), st.integers(0, SPAN)),
    st.tuples(st.just("trigger"), st.integers(0, SPAN)),
    st.tuples(st.just("backfill"), st.integers(0, SPAN), st.integers(0, SPAN)),
    st.tuples(st.just("end"), st.integers(0, 20), st.sampled_from(["COMPLETED", "FAILED"])),
    st.tuples(st.just("pause"), st.booleans()),
    st.tuples(st.just("respec"), st.sampled_from(["*/20 * * * *", "*/30 * * * *"])),
)


@settings(max_examples=150, deadline=None)
@given(
    overlap=st.sampled_from(list(Overlap)),
    jitter=st.sampled_from([0, 7 * MINUTE]),
    script=st.lists(st.tuples(steps, st.integers(1, 3)), max_size=25),
)
def test_each_slot_is_started_at_most_once(
    overlap: Overlap, jitter: int, script: list[tuple[tuple[object, ...], int]]
) -> None:
    spec = ScheduleSpec(cron=("*/20 * * * *",), jitter_ms=jitter)
    fold = created(
        spec=spec, now=T0, overlap=overlap, catchup_ms=45 * MINUTE, pause_on_failure=True
    )
    now = T0
    for step, copies in script:
        kind = step[0]
        if kind == "fire":
            now = max(now, T0 + int(step[1]) * MINUTE)  # type: ignore[call-overload]
            command: object = FireSchedule("nightly")
        elif kind == "trigger":
            command = TriggerSchedule("nightly", at_ms=T0 + int(step[1]) * MINUTE)  # type: ignore[call-overload]
        elif kind == "backfill":
            a, b = sorted((int(step[1]), int(step[2])))  # type: ignore[call-overload]
            command = BackfillSchedule("nightly", T0 + a * MINUTE, T0 + b * MINUTE)
        elif kind == "end":
            started = fold.started()
            if not started:
                continue
            instance_id = started[int(step[1]) % len(started)]  # type: ignore[call-overload]
            command = ScheduleRunEnded("nightly", instance_id, str(step[2]))
        elif kind == "pause":
            command = PauseSchedule("nightly") if step[1] else UnpauseSchedule("nightly")
        else:
            command = UpdateSchedule("nightly", spec=ScheduleSpec(cron=(str(step[1]),)))
        for _ in range(copies):  # duplicates, as a retrying client or producer sends them
            now += 1000
            fold(command, now)  # type: ignore[arg-type]

    started = fold.started()
    assert len(started) == len(set(started)), Counter(started).most_common(3)
    # Downstream, StartWorkflow is idempotent by id: the instances are exactly the fired slots.
    downstream = {
        c.instance_id for d in fold.decisions for c in d.commands if isinstance(c, StartWorkflow)
    }
    fired = [e.instance_id for e in fold.events(ScheduleFired)]
    assert sorted(fired) == sorted(downstream) and len(fired) == len(downstream)
    assert all(i.startswith("nightly-") for i in started)


def test_a_duplicate_of_every_command_changes_nothing() -> None:
    fold = created(now=T0, overlap=Overlap.BUFFER_ALL)
    for command, at in [
        (FireSchedule("nightly"), utc(2026, 1, 1, 1)),
        (FireSchedule("nightly"), utc(2026, 1, 1, 2)),
        (
            ScheduleRunEnded("nightly", "nightly-20260101T010000Z", "COMPLETED"),
            utc(2026, 1, 1, 2, 5),
        ),
        (PauseSchedule("nightly", "x"), utc(2026, 1, 1, 2, 6)),
        (UnpauseSchedule("nightly"), utc(2026, 1, 1, 2, 7)),
    ]:
        fold(command, at)  # type: ignore[arg-type]
        again = decide_schedule(fold.state, command, at + 1)  # type: ignore[arg-type]
        assert again.commands == () and again.events == ()
