"""What the fold needs of a partition store: ordered bytes, and one atomic write of a
batch's changes together with the changelog offset they reach."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class Store(Protocol):
    partition: int

    def get(self, key: bytes) -> bytes | None: ...

    def scan(
        self, prefix: bytes, end: bytes | None = None, seek: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Keys from `prefix` (or from `seek`) in order, while they start with `prefix`
        (or are below `end`)."""
        ...

    def write(self, changes: dict[bytes, bytes | None], changelog_offset: int | None) -> None:
        """Apply a batch's changes (None deletes) and the changelog offset they reach,
        atomically."""
        ...

    def changelog_offset(self) -> int:
        """The last changelog offset whose write this store holds; -1 for none."""
        ...

    def written_at(self) -> int | None:
        """Wall-clock ms of the last write; None for a new store."""
        ...

    def close(self) -> None: ...

    def destroy(self) -> None:
        """Close the store and delete everything it holds."""
        ...
