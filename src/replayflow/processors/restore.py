"""Bringing a partition store up to date with the compacted replayflow.state topic.

Runs when a partition is assigned: after a crash between commit and the RocksDB write
it applies the missing tail; with no local store (a new machine, a deleted folder) it
rebuilds everything from the changelog."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from replayflow.core.errors import ReplayflowError
from replayflow.kafka import clients
from replayflow.kafka.membership import close_consumer
from replayflow.kafka.reading import BEGINNING, read_to_end, watermarks
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
    """Apply changelog records after the store's offset; returns how many were applied.
    Raises ReadTimeout (a TimeoutError) when the read stops moving for `timeout` s."""
    start = store.changelog_offset() + 1
    consumer = clients.consumer(settings, None, **{"enable.auto.offset.store": False})
    try:
        low, high = watermarks(consumer, topic, store.partition)
        if 0 < start < low:
            raise StaleStore(
                f"partition {store.partition}'s store stops at offset {start - 1}, but the "
                f"changelog now starts at {low}"
            )
        if high <= max(start, low):
            return 0
        applied = 0
        changes: dict[bytes, bytes | None] = {}
        last = start - 1
        begin = {store.partition: max(start, BEGINNING)}
        for messages in read_to_end(consumer, topic, begin, timeout=timeout, batch=BATCH):
            for message in messages:
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
        store.write(changes, last)
        return applied
    finally:
        close_consumer(consumer)


def restored_store(
    settings: Settings, topic: str, path: Path, partition: int
) -> tuple[PartitionStore, int]:
    """A partition's store at `path`, brought up to date from the changelog; rebuilt
    from the whole changelog when the local copy is too old to trust its tail. Returns
    it with the number of changelog records applied."""
    store = PartitionStore(path, partition)
    if is_stale(store, int(time.time() * 1000)):
        log.info("partition %d: local store is stale, rebuilding it", partition)
        store.destroy()
        store = PartitionStore(path, partition)
    try:
        return store, restore_partition(settings, topic, store)
    except StaleStore as exc:
        log.info("%s: rebuilding it", exc)
        store.destroy()
        store = PartitionStore(path, partition)
        return store, restore_partition(settings, topic, store)
    except BaseException:
        store.close()  # the next assignment opens it again
        raise
