"""A partition store in memory: the same keys and values as the RocksDB store, for the
test engine (rf.testing) and the store's own tests. Nothing survives the process."""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator

from replayflow.store import keys


class MemoryStore:
    def __init__(self, partition: int = 0) -> None:
        self.partition = partition
        self._values: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []  # sorted: what scans walk

    def get(self, key: bytes) -> bytes | None:
        return self._values.get(key)

    def scan(
        self, prefix: bytes, end: bytes | None = None, seek: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        at = bisect.bisect_left(self._keys, seek or prefix)
        while at < len(self._keys):
            key = self._keys[at]
            if (end is None and not key.startswith(prefix)) or (end is not None and key >= end):
                return
            yield key, self._values[key]
            # A write between two steps of the scan moves positions: find our place again.
            if at < len(self._keys) and self._keys[at] == key:
                at += 1
            else:
                at = bisect.bisect_right(self._keys, key)

    def write(self, changes: dict[bytes, bytes | None], changelog_offset: int | None) -> None:
        for key, value in changes.items():
            self._set(key, value)
        if changelog_offset is not None:
            self._set(keys.CHANGELOG_OFFSET, str(changelog_offset).encode())
        self._set(keys.WRITTEN_AT, str(int(time.time() * 1000)).encode())

    def _set(self, key: bytes, value: bytes | None) -> None:
        present = key in self._values
        if value is None:
            if present:
                del self._values[key]
                del self._keys[bisect.bisect_left(self._keys, key)]
            return
        if not present:
            bisect.insort(self._keys, key)
        self._values[key] = value

    def changelog_offset(self) -> int:
        raw = self.get(keys.CHANGELOG_OFFSET)
        return -1 if raw is None else int(raw)

    def written_at(self) -> int | None:
        raw = self.get(keys.WRITTEN_AT)
        return None if raw is None else int(raw)

    def close(self) -> None:
        pass

    def destroy(self) -> None:
        self._values.clear()
        self._keys.clear()
