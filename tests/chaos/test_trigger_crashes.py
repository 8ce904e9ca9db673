"""A Kafka topic trigger killed with SIGKILL five times while records keep arriving:
every record starts exactly one instance, none is lost.

`replayflow trigger -m tests.integration.trigger_workloads` runs as a subprocess and is
killed by the pid recorded at start, then started again with the same --id (so it
fences the dead one's producer and takes its partitions back at once). Records are
produced at a steady rate the whole time, so each kill lands in the middle of the
trigger's work. The commands topic is then read read_committed: one StartWorkflow per
record. The engine (in this process) folds them: one WorkflowStarted and one completion
per instance.

REPLAYFLOW_TRIGGER_KILL_RECORDS sets the number of records (default 10,000).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.messages import StartWorkflow, WorkflowStarted
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.producing import Record, deliver
from replayflow.kafka.reading import read_all
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import Topics
from tests.chaos.conftest import Cluster, completions_by_id, histories
from tests.chaos.workloads import TopicTail, read_topic, wait_until
from tests.integration import trigger_workloads

pytestmark = pytest.mark.kafka

KILLS = 5
TOTAL = int(os.environ.get("REPLAYFLOW_TRIGGER_KILL_RECORDS", "10000"))
PRODUCE_SECONDS = 8.0


def _produce_steadily(settings: Settings, topic: str, total: int, done: threading.Event) -> None:
    producer = clients.producer(settings)
    chunks = 80
    per_chunk = -(-total // chunks)
    for start in range(0, total, per_chunk):
        deliver(
            producer,
            [
                Record(
                    topic, json.dumps({"id": f"rec-{i:05d}", "n": i}).encode(), key=str(i).encode()
                )
                for i in range(start, min(total, start + per_chunk))
            ],
        )
        time.sleep(PRODUCE_SECONDS / chunks)
    done.set()


def _count_uncommitted(settings: Settings, topic: str) -> int:
    """Records of a topic read read_uncommitted: aborted transactions' records too."""
    consumer = clients.consumer(settings, None, **{"isolation.level": "read_uncommitted"})
    try:
        return len(read_all(consumer, topic, topic_partitions(consumer, topic)))
    finally:
        consumer.close()


def test_trigger_killed_five_times_mid_run(
    cluster: Cluster, settings: Settings, tmp_path: Path
) -> None:
    began = time.monotonic()
    topic = settings.topic_name(trigger_workloads.KILL_SOURCE)
    admin = clients.admin(settings)
    for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        future.result()
    module = "tests.integration.trigger_workloads"

    def start_trigger() -> None:
        # Small batches: many transactions, so a kill often lands inside one.
        process = cluster.trigger(module, "kill-member", "--batch-size", "100")
        wait_until(lambda: "assigned" in process.output(), 60, "the trigger's partitions")

    start_trigger()
    produced = threading.Event()
    producer = threading.Thread(
        target=_produce_steadily, args=(settings, topic, TOTAL, produced), daemon=True
    )
    starts: Counter[str] = Counter()
    with TopicTail(settings, Topics(settings).commands) as tail:

        def progress() -> int:
            for record in tail.poll(0.05):
                command = record.decoded()
                assert isinstance(command, StartWorkflow)
                starts[command.instance_id] += 1
            return sum(starts.values())

        producer.start()
        kills = []
        for k in range(1, KILLS + 1):
            # Each victim has written starts of its own (it is at work, not starting up).
            victim = cluster.processes[-1]
            target = max(k * TOTAL // (KILLS + 2), progress() + TOTAL // 50)
            wait_until(
                lambda t=target: (cluster.check() or progress()) >= t,
                60,
                f"{target} starts before kill {k}",
                interval=0,
            )
            victim.kill()
            kills.append(progress())
            start_trigger()
        producer.join(60)
        assert produced.is_set(), "the producer did not finish"
        wait_until(lambda: progress() >= TOTAL, 90, "a start for every record", interval=0.1)
        # Anything written twice would show up here: let in-flight transactions land.
        time.sleep(2)
        progress()
    assert all(0 < at < TOTAL for at in kills), f"a kill was not mid-run: {kills}"
    print(f"\nkilled at {kills} of {TOTAL} starts; triggers done {time.monotonic() - began:.1f} s")

    # Exactly one start per record, read again from the start (read_committed).
    counts = Counter(
        r.decoded().instance_id for r in read_topic(settings, Topics(settings).commands)
    )
    expected = {f"rec-{i:05d}" for i in range(TOTAL)}
    assert set(counts) == expected
    duplicates = {i: n for i, n in counts.items() if n != 1}
    assert not duplicates, f"{len(duplicates)} records started more than once"

    # Starts written in transactions that a kill cut short were aborted: there, but
    # never visible read_committed (above). Counted to show the kills hit mid-batch.
    written = _count_uncommitted(settings, Topics(settings).commands)
    print(f"{written - TOTAL} starts were written in transactions a kill aborted")

    # The engine folds them: one instance per record, each started and completed once.
    runtime = LocalRuntime(
        settings.replace(data_dir=tmp_path / "engine"),
        Registry.of(trigger_workloads),
        orchestrator_id="kill-engine",
    )
    with runtime, Client(settings, watch_completions=False):
        wait_until(
            lambda: runtime.orchestrator.stats.commands >= TOTAL,
            120,
            "the engine to fold the starts",
        )
        wait_until(lambda: len(completions_by_id(settings)) >= TOTAL, 60, "every completion")
    assert not runtime.errors, runtime.errors
    completions = completions_by_id(settings)
    assert set(completions) == expected and set(completions.values()) == {1}
    started = Counter(
        instance_id
        for instance_id, events in histories(settings).items()
        for event in events
        if isinstance(event, WorkflowStarted)
    )
    assert set(started) == expected and set(started.values()) == {1}
    print(f"whole test {time.monotonic() - began:.1f} s")
