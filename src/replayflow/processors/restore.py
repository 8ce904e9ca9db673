"""Bringing a partition store up to date with the compacted replayflow.state topic.

Runs when a partition is assigned: after a crash between commit and the RocksDB write
it applies the missing tail; with no local store (a new machine, a deleted folder) it
rebuilds everything from the changelog."""

from __future__ import annotations

import logging
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from replayflow.core.errors import ReplayflowError
from replayflow.processors.kafka_config import consumer_config, watermarks
from replayflow.settings import Settings
from replayflow.store.partition import PartitionStore

log = logging.getLogger("replayflow.restore")

BATCH = 10_000

# A compacted changelog drops tombstones after delete.retention.ms (24 h by default). A
# store last written longer ago than half of that may miss deletions that its tail no
# longer shows, so it is rebuilt from the whole changelog instead.
STALE_AFTER_MS = 12 * 3600 * 1000


class StaleStore(ReplayflowError):
    """The local store cannot be brought up to date from the changelog's tail."""


def is_stale(store: PartitionStore, now_ms: int) -> bool:
    written = store.written_at()
    return written is not None and now_ms - written > STALE_AFTER_MS


def restore_partition(
    settings: Settings, topic: str, store: PartitionStore, timeout: float = 120.0
) -> int:
    """Apply changelog records after the store's offset; returns how many were applied."""
    start = store.changelog_offset() + 1
    consumer = Consumer(
        consumer_config(
            settings, None, **{"group.id": "replayflow-restore", "enable.auto.offset.store": False}
        )
    )
    try:
        low, high = watermarks(consumer, topic, store.partition)
        if 0 < start < low:
            raise StaleStore(
                f"partition {store.partition}'s store stops at offset {start - 1}, but the "
                f"changelog now starts at {low}"
            )
        if high <= max(start, low):
            return 0
        begin = start if start > low else OFFSET_BEGINNING
        consumer.assign([TopicPartition(topic, store.partition, begin)])
        applied = 0
        changes: dict[bytes, bytes | None] = {}
        last = start - 1
        deadline = time.monotonic() + timeout
        while True:
            # Short waits: a changelog always ends in a transaction marker, which is
            # never delivered, so an up-to-date store gets no message at all and each
            # wait here is paid once per assigned partition.
            messages = consumer.consume(BATCH, timeout=0.05)
            for message in messages:
                if message.error() is not None:
                    continue
                key = message.key()
                if key is not None:
                    changes[key] = message.value()
                offset = message.offset()
                if offset is not None:
                    last = offset
                applied += 1
            if len(changes) >= BATCH:
                store.write(changes, last)
                changes = {}
            position = consumer.position([TopicPartition(topic, store.partition)])[0].offset
            if position >= high or (not messages and last >= high - 1):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"restoring partition {store.partition} from {topic} did "
                    f"not reach offset {high} in {timeout} s"
                )
        store.write(changes, last)
        return applied
    finally:
        consumer.close()
