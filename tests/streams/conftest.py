"""The `engine` of the stream tests: rf.testing.Environment (streams in memory) and the
Kafka engine (an orchestrator and a worker on the real broker, read with the Client).

    engine.start(workflow, input, id) -> handle (.id, .result())
    engine.read(id, name, start=0, settled=False, limit=None) -> (items, resume cursor)
    engine.watch(id, name, on_item)     calls on_item(item) live, from before the start
    engine.send_event / terminate / history
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.streams import StreamItem, StreamView
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.testing import Environment
from replayflow.topics import apply_topics, load_topics
from tests.streams import definitions

OnItem = Callable[[StreamItem], None]


class MemoryEngine:
    name = "memory"

    def __init__(self) -> None:
        self.env = Environment(definitions)

    def start(self, workflow: Any, input: Any = None, id: str | None = None) -> Any:
        return self.env.start(workflow, input, id=id or f"s-{uuid.uuid4().hex}")

    def result(self, handle: Any) -> Any:
        return handle.result()

    def read(
        self,
        instance_id: str,
        name: str,
        start: int | str = 0,
        settled: bool = False,
        limit: int | None = None,
    ) -> tuple[list[StreamItem], int | str]:
        items = []
        for item in self.env.stream(instance_id, name, start, settled):
            items.append(item)
            if len(items) == limit:
                break
        return items, (items[-1].cursor if items else start)

    def watch(self, instance_id: str, name: str, on_item: OnItem) -> Callable[[], None]:
        view = StreamView(instance_id, name)

        def seen(offset: int, record: Any) -> None:
            for item in view.feed(offset, record):
                on_item(item)

        self.env.streams.subscribe(seen)
        return lambda: None

    def send_event(self, instance_id: str, name: str, payload: Any = None) -> None:
        self.env.send_event(instance_id, name, payload)

    def terminate(self, instance_id: str) -> None:
        self.env.terminate(instance_id, "test")

    def history(self, instance_id: str) -> list[Any]:
        return self.env.history(instance_id)


class KafkaEngine:
    name = "kafka"

    def __init__(self, bootstrap: str, data_dir: Path) -> None:
        self.settings = Settings(
            bootstrap=bootstrap,
            namespace=f"streams{uuid.uuid4().hex[:8]}",
            partitions=3,
            data_dir=data_dir,
        )
        report = apply_topics(self.settings.bootstrap, load_topics(self.settings))
        assert report.ok, report.summary()
        self.runtime = LocalRuntime(self.settings, Registry.of(definitions)).start()
        self.client = Client(self.settings)

    def start(self, workflow: Any, input: Any = None, id: str | None = None) -> Any:
        return self.client.start(workflow, input, id=id)

    def result(self, handle: Any) -> Any:
        return handle.result(timeout=60)

    def read(
        self,
        instance_id: str,
        name: str,
        start: int | str = 0,
        settled: bool = False,
        limit: int | None = None,
    ) -> tuple[list[StreamItem], int | str]:
        items = []
        with self.client.stream(
            instance_id, name, start=start, settled=settled, idle_timeout=60
        ) as stream:
            for item in stream:
                items.append(item)
                if len(items) == limit:
                    break
            return items, stream.cursor

    def watch(self, instance_id: str, name: str, on_item: OnItem) -> Callable[[], None]:
        stream = self.client.stream(instance_id, name, idle_timeout=60)

        def run() -> None:
            for item in stream:
                on_item(item)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return lambda: thread.join(60)

    def send_event(self, instance_id: str, name: str, payload: Any = None) -> None:
        self.client.send_event(instance_id, name, payload)

    def terminate(self, instance_id: str) -> None:
        self.client.terminate(instance_id, "test")

    def history(self, instance_id: str) -> list[Any]:
        return self.client.history(instance_id, wait_final=10.0)

    def close(self) -> None:
        self.client.close()
        self.runtime.stop()
        from tests.conftest import _admin

        admin = _admin(self.settings.bootstrap)
        mine = [
            t for t in admin.list_topics(timeout=10).topics if t.startswith(self.settings.namespace)
        ]
        if mine:
            for future in admin.delete_topics(mine, operation_timeout=10).values():
                with contextlib.suppress(Exception):  # cleanup is best effort
                    future.result()


@pytest.fixture(scope="module")
def kafka_stream_engine(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaEngine]:
    engine = KafkaEngine(kafka_bootstrap, tmp_path_factory.mktemp("streams-kafka"))
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def engine(request: pytest.FixtureRequest) -> Any:
    if request.param == "kafka":
        return request.getfixturevalue("kafka_stream_engine")
    return MemoryEngine()
