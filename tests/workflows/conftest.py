"""The `engine` fixture: one interface, every engine.

A test in this package sees only:

    engine.start(workflow_def, input, id=None) -> handle
        handle.id
        handle.result(timeout=seconds)   the output, or rf.WorkflowError (.status, .error)
    engine.send_event(id, name, payload)
    engine.cancel(id, reason)
    engine.terminate(id, reason)
    engine.history(id) -> list[HistoryEvent]   final once result() has returned or raised

Every engine runs the same fold shell (processors/fold.py) over a different store:
"memory" is rf.testing.Environment, the shell over the in-memory store with a virtual
clock (result() jumps it over sleeps and timeouts); "rocksdb" is that environment with
the shell over a RocksDB partition store instead; "kafka" is the orchestrator, the
shell over RocksDB inside the exactly-once loop on the real broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from replayflow.core.definitions import WorkflowDef
from replayflow.core.messages import HistoryEvent
from replayflow.processors.fold import PartitionFolder
from replayflow.store.partition import PartitionStore
from replayflow.testing import Environment
from tests.workflows import definitions

ENGINES = ["memory", "rocksdb", pytest.param("kafka", marks=pytest.mark.kafka)]


class MemoryHandle:
    def __init__(self, env: Environment, instance_id: str) -> None:
        self._env = env
        self.id = instance_id

    def result(self, timeout: float = 30.0) -> Any:
        # `timeout` is wall-clock seconds for real engines; the virtual clock needs none
        # (an instance that cannot finish raises testing.Deadlock at once).
        return self._env.result(self.id)


class MemoryEngine:
    name = "memory"

    def __init__(self, data_dir: Path | None = None) -> None:
        self.env = Environment(definitions)
        self._store: PartitionStore | None = None
        if data_dir is not None:
            # The same shell over RocksDB: only the store differs from "memory".
            self.name = "rocksdb"
            self._store = PartitionStore(data_dir / "p0", 0)
            self.env.folder = PartitionFolder(self._store, self.env.decider)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def start(
        self, workflow: WorkflowDef, input: Any = None, id: str | None = None
    ) -> MemoryHandle:
        instance_id = id or f"{workflow.name}-{uuid.uuid4().hex}"
        self.env.start(workflow, input, id=instance_id)
        return MemoryHandle(self.env, instance_id)

    def send_event(self, instance_id: str, name: str, payload: Any = None) -> None:
        self.env.send_event(instance_id, name, payload)

    def cancel(self, instance_id: str, reason: str = "") -> None:
        self.env.cancel(instance_id, reason)

    def terminate(self, instance_id: str, reason: str = "") -> None:
        self.env.terminate(instance_id, reason)

    def history(self, instance_id: str) -> list[HistoryEvent]:
        return self.env.history(instance_id)


@pytest.fixture(scope="session")
def kafka_engine(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One orchestrator and worker for the whole suite on the real broker."""
    from tests.workflows.kafka_engine import KafkaEngine

    engine = KafkaEngine(kafka_bootstrap, tmp_path_factory.mktemp("suite-kafka"))
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "kafka":
        yield request.getfixturevalue("kafka_engine")
        return
    if request.param == "memory":
        engine: Any = MemoryEngine()
    elif request.param == "rocksdb":
        engine = MemoryEngine(request.getfixturevalue("tmp_path"))
    else:
        raise NotImplementedError(f"no engine {request.param!r}")
    try:
        yield engine
    finally:
        close = getattr(engine, "close", None)
        if close is not None:
            close()
