"""Local reads of the read model: point lookups, prefix scans and index counters over
the partitions this process owns (faust table `readmodel`, stored by
api/tablestore.ReadModelStore, one rocksdict database per partition).

faust's Table API is a mapping; the ordered scans that lists, steps and history pages
need go to the store's per-partition reads (raw keys, sorted bytewise). Only ACTIVE
partitions are read: a standby copy can lag behind and its owner answers for it. Only
public faust names are used here: the assignor's `assigned_actives()` and the table's
changelog topic; the store is ours (see its module for why).
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from replayflow.api import projection as p
from replayflow.api.tablestore import ReadModelStore


class LocalStore:
    """What one API process can answer from the partitions it owns."""

    def __init__(self, table: Any, app: Any) -> None:
        self.table = table
        self.app = app
        # partition -> (store epoch, Counter(group -> entries)): built by a scan, kept
        # current by `apply`, and recounted once the store's epoch for the partition
        # moves (restored from the changelog, reopened after a rebalance, reset), since
        # those writes never pass through `apply`.
        self._counters: dict[int, tuple[int, Counter[str]]] = {}

    @property
    def data(self) -> ReadModelStore:
        """The table's store (faust builds it on first use, within its event loop)."""
        store: ReadModelStore = self.table.data
        return store

    # -- partitions ----------------------------------------------------------------

    def active_partitions(self) -> list[int]:
        topic = self.table.changelog_topic.get_topic_name()
        try:
            actives = self.app.assignor.assigned_actives()
        except Exception:  # not assigned yet
            return []
        return sorted(tp.partition for tp in actives if tp.topic == topic)

    def owns(self, partition: int) -> bool:
        return partition in self.active_partitions()

    # -- point reads and scans --------------------------------------------------------

    def read(self, partition: int, key: bytes) -> bytes | None:
        """The raw value in one partition (the projection's view of its own partition)."""
        return self.data.read(partition, key)

    def get(self, key: bytes) -> Any:
        for partition in self.active_partitions():
            raw = self.data.read(partition, key)
            if raw is not None:
                return json.loads(raw)
        return None

    def scan(
        self, prefix: bytes, start: bytes | None = None, limit: int = 100
    ) -> list[tuple[bytes, Any]]:
        """Up to `limit` (key, value) pairs with the prefix, from `start` (inclusive) on,
        merged over the active partitions in key order."""
        iterators = [
            self.data.scan(partition, prefix, start or prefix)
            for partition in self.active_partitions()
        ]
        out = []
        for k, v in heapq.merge(*iterators, key=lambda kv: kv[0]):
            out.append((k, json.loads(v)))
            if len(out) >= limit:
                break
        return out

    # -- counters ---------------------------------------------------------------------

    def _counter(self, partition: int) -> Counter[str] | None:
        """The partition's cached counter, if it is still current."""
        cached = self._counters.get(partition)
        if cached is None or cached[0] != self.data.epoch(partition):
            return None
        return cached[1]

    def counters(self) -> Counter[str]:
        """Index entries per group over the active partitions."""
        total: Counter[str] = Counter()
        for partition in self.active_partitions():
            counter = self._counter(partition)
            if counter is None:
                counter = self._count(partition)
                self._counters[partition] = (self.data.epoch(partition), counter)
            total.update(counter)
        return +total

    def _count(self, partition: int) -> Counter[str]:
        counter: Counter[str] = Counter()
        prefix = p.key("x", "")
        for k, _ in self.data.scan(partition, prefix):
            group, _, _ = p.split_index_key(k)
            counter[group] += 1
        return counter

    def apply(self, partition: int, writes: Iterable[p.Write]) -> None:
        """Write a projection's writes through the table (changelogged), keeping the
        counters of a partition exact: an index entry counts when it appears or goes."""
        counter = self._counter(partition)
        for k, v in writes:
            counted = counter is not None and k.startswith(b"x\x1f")
            exists = (counted or v is None) and self.data.read(partition, k) is not None
            if counter is not None and counted:
                if v is None and exists:
                    counter[p.split_index_key(k)[0]] -= 1
                elif v is not None and not exists:
                    counter[p.split_index_key(k)[0]] += 1
            if v is None:
                if exists:
                    del self.table[k]
            else:
                self.table[k] = v
