"""The Kafka engine of the shared workflow suite: an orchestrator and a worker on the
real broker (in threads of the test process), driven through the public Client."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from replayflow.client import Client, Handle
from replayflow.core.definitions import Registry, WorkflowDef
from replayflow.core.messages import HistoryEvent
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics
from tests.workflows import definitions


class KafkaHandle:
    def __init__(self, handle: Handle) -> None:
        self._handle = handle
        self.id = handle.id

    def result(self, timeout: float = 30.0) -> Any:
        return self._handle.result(timeout=timeout)


class KafkaEngine:
    name = "kafka"

    def __init__(self, bootstrap: str, data_dir: Path) -> None:
        self.settings = Settings(
            bootstrap=bootstrap,
            namespace=f"suite{uuid.uuid4().hex[:8]}",
            partitions=3,
            data_dir=data_dir,
        )
        report = apply_topics(self.settings.bootstrap, load_topics(self.settings))
        assert report.ok, report.summary()
        self.runtime = LocalRuntime(
            self.settings, Registry.of(definitions), orchestrator_id="suite-orchestrator"
        ).start()
        self.client = Client(self.settings)

    def start(self, workflow: WorkflowDef, input: Any = None, id: str | None = None) -> KafkaHandle:
        return KafkaHandle(self.client.start(workflow, input, id=id))

    def send_event(self, instance_id: str, name: str, payload: Any = None) -> None:
        self.client.send_event(instance_id, name, payload)

    def cancel(self, instance_id: str, reason: str = "") -> None:
        self.client.cancel(instance_id, reason)

    def terminate(self, instance_id: str, reason: str = "") -> None:
        self.client.terminate(instance_id, reason)

    def history(self, instance_id: str) -> list[HistoryEvent]:
        # Completions and history are written in one transaction: once a result has
        # been read, the history up to the final event is readable too.
        return self.client.history(instance_id, wait_final=10.0)

    def close(self) -> None:
        self.client.close()
        self.runtime.stop()
