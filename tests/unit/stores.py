"""The store implementations every store and fold test runs against."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from replayflow.store.memory import MemoryStore
from replayflow.store.partition import PartitionStore
from replayflow.store.protocol import Store

KINDS = ["memory", "rocksdb"]


def open_store(kind: str, path: Path, partition: int = 0) -> Store:
    if kind == "memory":
        return MemoryStore(partition)
    if kind == "rocksdb":
        return PartitionStore(path / f"p{partition}", partition)
    raise ValueError(f"no store {kind!r}")


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(request.param, tmp_path)
    yield opened
    opened.close()
