"""One partition's store in RocksDB (the `Store` of the orchestrator).

Writes reach RocksDB only after the Kafka transaction that produced their changelog
records has committed, in one WriteBatch together with the changelog offset they reach.
So RocksDB is never ahead of the log; when it is behind (a crash between commit and
write), the tail of the changelog repairs it on start.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch, WriteBufferManager

from replayflow.store import keys

WRITE_BUFFER_BYTES = 8 * 1024 * 1024  # one memtable of one partition store
WRITE_BUFFERS_PER_PROCESS = 128 * 1024 * 1024  # all partition stores of a process
_write_buffers: WriteBufferManager | None = None


def _shared_write_buffers() -> WriteBufferManager:
    global _write_buffers
    if _write_buffers is None:
        _write_buffers = WriteBufferManager(WRITE_BUFFERS_PER_PROCESS, False)
    return _write_buffers


class PartitionStore:
    """A partition's `Store` in RocksDB, through rocksdict."""

    def __init__(self, path: Path, partition: int) -> None:
        self.path = path
        self.partition = partition
        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        # One process holds a store per partition: their memtables share one budget
        # instead of each keeping RocksDB's 64 MiB (x2) default.
        options.set_write_buffer_size(WRITE_BUFFER_BYTES)
        options.set_write_buffer_manager(_shared_write_buffers())
        self._db = Rdict(str(path), options)

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def scan(
        self, prefix: bytes, end: bytes | None = None, seek: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Keys from `prefix` (or from `seek`) in order, while they start with `prefix`
        (or are below `end`)."""
        it = self._db.iter()
        try:
            it.seek(seek or prefix)
            while it.valid():
                key = it.key()
                if (end is None and not key.startswith(prefix)) or (end is not None and key >= end):
                    break
                yield key, it.value()
                it.next()
        finally:
            del it

    def changelog_offset(self) -> int:
        """The last changelog offset whose write this store holds; -1 for none."""
        raw = self.get(keys.CHANGELOG_OFFSET)
        return -1 if raw is None else int(raw)

    def write(self, changes: dict[bytes, bytes | None], changelog_offset: int | None) -> None:
        """Apply a batch's changes and the changelog offset they reach, atomically."""
        batch = WriteBatch(raw_mode=True)
        for key, value in changes.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        if changelog_offset is not None:
            batch.put(keys.CHANGELOG_OFFSET, str(changelog_offset).encode())
        batch.put(keys.WRITTEN_AT, str(int(time.time() * 1000)).encode())
        self._db.write(batch)

    def written_at(self) -> int | None:
        """Wall-clock ms of the last write; None for a new store."""
        raw = self.get(keys.WRITTEN_AT)
        return None if raw is None else int(raw)

    def close(self) -> None:
        self._db.close()

    def destroy(self) -> None:
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
