"""Stream readers and the orchestrator's transactions, on the real broker.

Values come from workers without a transaction; the orchestrator writes its markers
(StreamAttemptAccepted, StreamEnded) inside transactions, for every instance of the
partition. A reader must not wait behind another instance's open transaction, and must
show its own instance's markers only once committed (never an aborted one)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from replayflow import codec
from replayflow.core.stream_records import StreamAttemptAccepted, StreamEnded, StreamValue
from replayflow.kafka import clients
from replayflow.kafka.partition import murmur2_partition
from replayflow.settings import Settings
from replayflow.streams import Stream
from replayflow.topics import Topics, apply_topics, load_topics

pytestmark = pytest.mark.kafka


@pytest.fixture
def topics(settings: Settings) -> Settings:
    assert apply_topics(settings.bootstrap, load_topics(settings)).ok
    return settings


@pytest.fixture
def engine_producer(topics: Settings) -> Iterator[Producer]:
    """A transactional producer standing in for an orchestrator."""
    producer = clients.transactional_producer(topics, f"{topics.namespace}-orchestrator")
    yield producer
    producer.flush(10)


def two_ids_on_one_partition(settings: Settings) -> tuple[str, str]:
    partitions = settings.partitions or 1
    mine = f"mine-{uuid.uuid4().hex[:8]}"
    target = murmur2_partition(mine.encode(), partitions)
    while True:
        other = f"other-{uuid.uuid4().hex[:8]}"
        if murmur2_partition(other.encode(), partitions) == target:
            return mine, other


def put(producer: Producer, settings: Settings, record: Any) -> None:
    producer.produce(
        Topics(settings).streams, codec.encode(record), key=record.instance_id.encode()
    )
    producer.flush(10)


def value(instance_id: str, text: str, attempt: int = 1) -> StreamValue:
    return StreamValue(instance_id, "tokens", "talk", attempt, 0, f'"{text}"', 0)


def next_items(stream: Stream, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = stream.next_batch(0.1)
        if batch is None:
            return []
        if batch:
            return batch
    return []


def test_a_value_does_not_wait_behind_another_instances_open_transaction(
    topics: Settings, engine_producer: Producer
) -> None:
    settings = topics
    mine, other = two_ids_on_one_partition(settings)
    worker = clients.producer(settings)
    engine_producer.begin_transaction()
    put(engine_producer, settings, StreamEnded(other, "COMPLETED", 0))  # left open
    put(worker, settings, value(mine, "hello"))
    with Stream(settings, mine, "tokens") as stream:
        started = time.monotonic()
        items = next_items(stream, 5.0)
        waited = time.monotonic() - started
    engine_producer.commit_transaction(10)
    assert [(i.kind, i.value) for i in items] == [("value", "hello")]
    assert waited < 3.0  # a read_committed reader waits until the transaction ends


def test_own_engine_markers_count_only_once_committed(
    topics: Settings, engine_producer: Producer
) -> None:
    settings = topics
    mine = f"mine-{uuid.uuid4().hex[:8]}"
    worker = clients.producer(settings)
    put(worker, settings, value(mine, "a", attempt=1))
    with Stream(settings, mine, "tokens", settled=True) as stream:
        assert next_items(stream, 1.0) == []  # held until the engine accepts attempt 1
        # An acceptance whose transaction aborts (say the orchestrator was fenced).
        engine_producer.begin_transaction()
        put(engine_producer, settings, StreamAttemptAccepted(mine, "talk", 1, 0))
        assert next_items(stream, 1.0) == []  # open: not shown
        engine_producer.abort_transaction(10)
        put(worker, settings, value(mine, "b", attempt=1))
        assert next_items(stream, 2.0) == []  # aborted: still not accepted
        # The retried transaction commits it.
        engine_producer.begin_transaction()
        put(engine_producer, settings, StreamAttemptAccepted(mine, "talk", 1, 0))
        put(engine_producer, settings, StreamEnded(mine, "COMPLETED", 0))
        assert next_items(stream, 1.0) == []
        engine_producer.commit_transaction(10)
        items = next_items(stream, 10.0)
        assert [(i.kind, i.value or i.reason) for i in items] == [
            ("value", "a"),
            ("value", "b"),
            ("ended", "COMPLETED"),
        ]
        assert stream.next_batch(0.1) is None  # over
