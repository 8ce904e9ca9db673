"""Schedule specs: cron and intervals, time zones across DST, bounds, jitter, slot names."""

from __future__ import annotations

from itertools import pairwise

import pytest

from replayflow.core.errors import ValidationError
from replayflow.core.names import check_instance_id
from replayflow.core.schedule_spec import (
    Interval,
    ScheduleSpec,
    jitter_for,
    next_fire_times,
    parse_slot_name,
    slot_instance_id,
    slot_name,
    slots_between,
)
from tests.unit.core.schedule_helpers import HOUR, MINUTE, hourly, utc

BERLIN = "Europe/Berlin"


def names(slots: list[int]) -> list[str]:
    return [slot_name(s) for s in slots]


def test_five_fields_names_and_macros() -> None:
    weekdays = ScheduleSpec(cron=("0 8 * JAN MON-FRI",))
    # 2026-01-02 is a Friday; the weekend is left out.
    assert names(next_fire_times(weekdays, utc(2026, 1, 2), 2)) == [
        "20260102T080000Z",
        "20260105T080000Z",
    ]
    assert next_fire_times(ScheduleSpec(cron=("@hourly",)), utc(2026, 1, 1), 2) == [
        utc(2026, 1, 1, 1),
        utc(2026, 1, 1, 2),
    ]
    assert next_fire_times(ScheduleSpec(cron=("@daily",)), utc(2026, 1, 1, 5), 1) == [
        utc(2026, 1, 2)
    ]


def test_six_fields_put_seconds_first() -> None:
    spec = ScheduleSpec(cron=("*/20 0 12 * * *",))
    assert names(next_fire_times(spec, utc(2026, 1, 1), 4)) == [
        "20260101T120000Z",
        "20260101T120020Z",
        "20260101T120040Z",
        "20260102T120000Z",
    ]


def test_union_of_cron_and_intervals_with_offset() -> None:
    spec = ScheduleSpec(cron=("0 * * * *",), intervals=(Interval(30 * MINUTE, 15 * MINUTE),))
    assert names(next_fire_times(spec, utc(2026, 1, 1), 4)) == [
        "20260101T001500Z",
        "20260101T004500Z",
        "20260101T010000Z",
        "20260101T011500Z",
    ]


def test_next_fire_times_are_strictly_after() -> None:
    spec = hourly()
    assert next_fire_times(spec, utc(2026, 1, 1, 1), 1) == [utc(2026, 1, 1, 2)]
    assert next_fire_times(spec, utc(2026, 1, 1, 1) - 1, 1) == [utc(2026, 1, 1, 1)]
    assert next_fire_times(spec, 0, 0) == []


def test_start_and_end_bound_the_slots_inclusively() -> None:
    spec = hourly(start_ms=utc(2026, 1, 1, 3), end_ms=utc(2026, 1, 1, 5))
    assert next_fire_times(spec, utc(2026, 1, 1), 10) == [
        utc(2026, 1, 1, 3),
        utc(2026, 1, 1, 4),
        utc(2026, 1, 1, 5),
    ]
    assert next_fire_times(spec, utc(2026, 1, 1, 5), 1) == []


def test_slots_between_is_half_open_and_bounded() -> None:
    day = slots_between(hourly(), utc(2026, 1, 1), utc(2026, 1, 2))
    assert len(day) == 24
    assert day[0] == utc(2026, 1, 1) and day[-1] == utc(2026, 1, 1, 23)
    with pytest.raises(ValidationError, match="more than"):
        slots_between(ScheduleSpec(cron=("* * * * * *",)), 0, 10 * HOUR)
    with pytest.raises(ValidationError, match="before it starts"):
        slots_between(hourly(), 10, 5)


# -- DST in Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET


def test_spring_forward_fixed_time_fires_once_right_after_the_gap() -> None:
    for expression in ("30 2 * * *", "0 30 2 * * *"):
        spec = ScheduleSpec(cron=(expression,), timezone=BERLIN)
        assert names(next_fire_times(spec, utc(2026, 3, 27, 12), 3)) == [
            "20260328T013000Z",  # 02:30 CET
            "20260329T010000Z",  # 03:00 CEST: the first instant after the gap
            "20260330T003000Z",  # 02:30 CEST
        ]


