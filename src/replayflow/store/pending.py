"""The changes of the batch being folded, read through before the store. They reach the
store in one write once the batch's transaction has committed."""

from __future__ import annotations

from replayflow.store.protocol import Store


class Pending:
    """The changes of the batch in flight for one partition, read through before the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.changes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self.changes:
            return self.changes[key]
        return self.store.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.changes[key] = value

    def delete(self, key: bytes) -> None:
        self.changes[key] = None
