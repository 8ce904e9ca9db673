"""Schedules in the read model: a row per schedule from its facts, the same whatever
order of redelivery; a deleted schedule's row stays, marked, so late redeliveries do not
bring it back; the instance a schedule started names it."""

from __future__ import annotations

from replayflow.api import projection as p
from replayflow.api.readkeys import loads
from replayflow.api.schedule_rows import row_key
from replayflow.core.messages import WorkflowStarted
from replayflow.core.schedule_messages import (
    DeleteSchedule,
    FireSchedule,
    PauseSchedule,
    ScheduleRunEnded,
)
from tests.unit.core.schedule_helpers import created, utc


def facts() -> list[object]:
    fold = created(now=utc(2026, 1, 1))
    fold(FireSchedule("nightly"), utc(2026, 1, 1, 1))
    fold(
        ScheduleRunEnded("nightly", "nightly-20260101T010000Z", "COMPLETED"), utc(2026, 1, 1, 1, 2)
    )
    fold(PauseSchedule("nightly", note="x"), utc(2026, 1, 1, 1, 3))
    return [e for d in fold.decisions for e in d.events]


def test_a_schedule_row_is_folded_from_its_facts_once() -> None:
    events = facts()
    once = p.fold_all(events)
    twice = p.fold_all(events + events)
    assert once == twice
    row = loads(once[row_key("nightly")])
    assert row["paused"] and row["note"] == "x" and row["running"] == []
    assert [(r["instance_id"], r["status"]) for r in row["runs"]] == [
        ("nightly-20260101T010000Z", "COMPLETED")
    ]
    assert [k for k in once if not k.startswith(row_key(""))] == []  # nothing else


def test_a_deleted_schedule_keeps_a_marked_row() -> None:
    fold = created(now=utc(2026, 1, 1))
    fold(DeleteSchedule("nightly"), utc(2026, 1, 1, 0, 5))
    events = [e for d in fold.decisions for e in d.events]
    store = p.fold_all(events)
    assert loads(store[row_key("nightly")])["deleted"]
    p.fold_all(events[:1], store)  # the create delivered again, late
    assert loads(store[row_key("nightly")])["deleted"]


def test_an_instance_row_names_the_schedule_that_started_it() -> None:
    started = WorkflowStarted(
        "nightly-x", 1, 5, "report", "1", "null", schedule_id="nightly", schedule_slot=3
    )
    row = p.public_instance(loads(p.fold_all([started])[p.instance_key("nightly-x")]))
    assert (row["schedule_id"], row["schedule_slot"]) == ("nightly", 3)
