"""Bad schedule commands on replayflow.commands go to the dead-letter topic with their
reason and original bytes: a FireSchedule or a ScheduleRunEnded from outside the
orchestrator, a command keyed other than `~schedule:<id>`, a spec that cannot be
(an unknown time zone, inside valid Avro), a second create with another definition,
a command for no schedule; and the good schedule around them keeps firing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

import replayflow as rf
from replayflow import codec
from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.messages import DeadLetter
from replayflow.core.schedule_messages import (
    CreateSchedule,
    FireSchedule,
    PauseSchedule,
    ScheduleRunEnded,
)
from replayflow.core.schedule_spec import ScheduleSpec
from replayflow.core.schedule_state import ScheduleAction
from replayflow.kafka.config import producer_config
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics
from tests.chaos.workloads import read_topic, wait_until

pytestmark = pytest.mark.kafka


@rf.workflow(name="dl_tick")
async def dl_tick(ctx: rf.Context) -> int:
    return 1


def test_bad_schedule_commands_are_dead_lettered_with_their_reasons(
    settings: Settings, tmp_path: Path
) -> None:
    apply_topics(settings.bootstrap, load_topics(settings))
    topics = Topics(settings)
    runtime = LocalRuntime(settings.replace(data_dir=tmp_path), Registry.of(dl_tick)).start()
    try:
        with Client(settings, watch_completions=False) as client:
            client.schedules.create("good", "dl_tick", rf.Schedule(every="1s"))
            other = CreateSchedule("good", ScheduleSpec(cron=("@daily",)), ScheduleAction("x"))
            bad_zone = codec.encode(
                CreateSchedule(
                    "z",
                    ScheduleSpec(timezone="Europe/Berlin", cron=("@daily",)),
                    ScheduleAction("dl_tick"),
                )
            ).replace(b"Europe/Berlin", b"Europe/Berlix")
            records = {
                "fire from outside": (b"~schedule:good", codec.encode(FireSchedule("good"))),
                "run ended from outside": (
                    b"~schedule:good",
                    codec.encode(ScheduleRunEnded("good", "good-x", "COMPLETED")),
                ),
                "wrong key": (b"good", codec.encode(PauseSchedule("good"))),
                "bad zone": (b"~schedule:z", bad_zone),
                "another definition": (b"~schedule:good", codec.encode(other)),
                "no such schedule": (b"~schedule:nope", codec.encode(PauseSchedule("nope"))),
            }
            producer = Producer(producer_config(settings))
            for key, value in records.values():
                producer.produce(topics.commands, key=key, value=value)
            producer.flush(30)

            def dead() -> list[DeadLetter]:
                found = [r.decoded() for r in read_topic(settings, topics.dlq)]
                return found if len(found) >= len(records) else []

            letters = wait_until(dead, 60, "every dead letter")
            by_value = {d.value: (d.error_type, d.reason) for d in letters}
            for name, (_, value) in records.items():
                assert value in by_value, name
            assert by_value[records["fire from outside"][1]][0] == "NotACommand"
            assert by_value[records["run ended from outside"][1]] == (
                "NotACommand",
                "ScheduleRunEnded is internal to the orchestrator",
            )
            assert by_value[records["wrong key"][1]][0] == "WrongKey"
            assert "unknown time zone 'Europe/Berlix'" in by_value[records["bad zone"][1]][1]
            assert "exists with another definition" in by_value[records["another definition"][1]][1]
            assert "no schedule 'nope'" in by_value[records["no such schedule"][1]][1]
            # The good schedule kept firing through all of it.
            time.sleep(2)
            described = client.schedules.describe("good")
            assert described is not None and len(described.recent_runs) >= 2
    finally:
        runtime.stop()
