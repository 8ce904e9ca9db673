"""An orchestrator and a worker in threads of one process: `replayflow dev`, the demo,
the benchmarks and the Kafka engine of the test suite use it."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from replayflow.core.definitions import Registry
from replayflow.processors.orchestrator import Orchestrator
from replayflow.processors.worker import Worker
from replayflow.settings import Settings

log = logging.getLogger("replayflow.runtime")


class LocalRuntime:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        orchestrator_id: str | None = None,
        data_dir: Path | None = None,
        worker_concurrency: int = 500,
        concurrency: dict[str, int] | None = None,
    ) -> None:
        self.orchestrator = Orchestrator(
            settings,
            registry,
            instance_id=orchestrator_id,
            data_dir=data_dir,
            concurrency=concurrency,
        )
        self.worker = Worker(settings, registry, concurrency=worker_concurrency)
        self._threads: list[threading.Thread] = []
        self._ready = threading.Event()
        self.errors: list[BaseException] = []

    def start(self, timeout: float = 60.0) -> LocalRuntime:
        self._threads = [
            threading.Thread(
                target=self._guard,
                args=(self.orchestrator.run, self._ready),
                name="replayflow-orchestrator",
                daemon=True,
            ),
            threading.Thread(
                target=self._guard, args=(self.worker.run,), name="replayflow-worker", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.errors:
                raise RuntimeError(f"the runtime failed to start: {self.errors[0]}")
            if time.monotonic() > deadline:
                raise TimeoutError("the orchestrator got no partitions in time")
        return self

    def _guard(self, target: object, *args: object) -> None:
        try:
            target(*args)  # type: ignore[operator]
        except BaseException as exc:
            log.exception("runtime thread failed")
            self.errors.append(exc)

    def stop(self) -> None:
        self.orchestrator.stop()
        self.worker.stop()
        for thread in self._threads:
            thread.join(30)

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
