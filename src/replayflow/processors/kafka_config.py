"""Client settings shared by every replayflow producer and consumer."""

from __future__ import annotations

import time
from typing import Any

from replayflow.settings import Settings

# Java clients hash keys with murmur2; librdkafka's default differs. Every producer of
# ours uses murmur2 so an instance's commands land on the partition any Java (or other
# murmur2) producer would pick.
PARTITIONER = "murmur2_random"


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "partitioner": PARTITIONER,
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
        # Records up to the topics' max.message.bytes (8 MiB) must fit in a request.
        "message.max.bytes": 10 * 1024 * 1024,
    }
    config.update(extra)
    return config


def consumer_config(settings: Settings, group: str | None, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
        # A read_committed fetch can park on the broker until this passes even when a
        # transaction commits meanwhile; short waits keep step-to-step latency low.
        "fetch.wait.max.ms": 20,
    }
    if group is not None:
        config["group.id"] = group_name(settings, group)
    config.update(extra)
    return config


def group_name(settings: Settings, role: str) -> str:
    base = f"replayflow.{role}"
    return f"{settings.namespace}.{base}" if settings.namespace else base


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition Java's default partitioner (and ours) gives a key."""
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    length = len(key)
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= key[base + 2] << 16
    if tail >= 2:
        h ^= key[base + 1] << 8
    if tail >= 1:
        h ^= key[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def watermarks(consumer: Any, topic: str, partition: int, timeout: float = 30.0) -> tuple[int, int]:
    """(low, high) offsets of a partition, retried while a new topic's leader is elected."""
    from confluent_kafka import KafkaException, TopicPartition

    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=max(1.0, timeout / 3)
            )
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            retriable = getattr(error, "retriable", lambda: False)()
            if time.monotonic() > deadline or not (retriable or "leader" in str(exc).lower()):
                raise
            time.sleep(0.2)


def located(message: Any) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed message; always set on a message that
    carries no error, though the client's types allow None."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset
