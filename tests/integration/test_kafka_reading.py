"""read_to_end on the real broker: it stops at the end it saw at the start, on an
empty topic, past aborted transactions and their markers, before a transaction still
open, and over several partitions read from given offsets."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from replayflow.kafka import clients
from replayflow.kafka.producing import Record, deliver
from replayflow.kafka.reading import BEGINNING, read_all, read_to_end
from replayflow.settings import Settings


@pytest.fixture
def topic(settings: Settings, request: pytest.FixtureRequest) -> str:
    partitions = getattr(request, "param", 1)
    name = settings.topic_name(f"reading-{uuid.uuid4().hex[:8]}")
    admin = clients.admin(settings)
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = admin.list_topics(name, timeout=10).topics.get(name)
        if found and found.error is None and len(found.partitions) == partitions:
            break
        time.sleep(0.1)
    return name


@pytest.fixture
def consumer(settings: Settings) -> Iterator[Consumer]:
    reader = clients.consumer(settings, None)
    yield reader
    reader.close()


@pytest.fixture
def transactional(settings: Settings) -> Iterator[Producer]:
    producer = clients.transactional_producer(settings, f"reading-test-{uuid.uuid4().hex}")
    yield producer
    producer.flush(10)


def _values(messages: list) -> list[bytes]:  # type: ignore[type-arg]
    return [m.value() for m in messages]


def test_an_empty_topic_ends_at_once(topic: str, consumer: Consumer) -> None:
    started = time.monotonic()
    assert read_all(consumer, topic, [0], timeout=5) == []
    assert time.monotonic() - started < 5


def test_aborted_transactions_and_markers_are_passed(
    topic: str, consumer: Consumer, transactional: Producer
) -> None:
    def transaction(values: list[bytes], commit: bool) -> None:
        transactional.begin_transaction()
        for value in values:
            transactional.produce(topic, key=b"k", value=value)
        transactional.flush(10)
        if commit:
            transactional.commit_transaction(30)
        else:
            transactional.abort_transaction(30)

    transaction([b"a1", b"a2"], commit=False)
    transaction([b"c1"], commit=True)
    transaction([b"a3"], commit=False)  # the partition ends in an abort marker
    assert _values(read_all(consumer, topic, [0], timeout=10)) == [b"c1"]


def test_only_aborted_records_read_as_nothing(
    topic: str, consumer: Consumer, transactional: Producer
) -> None:
    transactional.begin_transaction()
    transactional.produce(topic, key=b"k", value=b"gone")
    transactional.flush(10)
    transactional.abort_transaction(30)
    assert read_all(consumer, topic, [0], timeout=10) == []


def test_a_transaction_still_open_is_not_waited_for(
    topic: str, settings: Settings, consumer: Consumer, transactional: Producer
) -> None:
    deliver(clients.producer(settings), [Record(topic, b"before")])
    transactional.begin_transaction()
    transactional.produce(topic, key=b"k", value=b"open")
    transactional.flush(10)
    try:
        started = time.monotonic()
        assert _values(read_all(consumer, topic, [0], timeout=10)) == [b"before"]
        assert time.monotonic() - started < 10
    finally:
        transactional.abort_transaction(30)


@pytest.mark.parametrize("topic", [3], indirect=True)
def test_several_partitions_from_given_offsets(
    topic: str, settings: Settings, consumer: Consumer
) -> None:
    producer = clients.producer(settings)
    records = [Record(topic, f"p0-{i}".encode(), partition=0) for i in range(5)]
    records += [Record(topic, f"p1-{i}".encode(), partition=1) for i in range(3)]
    deliver(producer, records)  # partition 2 stays empty

    batches = list(read_to_end(consumer, topic, {0: 2, 1: BEGINNING, 2: BEGINNING}, timeout=10))
    got = sorted(v.decode() for batch in batches for v in _values(batch))
    assert got == ["p0-2", "p0-3", "p0-4", "p1-0", "p1-1", "p1-2"]
    # Records produced after the read began are left to a follower on the same consumer.
    deliver(producer, [Record(topic, b"later", partition=2)])
    deadline = time.monotonic() + 10
    later: list[bytes] = []
    while not later and time.monotonic() < deadline:
        later = _values(consumer.consume(10, timeout=0.5))
    assert later == [b"later"]
