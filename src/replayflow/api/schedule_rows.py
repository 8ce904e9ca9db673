"""Schedules in the read model: one row per schedule, `s|<schedule id>`, folded from
the schedule's facts by core/schedule_view.py (the client and the test environment
fold them the same way). PURE, like projection.py; a fact seen already writes nothing.
A deleted schedule keeps its row, marked deleted, so facts delivered again never bring
it back."""

from __future__ import annotations

from replayflow.api.readkeys import Getter, Write, dumps, key, loads
from replayflow.core.schedule_messages import ScheduleEvent
from replayflow.core.schedule_view import apply


def row_key(schedule_id: str) -> bytes:
    return key("s", schedule_id)


ROWS = key("s", "")  # the prefix of every schedule row


def project_schedule(event: ScheduleEvent, get: Getter) -> list[Write]:
    k = row_key(event.schedule_id)
    row = loads(get(k))
    new = apply(row, event)
    if new is None or new is row:
        return []
    return [(k, dumps(new))]
