"""A transaction left open on a partition, found from its last stable offset, and the
orchestrator's log line that says how to end it (kafka/open_transactions.py)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer, TopicPartition

import replayflow as rf
from replayflow.core.definitions import Registry
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.config import group_name
from replayflow.kafka.open_transactions import (
    OFFSETS_TOPIC,
    HangingWatch,
    offsets_partition,
)
from replayflow.processors.orchestrator import Orchestrator
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics

pytestmark = pytest.mark.kafka


@rf.workflow(name="open-txn-noop")
async def noop(ctx: rf.Context, x: int) -> int:
    return x


@pytest.fixture
def left_open(settings: Settings) -> Iterator[Producer]:
    """A transactional producer whose transaction stays open until the test ends it (its
    timeout, 5 minutes, outlasts the test)."""
    producer = clients.transactional_producer(
        settings, f"{settings.namespace}.left-open", **{"transaction.timeout.ms": 300_000}
    )
    producer.begin_transaction()
    yield producer
    with contextlib.suppress(Exception):  # ended by the test already
        producer.abort_transaction(30)


def test_an_open_transaction_and_its_groups_offsets_are_found_and_cleared(
    settings: Settings, left_open: Producer, caplog: pytest.LogCaptureFixture
) -> None:
    apply_topics(settings.bootstrap, load_topics(settings))
    history = Topics(settings).history
    group = f"{settings.namespace}.left-open-group"
    reader = clients.consumer(settings, None, **{"group.id": group})
    try:
        left_open.produce(history, b"open", partition=1)
        left_open.flush(30)
        left_open.send_offsets_to_transaction(
            [TopicPartition(history, 0, 0)], reader.consumer_group_metadata(), 30
        )
    finally:
        reader.close()
    admin = clients.admin(settings)
    watch = HangingWatch(settings.bootstrap, [history], [group], after=1.0)
    count = len(topic_partitions(admin, OFFSETS_TOPIC))
    ours = {(history, 1), (OFFSETS_TOPIC, offsets_partition(group, count))}
    assert [h for h in watch.check(admin) if (h.topic, h.partition) in ours] == []  # first seen
    time.sleep(1.5)
    with caplog.at_level(logging.ERROR, logger="replayflow.kafka"):
        found = {(h.topic, h.partition): h for h in watch.check(admin)}
        again = watch.check(admin)
    assert ours <= set(found), found
    assert (found[(history, 1)].stable, found[(history, 1)].end) == (0, 1)
    said = [r.getMessage() for r in caplog.records if "no producer will end" in r.getMessage()]
    assert len(said) == 1, said  # found twice, told once
    offsets_at = found[(OFFSETS_TOPIC, offsets_partition(group, count))].stable
    assert f"--topic {history} --partition 1 --start-offset 0`" in said[0]
    assert (
        f"--topic {OFFSETS_TOPIC} --partition {offsets_partition(group, count)} "
        f"--start-offset {offsets_at}`"
    ) in said[0]
    assert {(h.topic, h.partition) for h in again} >= ours

    left_open.abort_transaction(30)
    # The coordinator writes the abort markers after it answers: cleared once they land.
    deadline = time.monotonic() + 30
    while [h for h in watch.check(admin) if (h.topic, h.partition) in ours]:
        assert time.monotonic() < deadline, "still found after the abort"
        time.sleep(0.1)


def test_the_orchestrator_reports_a_transaction_left_open_on_its_topics(
    settings: Settings, left_open: Producer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    apply_topics(settings.bootstrap, load_topics(settings))
    tasks = Topics(settings).tasks
    orchestrator = Orchestrator(
        settings, Registry.of(noop), instance_id="open-txn", data_dir=tmp_path
    )
    watch = orchestrator.hanging
    assert tasks in watch.topics and watch.groups == [group_name(settings, "orchestrator")]
    # The same watch, checking every 0.2 s and calling a transaction hung after 1 s.
    orchestrator.hanging = HangingWatch(
        settings.bootstrap, watch.topics, watch.groups, after=1.0, every=0.2
    )
    left_open.produce(tasks, b"open", partition=2)
    left_open.flush(30)
    thread = threading.Thread(target=orchestrator.run, daemon=True)
    with caplog.at_level(logging.ERROR, logger="replayflow.kafka"):
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while (tasks, 2) not in {(h.topic, h.partition) for h in orchestrator.hanging.hanging}:
                assert time.monotonic() < deadline, "the orchestrator found nothing hanging"
                time.sleep(0.2)
        finally:
            orchestrator.stop()
            thread.join(30)
    assert any(
        f"--topic {tasks} --partition 2 --start-offset 0`" in r.getMessage() for r in caplog.records
    )
