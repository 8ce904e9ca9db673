"""Local reads of the read model: point lookups, prefix scans and index counters over
the partitions this process owns (faust table `readmodel` on rocksdict).

faust's Table API is a mapping; the ordered scans that lists, steps and history pages
need go to the table's per-partition rocksdict databases directly (the same files the
table writes, raw keys, sorted bytewise). Only ACTIVE partitions are read: a standby
copy can lag behind and its owner answers for it.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from replayflow.api import projection as p


class LocalStore:
    """What one API process can answer from the partitions it owns."""

    def __init__(self, table: Any, app: Any) -> None:
        self.table = table
        self.app = app
        # partition -> Counter(group -> entries), built lazily per partition by a scan
        # (never while faust restores the table) and then kept current by the
        # projection agent; dropped on every rebalance and after every recovery.
        self._counters: dict[int, Counter[str]] = {}
        self._generation: tuple[Any, Any] | None = None

    # -- partitions ----------------------------------------------------------------

    def active_partitions(self) -> list[int]:
        topic = self.table.changelog_topic.get_topic_name()
        try:
            actives = self.app.assignor.assigned_actives()
        except Exception:  # not assigned yet
            return []
        return sorted(tp.partition for tp in actives if tp.topic == topic)

    def _db(self, partition: int) -> Any:
        return self.table.data._dbs.get(partition)

    def _dbs(self) -> Iterator[tuple[int, Any]]:
        for partition in self.active_partitions():
            db = self._db(partition)
            if db is not None:
                yield partition, db

    def owns(self, partition: int) -> bool:
        return partition in self.active_partitions()

    # -- point reads and scans --------------------------------------------------------

    def get(self, key: bytes) -> Any:
        for _, db in self._dbs():
            raw = db.get(key)
            if raw is not None:
                return json.loads(raw)
        return None

    def scan(
        self, prefix: bytes, start: bytes | None = None, limit: int = 100
    ) -> list[tuple[bytes, Any]]:
        """Up to `limit` (key, value) pairs with the prefix, from `start` (inclusive) on,
        merged over the active partitions in key order."""
        iterators = [self._iter(db, prefix, start or prefix) for _, db in self._dbs()]
        out = []
        for k, v in heapq.merge(*iterators, key=lambda kv: kv[0]):
            out.append((k, json.loads(v)))
            if len(out) >= limit:
                break
        return out

    @staticmethod
    def _iter(db: Any, prefix: bytes, start: bytes) -> Iterator[tuple[bytes, bytes]]:
        it = db.iter()
        it.seek(start)
        while it.valid():
            k = it.key()
            if not k.startswith(prefix):
                return
            yield k, it.value()
            it.next()

    # -- counters ---------------------------------------------------------------------

    def _restoring(self) -> bool:
        """Whether faust is restoring the table from its changelog now. Restore writes
        go to the databases directly, past `apply`, so a counter built meanwhile would
        miss them for good."""
        return bool(getattr(self.app, "in_recovery", False))

    def _epoch(self) -> tuple[Any, Any]:
        """Changes on every rebalance (consumer generation) and every end of a table
        recovery (faust stamps it: `Recovery._recovery_ended_at`, set when the actives
        are restored and again when the whole recovery completes)."""
        generation = getattr(self.app, "consumer_generation_id", None)
        try:
            recovery = self.app.tables.recovery
        except Exception:  # no table manager (yet)
            recovery = None
        return generation, getattr(recovery, "_recovery_ended_at", None)

    def _check_generation(self) -> None:
        epoch = self._epoch()
        if epoch != self._generation:
            self._counters.clear()
            self._generation = epoch

    def counters(self) -> Counter[str]:
        """Index entries per group over the active partitions. Counters are cached per
        partition only outside a restore, and recounted after every recovery."""
        self._check_generation()
        restoring = self._restoring()
        total: Counter[str] = Counter()
        for partition, db in self._dbs():
            counter = self._counters.get(partition)
            if counter is None:
                counter = self._count(db)
                if not restoring:
                    self._counters[partition] = counter
            total.update(counter)
        return +total

    @staticmethod
    def _count(db: Any) -> Counter[str]:
        counter: Counter[str] = Counter()
        prefix = p.key("x", "")
        for k, _ in LocalStore._iter(db, prefix, prefix):
            group, _, _ = p.split_index_key(k)
            counter[group] += 1
        return counter

    def apply(self, partition: int, writes: Iterable[p.Write]) -> None:
        """Write a projection's writes through the table (changelogged), keeping the
        counters of a partition exact: an index entry counts when it appears or goes."""
        self._check_generation()
        counter = self._counters.get(partition)
        db = self._db(partition)
        for k, v in writes:
            if counter is not None and k.startswith(b"x\x1f"):
                exists = db is not None and db.get(k) is not None
                if v is None and exists:
                    counter[p.split_index_key(k)[0]] -= 1
                elif v is not None and not exists:
                    counter[p.split_index_key(k)[0]] += 1
            if v is None:
                if k in self.table:
                    del self.table[k]
            else:
                self.table[k] = v
