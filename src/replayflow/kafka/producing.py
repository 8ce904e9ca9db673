"""Producing records and knowing they arrived: `deliver` produces and flushes, and
raises when the broker did not acknowledge every record in time."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message

from replayflow.core.errors import ReplayflowError
from replayflow.kafka.config import FLUSH_TIMEOUT

Headers = Sequence[tuple[str, bytes | str | None]] | dict[str, bytes | str | None]


class DeliveryError(ReplayflowError):
    """Kafka did not acknowledge a record: it failed, or the wait for it timed out. The
    record may or may not have been written; sending it again is safe where the
    receiver deduplicates (commands are idempotent by instance id and attempt)."""


@dataclass(frozen=True)
class Record:
    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Headers | None = None
    partition: int | None = None


def produce(producer: Any, record: Record, on_delivery: Any = None) -> None:
    """Queue one record; waits for room while the producer's queue is full."""
    extra: dict[str, Any] = {} if record.partition is None else {"partition": record.partition}
    while True:
        try:
            producer.produce(
                record.topic,
                key=record.key,
                value=record.value,
                headers=record.headers,
                on_delivery=on_delivery,
                **extra,
            )
            return
        except BufferError:
            producer.poll(0.05)


def deliver(producer: Any, records: Iterable[Record], timeout: float = FLUSH_TIMEOUT) -> None:
    """Produce `records` and wait until the broker acknowledged each one. Raises
    DeliveryError naming the first failure, or the count still unacknowledged after
    `timeout` seconds."""
    failures: list[str] = []
    lock = threading.Lock()
    pending = 0

    def delivered(error: KafkaError | None, message: Message) -> None:
        nonlocal pending
        with lock:
            pending -= 1
            if error is not None:
                failures.append(f"{message.topic()}: {error.str()}")

    for record in records:
        with lock:
            pending += 1
        produce(producer, record, delivered)
    producer.flush(timeout)
    with lock:
        if failures:
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise DeliveryError(f"Kafka did not accept a record: {failures[0]}{more}")
        if pending > 0:
            raise DeliveryError(
                f"Kafka did not acknowledge {pending} record(s) within {timeout:g} s"
            )
