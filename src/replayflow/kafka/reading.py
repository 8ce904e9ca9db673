"""Reading partitions to their end: the one stop condition every reader uses.

The end of a partition is its high watermark taken when the read starts. A
read_committed consumer is told the last stable offset there (the first offset of a
transaction still open), so the read never waits for an open transaction. The
consumer's position moves past transaction markers and aborted records although they
are never delivered, so "position >= end" holds once everything before the end was
seen, whatever the partition holds. Records produced after the start are read only if
they arrive before that point; a follower keeps consuming with the same consumer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from replayflow.core.errors import ReplayflowError
from replayflow.kafka.config import METADATA_TIMEOUT
from replayflow.kafka.outage import is_transport

log = logging.getLogger("replayflow.kafka")

#: Offset meaning "from the partition's first record".
BEGINNING = -1


class ReadTimeout(ReplayflowError, TimeoutError):
    """A read made no progress towards a partition's end for too long."""


def watermarks(
    consumer: Any, topic: str, partition: int, timeout: float = METADATA_TIMEOUT
) -> tuple[int, int]:
    """(low, high) offsets of a partition, retried while a new topic's leader is elected.
    Under read_committed, `high` is the last stable offset."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=max(1.0, timeout / 3)
            )
            return int(low), int(high)
        except KafkaException as exc:
            if time.monotonic() > deadline or not worth_asking_again(exc):
                raise
            time.sleep(0.2)


# Answers while a partition's leadership settles (a topic just created, a broker just
# restarted): asked again shortly, they are answered.
_LEADERS_SETTLING = frozenset(
    {
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


def worth_asking_again(exc: KafkaException) -> bool:
    """Whether a failed offsets request may be answered if asked again: the client says
    it is retriable, a partition's leadership is settling, the cluster is unreachable
    for now, or the broker asked was dropped from the cluster's metadata (a node killed
    in a cluster of three: librdkafka fails the request with _DESTROY_BROKER, and the
    next one goes to the partition's new leader)."""
    error = exc.args[0] if exc.args else None
    code = getattr(error, "code", lambda: None)()
    return (
        getattr(error, "retriable", lambda: False)()
        or code in _LEADERS_SETTLING
        or code == KafkaError._DESTROY_BROKER
        or is_transport(error)
    )


def end_offsets(
    consumer: Any, topic: str, partitions: Iterable[int], timeout: float = METADATA_TIMEOUT
) -> list[TopicPartition]:
    """The end of each partition (the last stable offset under read_committed), asked in
    one request: assigning these makes a follower see exactly what comes after now."""
    asked = [TopicPartition(topic, p, OFFSET_END) for p in partitions]
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = consumer.offsets_for_times(asked, timeout=max(1.0, timeout / 3))
            return [TopicPartition(topic, tp.partition, tp.offset) for tp in found]
        except KafkaException as exc:
            if time.monotonic() > deadline or not worth_asking_again(exc):
                raise
            time.sleep(0.2)


def located(message: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed message; always set on a message that
    carries no error, though the client's types allow None."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


def read_to_end(
    consumer: Any,
    topic: str,
    starts: Mapping[int, int] | Iterable[int],
    *,
    timeout: float = METADATA_TIMEOUT,
    batch: int = 1000,
) -> Iterator[list[Message]]:
    """Assign `consumer` to the partitions of `topic` and yield batches of their
    records until each partition's position reaches the end it had when the read
    started (see the module docstring).

    `starts` maps partition -> first offset to read (BEGINNING, or an offset below the
    partition's first one, means its first record); a plain iterable of partitions
    reads each from its first record. Every partition stays assigned afterwards, so a
    caller may go on consuming new records. Raises ReadTimeout when a partition still
    short of its end makes no progress for `timeout` seconds.
    """
    begin = dict(starts) if isinstance(starts, Mapping) else dict.fromkeys(starts, BEGINNING)
    ends: dict[int, int] = {}
    assignment = []
    for partition, start in sorted(begin.items()):
        low, high = watermarks(consumer, topic, partition, timeout)
        if high > max(low, start):
            ends[partition] = high
        offset = OFFSET_BEGINNING if start <= low else start
        assignment.append(TopicPartition(topic, partition, offset))
    consumer.assign(assignment)
    progress: dict[int, int] = {}
    stalled_since = time.monotonic()
    while ends:
        # Short waits: a batch call waits its whole timeout unless `batch` records came,
        # and the last records of a read are usually fewer than that.
        messages = consumer.consume(batch, timeout=0.05)
        good = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("reading %s: %s", topic, error)
        if good:
            yield good
        moved = False
        for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
            if tp.offset >= ends[tp.partition]:
                del ends[tp.partition]
                moved = True
            elif tp.offset > progress.get(tp.partition, -1):
                progress[tp.partition] = tp.offset
                moved = True
        now = time.monotonic()
        if moved or good:
            stalled_since = now
        elif now - stalled_since > timeout:
            short = ", ".join(f"{p}: at {progress.get(p, '?')} of {e}" for p, e in ends.items())
            raise ReadTimeout(f"reading {topic} made no progress in {timeout:g} s ({short})")


def read_all(
    consumer: Any,
    topic: str,
    starts: Mapping[int, int] | Iterable[int],
    *,
    timeout: float = METADATA_TIMEOUT,
) -> list[Message]:
    """Every record read_to_end yields, in one list (partition order is kept)."""
    return [m for batch in read_to_end(consumer, topic, starts, timeout=timeout) for m in batch]
