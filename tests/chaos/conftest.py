"""The chaos tests' fixtures; the harness itself (processes, topic readers) is in
tests/chaos/harness.py, shared with `make chaos` (benchmarks/chaos/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics
from tests.chaos.harness import (
    REPO,
    WORKLOADS,
    Cluster,
    Process,
    completions_by_id,
    histories,
)

__all__ = ["REPO", "WORKLOADS", "Cluster", "Process", "completions_by_id", "histories"]


@pytest.fixture
def cluster(settings: Settings, tmp_path: Path) -> Iterator[Cluster]:
    apply_topics(settings.bootstrap, load_topics(settings))
    cluster = Cluster(settings, tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()
        print(cluster.logs())  # captured: pytest shows it when the test failed
