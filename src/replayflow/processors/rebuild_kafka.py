"""The Kafka side of a rebuild: reading one partition's history (from its start or from
a point in time), writing a rebuilt store as a new state changelog, and reading the
live state changelog for the comparison."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, TopicPartition

from replayflow import codec
from replayflow.core.errors import ReplayflowError
from replayflow.core.messages import HistoryEvent
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.config import FLUSH_TIMEOUT, METADATA_TIMEOUT
from replayflow.kafka.membership import close_consumer
from replayflow.kafka.producing import DeliveryError, Record, produce
from replayflow.kafka.reading import BEGINNING, read_to_end, watermarks
from replayflow.settings import Settings
from replayflow.store import keys
from replayflow.store.memory import MemoryStore
from replayflow.store.protocol import Store
from replayflow.topics import Topics

BATCH = 5000
# The store's own bookkeeping: not state, and rewritten by the store itself.
_BOOKKEEPING = (keys.CHANGELOG_OFFSET, keys.WRITTEN_AT)


@dataclass(frozen=True)
class KafkaHistory:
    """One partition's facts from the history topic, in offset order: a HistorySource
    that worker processes call themselves (it pickles as settings and a time)."""

    settings: Settings
    since: int | None = None  # ms: read from the first fact at or after it
    topic: str | None = None  # another history topic (a copy); default the namespace's

    def __call__(self, partition: int) -> Iterator[tuple[int, HistoryEvent]]:
        topic = self.topic or Topics(self.settings).history
        consumer = clients.consumer(self.settings, None)
        try:
            start = (
                BEGINNING
                if self.since is None
                else _offset_at(consumer, topic, partition, self.since)
            )
            for messages in read_to_end(consumer, topic, {partition: start}, batch=BATCH):
                for message in messages:
                    try:
                        event = codec.decode(message.value() or b"")
                    except codec.CodecError:
                        continue
                    if hasattr(event, "instance_id") and hasattr(event, "seq"):
                        yield message.offset() or 0, event
        finally:
            close_consumer(consumer)


def _offset_at(consumer: Any, topic: str, partition: int, ms: int) -> int:
    """The first offset of a fact written at or after `ms` (the end when none is)."""
    [found] = consumer.offsets_for_times(
        [TopicPartition(topic, partition, ms)], timeout=METADATA_TIMEOUT
    )
    if found.offset is None or found.offset < 0:
        return watermarks(consumer, topic, partition)[1]
    return int(found.offset)


def partition_count(settings: Settings, topic: str) -> int:
    consumer = clients.consumer(settings, None)
    try:
        partitions = topic_partitions(consumer, topic)
    finally:
        close_consumer(consumer)
    if not partitions:
        raise ReplayflowError(f"topic {topic!r} does not exist")
    return len(partitions)


def topic_records(settings: Settings, topic: str) -> int:
    """How many records a topic holds now (high minus low watermark, summed)."""
    consumer = clients.consumer(settings, None)
    try:
        total = 0
        for partition in topic_partitions(consumer, topic):
            low, high = watermarks(consumer, topic, partition)
            total += max(0, high - low)
        return total
    finally:
        close_consumer(consumer)


def write_changelog(settings: Settings, topic: str, store: Store) -> int:
    """Write every key of a rebuilt store to its partition of a state changelog topic,
    then record in the store the offset that reached: an orchestrator started on this
    store finds itself up to date, one started with no store restores it from the
    topic. Returns how many records were written."""
    producer = clients.producer(settings)
    lock = threading.Lock()
    failures: list[str] = []
    last = -1
    written = 0

    def delivered(error: KafkaError | None, message: Message) -> None:
        nonlocal last
        with lock:
            if error is not None:
                failures.append(error.str())
            else:
                last = max(last, message.offset() or 0)

    for key, value in store.scan(b""):
        if key in _BOOKKEEPING:
            continue
        produce(producer, Record(topic, value, key=key, partition=store.partition), delivered)
        written += 1
    remaining = producer.flush(FLUSH_TIMEOUT)
    if failures or remaining:
        raise DeliveryError(
            f"the changelog of partition {store.partition} was not written whole: "
            f"{failures[0] if failures else f'{remaining} records unacknowledged'}"
        )
    if written:
        store.write({}, last)
    return written


def read_state(settings: Settings, topic: str, partition: int) -> MemoryStore:
    """A partition's live state, as its changelog topic holds it now."""
    store = MemoryStore(partition)
    consumer = clients.consumer(settings, None)
    try:
        for messages in read_to_end(consumer, topic, [partition], batch=BATCH):
            changes: dict[bytes, bytes | None] = {}
            for message in messages:
                key = message.key()
                if key is not None and key not in _BOOKKEEPING:
                    changes[key] = message.value()
            store.write(changes, None)
    finally:
        close_consumer(consumer)
    return store
