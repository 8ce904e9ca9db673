"""The storage behind the read model's faust table: one rocksdict database per
changelog partition, owned here and read per partition.

Why a store of our own. Lists, steps and history pages are ordered prefix scans over
the partitions this process serves, and the counters must know when a partition's
contents changed behind the projection's back (a restore from the changelog). faust's
rocksdb store keeps its per-partition databases private and says nothing public about
restores, so reading it meant reaching into its internals. The options weighed:

- subclass faust's rocksdb store: the per-partition handles are still its private
  state (`_dbs`, `_db_for_partition`), the same dependency in a new place;
- a rocksdict of our own beside the faust table: two copies of the state, and a
  changelog, restore and rebalance protocol of our own to keep the second one right;
- this module: a `faust.stores.base.SerializedStore`, the base faust gives store
  drivers (its memory and rocksdb stores implement the same hooks). faust keeps doing
  what it does well, the changelog, recovery, standbys and rebalances, and drives the
  store through the store interface (`on_rebalance`, `apply_changelog_batch`,
  persisted offsets, `reset_state`); the databases are ours, so per-partition reads
  are public methods here, and every change that does not come through the table's
  writes (a restore batch, a partition opened, closed or reset) bumps that
  partition's `epoch`, which is how LocalStore knows a cached counter is stale.

Files, RocksDB options and the offset key are faust's rocksdb store's
(<tabledir>/<table>-<partition>.db, `RocksDBOptions`, `__faust\\0offset__`), so a data
directory written before carries over. The table is built with `store=STORE_URL`:
faust imports a store class named by the URL's scheme.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import rocksdict
from faust import current_event
from faust.stores.base import SerializedStore
from faust.stores.rocksdb import RocksDBOptions
from faust.types import TP, EventT

# Where faust's rocksdb store keeps a partition's last changelog offset (same database).
OFFSET_KEY = b"__faust\0offset__"


class ReadModelStore(SerializedStore[bytes, bytes]):
    """faust table storage on one rocksdict database per changelog partition.

    Reads for the API: `read` and `scan` per partition (nothing for a partition that is
    not open here), `epoch` per partition. Writes go through the faust table (which
    changelogs them) and land in `put`/`delete` for the partition of the event being
    processed."""

    def __init__(
        self,
        url: Any,
        app: Any,
        table: Any,
        *,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(url, app, table, options=options, **kwargs)
        tuning = {k: v for k, v in (options or {}).items() if k not in ("driver", "read_only")}
        self.rocksdb_options = RocksDBOptions(**tuning, use_rocksdict=True)
        self.databases: dict[int, rocksdict.Rdict] = {}
        self.epochs: Counter[int] = Counter()

    # -- per partition (public) ------------------------------------------------------

    def partition_path(self, partition: int) -> Path:
        return Path(self.app.conf.tabledir) / f"{self.table_name}-{partition}.db"

    def open(self, partition: int) -> rocksdict.Rdict:
        """The partition's database, opened on first use."""
        db = self.databases.get(partition)
        if db is None:
            db = self.databases[partition] = self.rocksdb_options.open(
                self.partition_path(partition)
            )
            self.epochs[partition] += 1
        return db

    def close(self, partition: int) -> None:
        """Closed at once rather than left to the garbage collector: the partition can
        come back to this process in the next rebalance, and RocksDB refuses to open a
        database this process still holds. Reads are synchronous (no scan outlives the
        call that made it), so no handle is in use across a close."""
        db = self.databases.pop(partition, None)
        if db is not None:
            db.close()
            self.epochs[partition] += 1

    def epoch(self, partition: int) -> int:
        """Changes whenever the partition's contents may have changed other than through
        `put`/`delete`: opened, closed, restored from the changelog, reset."""
        return self.epochs[partition]

    def read(self, partition: int, key: bytes) -> bytes | None:
        db = self.databases.get(partition)
        value = None if db is None else db.get(key)
        return None if value is None else bytes(value)

    def scan(
        self, partition: int, prefix: bytes, start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs with the prefix in key order, from `start` (inclusive)."""
        db = self.databases.get(partition)
        if db is None:
            return
        for k, v in db.items(from_key=start or prefix):
            key = cast(bytes, k)  # raw mode: keys and values are bytes
            if not key.startswith(prefix):
                return
            yield key, v

    def put(self, partition: int, key: bytes, value: bytes) -> None:
        self.open(partition).put(key, value)

    def delete(self, partition: int, key: bytes) -> None:
        self.open(partition).delete(key)

    # -- faust's store interface -----------------------------------------------------

    def persisted_offset(self, tp: TP) -> int | None:
        offset = self.open(tp.partition).get(OFFSET_KEY)
        return None if offset is None else int(offset)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        # A changelog send can complete after its partition was revoked: then it is not
        # written (an older offset only makes the next restore replay a little more),
        # rather than reopening, and locking, a database another process now owns.
        db = self.databases.get(tp.partition)
        if db is not None:
            db.put(OFFSET_KEY, str(offset).encode())

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT[Any]],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        """Restore (or standby) writes: one WriteBatch per partition, then its offset."""
        batches: dict[int, rocksdict.WriteBatch] = {}
        offsets: dict[TP, int] = {}
        for event in batch:
            message = event.message
            if message.key is None:
                raise TypeError(f"changelog entry without a key: {message}")
            offsets[message.tp] = max(message.offset, offsets.get(message.tp, -1))
            writes = batches.get(message.partition)
            if writes is None:
                writes = batches[message.partition] = rocksdict.WriteBatch(raw_mode=True)
            if message.value is None:
                writes.delete(message.key)
            else:
                writes.put(message.key, message.value)
        for partition, writes in batches.items():
            self.open(partition).write(writes)
            self.epochs[partition] += 1
        for tp, offset in offsets.items():
            self.set_persisted_offset(tp, offset)

    async def on_rebalance(
        self,
        assigned: set[TP],
        revoked: set[TP],
        newly_assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        topics = self.table.changelog_topic.topics
        for tp in revoked:
            if tp.topic in topics:
                self.close(tp.partition)
        standbys = self.app.assignor.assigned_standbys()
        for tp in newly_assigned:
            if tp.topic in topics and tp not in standbys:
                self.open(tp.partition)

    def reset_state(self) -> None:
        """Drop the local copy (faust restores it from the changelog)."""
        for partition in list(self.databases):
            self.close(partition)
        for path in Path(self.app.conf.tabledir).glob(f"{self.table_name}-*.db"):
            shutil.rmtree(path, ignore_errors=True)
        for partition in list(self.epochs):
            self.epochs[partition] += 1

    async def backup_partition(
        self, tp: TP | int, flush: bool = True, purge: bool = False, keep: int = 1
    ) -> None:
        raise NotImplementedError("the changelog is the read model's backup")

    def restore_backup(self, tp: TP | int, latest: bool = True, backup_id: int = 0) -> None:
        raise NotImplementedError("the changelog is the read model's backup")

    async def on_stop(self) -> None:
        for partition in list(self.databases):
            self.close(partition)

    # SerializedStore's hooks: the table's mapping operations. The table writes within
    # an event (faust changelogs to the event's partition); reads without one look in
    # the active partitions, as faust's rocksdb store does.

    def _event_partition(self) -> int | None:
        event = current_event()
        return None if event is None else int(event.message.partition)

    def _active_partitions(self) -> list[int]:
        topics = self.table.changelog_topic.topics
        actives = self.app.assignor.assigned_actives()
        return sorted(tp.partition for tp in actives if tp.topic in topics)

    def _partitions_for_read(self) -> list[int]:
        partition = self._event_partition()
        return self._active_partitions() if partition is None else [partition]

    def _get(self, key: bytes) -> bytes | None:
        for partition in self._partitions_for_read():
            value = self.read(partition, key)
            if value is not None:
                return value
        return None

    def _set(self, key: bytes, value: bytes | None) -> None:
        partition = self._event_partition()
        if partition is None:
            raise RuntimeError("the read model table is written from its agent only")
        if value is None:
            self.delete(partition, key)
        else:
            self.put(partition, key, value)

    def _del(self, key: bytes) -> None:
        partition = self._event_partition()
        for each in list(self.databases) if partition is None else [partition]:
            self.delete(each, key)

    def _contains(self, key: bytes) -> bool:
        return self._get(key) is not None

    def _iteritems(self) -> Iterator[tuple[bytes, bytes]]:
        for partition in self._active_partitions():
            for k, v in self.scan(partition, b""):
                if k != OFFSET_KEY:
                    yield k, v

    def _iterkeys(self) -> Iterator[bytes]:
        for k, _ in self._iteritems():
            yield k

    def _itervalues(self) -> Iterator[bytes]:
        for _, v in self._iteritems():
            yield v

    def _size(self) -> int:
        return sum(1 for _ in self._iteritems())

    def _clear(self) -> None:
        raise NotImplementedError("the read model is cleared by reset_state")


# faust builds a table's store from a URL whose scheme names the class to import; yarl
# lowercases schemes, so the name faust resolves is this lowercase alias. The URL needs a
# path: an empty one is falsy, and faust then falls back to the app's default store.
readmodelstore = ReadModelStore
STORE_URL = f"{__name__}.readmodelstore:///"