def test_fall_back_fixed_time_fires_once_at_the_first_occurrence() -> None:
    for expression in ("30 2 * * *", "0 30 2 * * *"):
        spec = ScheduleSpec(cron=(expression,), timezone=BERLIN)
        assert names(next_fire_times(spec, utc(2026, 10, 24, 12), 2)) == [
            "20261025T003000Z",  # 02:30 CEST; the 02:30 CET an hour later does not fire
            "20261026T013000Z",
        ]


def test_elapsed_time_keeps_its_period_across_both_changes() -> None:
    spec = ScheduleSpec(cron=("30 * * * *",), timezone=BERLIN)
    spring = slots_between(spec, utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    assert len(spring) == 23  # the local day has 23 hours
    assert all(b - a == HOUR for a, b in pairwise(spring))
    fall = slots_between(spec, utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))
    assert len(fall) == 25  # both 02:30s run
    assert "20261025T003000Z" in names(fall) and "20261025T013000Z" in names(fall)


def test_zone_offsets_apply_outside_dst() -> None:
    spec = ScheduleSpec(cron=("0 8 * * *",), timezone=BERLIN)
    assert next_fire_times(spec, utc(2026, 1, 1), 1) == [utc(2026, 1, 1, 7)]
    assert next_fire_times(spec, utc(2026, 7, 1), 1) == [utc(2026, 7, 1, 6)]


# -- validation


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ScheduleSpec(cron=("61 * * * *",)), "invalid cron"),
        (lambda: ScheduleSpec(cron=("* * *",)), "needs 5 fields"),
        (lambda: ScheduleSpec(cron=("70 * * * * *",)), "seconds field"),
        (lambda: ScheduleSpec(cron=("@reboot",)), "unknown cron macro"),
        (lambda: ScheduleSpec(cron=("0 0 30 2 *",)), "invalid cron"),
        (lambda: ScheduleSpec(cron="* * * * *"), "tuples"),  # type: ignore[arg-type]
        (lambda: ScheduleSpec(), "at least one"),
        (lambda: ScheduleSpec(cron=("@daily",), timezone="Mars/Olympus"), "unknown time zone"),
        (lambda: ScheduleSpec(cron=("@daily",), timezone="../../etc/passwd"), "unknown time"),
        (lambda: ScheduleSpec(cron=("@daily",), start_ms=10, end_ms=5), "before the start"),
        (lambda: ScheduleSpec(cron=("@daily",), jitter_ms=-1), "negative"),
        (lambda: Interval(1500), "whole number of seconds"),
        (lambda: Interval(HOUR, HOUR), "offset"),
    ],
)
def test_bad_specs_are_refused_with_a_reason(build: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build()  # type: ignore[operator]


# -- jitter and names


def test_jitter_is_deterministic_and_bounded() -> None:
    spec = hourly(jitter_ms=10 * MINUTE)
    slots = slots_between(spec, utc(2026, 1, 1), utc(2026, 1, 3))
    first = [jitter_for(spec, "nightly", s) for s in slots]
    assert first == [jitter_for(spec, "nightly", s) for s in slots]
    assert all(0 <= j < 10 * MINUTE for j in first)
    assert len(set(first)) > 40  # spread, not a constant
    assert first != [jitter_for(spec, "other", s) for s in slots]
    assert jitter_for(hourly(), "nightly", slots[0]) == 0


def test_jitter_never_reaches_the_next_slot() -> None:
    spec = ScheduleSpec(cron=("* * * * *",), jitter_ms=HOUR)
    for slot in slots_between(spec, utc(2026, 1, 1), utc(2026, 1, 1, 2)):
        assert 0 <= jitter_for(spec, "s", slot) < MINUTE


def test_slot_names_are_instance_ids_that_sort_in_time_order() -> None:
    slots = [utc(1999, 12, 31, 23), utc(2026, 3, 29, 1), utc(2026, 10, 25, 0, 30), utc(2100, 1, 1)]
    ids = [slot_instance_id("billing.daily", s) for s in slots]
    assert ids == sorted(ids)
    for instance_id in ids:
        check_instance_id(instance_id)
    assert [parse_slot_name(slot_name(s)) for s in slots] == slots
    with pytest.raises(ValidationError):
        parse_slot_name("2026-01-01")
