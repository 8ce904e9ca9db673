"""A deployed document's `schedule.cron/every/after` gives it a schedule; a newer
version replaces it (or deletes it when it has none). On the Kafka engine (documents
on replayflow.workflows, as `replayflow orchestrator` composes them); the pure part,
`declarations()`, in the environment and alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from replayflow.core.schedule_messages import (
    CreateSchedule,
    DeleteSchedule,
    ScheduleDeleted,
    ScheduleUpdated,
)
from replayflow.dsl.documents import deploy, record_of, workflow_from_text
from replayflow.dsl.schedule import declarations
from replayflow.testing import Environment
from tests.chaos.workloads import wait_until
from tests.schedules.engines import KafkaEngine

T0 = datetime(2026, 1, 1, tzinfo=UTC)

DOC = """\
document:
  dsl: '1.0.3'
  namespace: test
  name: tick
  version: '{version}'
{schedule}do:
  - note:
      set:
        version: '{version}'
"""


def doc(version: str, schedule: str = "") -> str:
    return DOC.format(version=version, schedule=schedule)


EVERY_HOUR = "schedule:\n  every: {hours: 1}\n"
AT_HALF_PAST = "schedule:\n  cron: '30 * * * *'\n"
AFTER_TEN_MINUTES = "schedule:\n  after: PT10M\n"


def test_declarations_follow_the_newest_version() -> None:
    v1 = record_of(doc("1.0.0", EVERY_HOUR))
    v2 = record_of(doc("2.0.0", AT_HALF_PAST))
    v3 = record_of(doc("3.0.0"))
    (first,) = declarations([v1])
    assert isinstance(first, CreateSchedule) and first.upsert
    assert (first.schedule_id, first.action.workflow, first.action.version) == (
        "tick",
        "tick",
        "1.0.0",
    )
    (second,) = declarations([v2, v1])
    assert isinstance(second, CreateSchedule) and second.spec.cron == ("30 * * * *",)
    assert second.action.version == "2.0.0"
    assert declarations([v1, v2, v3]) == [DeleteSchedule("tick")]
    assert declarations([v3]) == []  # never had one: nothing to delete
    assert declarations([v1], only="other") == []


def test_a_document_schedule_runs_in_the_environment() -> None:
    record = record_of(doc("1.0.0", AFTER_TEN_MINUTES))
    env = Environment(workflow_from_text(doc("1.0.0", AFTER_TEN_MINUTES)), start=T0)
    for declaration in declarations([record]):
        env.deliver(declaration)
    env.advance("25m")
    # Reruns: the first at once, each next 10 minutes after the previous one ended.
    assert env.instances("tick") == [
        "tick-20260101T000001Z",
        "tick-20260101T001001Z",
        "tick-20260101T002001Z",
    ]


def deployed(engine: KafkaEngine, text: str, version: str | None) -> None:
    """Deploy `text` and wait until its schedule is declared: at `version`, or gone
    for None. The orchestrator declares it only once its watcher has read the document
    back, so a quiet spell of the orchestrators alone may end before that (and the
    clock would then move on without the schedule)."""
    assert engine.documents is not None
    deploy(engine.documents, text)

    def declared() -> bool:
        engine.settle()
        found = engine.schedules.describe("tick")
        return (None if found is None else found.action.version) == version

    wait_until(declared, 60, f"the schedule at version {version}", interval=0.1)


@pytest.mark.kafka
def test_deployed_versions_create_replace_and_delete_the_schedule(
    kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> None:
    engine = KafkaEngine(kafka_bootstrap, namespace, tmp_path, T0, documents=True)
    try:
        deployed(engine, doc("1.0.0", EVERY_HOUR), "1.0.0")
        engine.advance("2h")
        assert engine.instances("tick") == ["tick-20260101T010000Z", "tick-20260101T020000Z"]

        deployed(engine, doc("2.0.0", AT_HALF_PAST), "2.0.0")
        engine.advance("1h")  # 02:30 under v2; 03:00 is no slot any more
        assert engine.instances("tick")[-1] == "tick-20260101T023000Z"
        assert len(engine.instances("tick")) == 3
        assert engine.schedules.describe("tick").action.version == "2.0.0"

        deployed(engine, doc("3.0.0"), None)
        engine.advance("2h")
        assert len(engine.instances("tick")) == 3
        facts = engine.facts("tick")
        assert [type(f) for f in facts if isinstance(f, ScheduleUpdated | ScheduleDeleted)] == [
            ScheduleUpdated,
            ScheduleDeleted,
        ]
        assert engine.schedules.describe("tick") is None
    finally:
        engine.close()
