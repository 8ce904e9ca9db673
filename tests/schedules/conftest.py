"""`engines`: opens schedule engines (engines.py) at a start time, on every engine:
"memory" (rf.testing.Environment) and "kafka" (the orchestrator on the real broker, on
a virtual clock). Each test opens its own and they are closed after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from types import ModuleType
from typing import Any

import pytest

from tests.schedules import definitions
from tests.schedules.engines import KafkaEngine, MemoryEngine

Open = Callable[..., Any]


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def engines(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Open]:
    opened: list[Any] = []

    def open_engine(start: datetime, *modules: ModuleType, orchestrators: int = 1) -> Any:
        modules = modules or (definitions,)
        if request.param == "memory":
            engine: Any = MemoryEngine(start, *modules, orchestrators=orchestrators)
        else:
            bootstrap = request.getfixturevalue("kafka_bootstrap")
            namespace = request.getfixturevalue("namespace")
            data = tmp_path / f"data-{len(opened)}"
            engine = KafkaEngine(
                bootstrap, namespace, data, start, *modules, orchestrators=orchestrators
            )
        opened.append(engine)
        return engine

    try:
        yield open_engine
    finally:
        for engine in opened:
            engine.close()
