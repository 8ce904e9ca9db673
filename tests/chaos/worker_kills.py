"""What the worker-kill tests share: an orchestrator on a thread of the test, and worker
processes the test can kill -9 and replace."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from replayflow.core.definitions import Registry
from replayflow.processors.orchestrator import Orchestrator
from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics
from tests.chaos.conftest import Process


class Workers:
    """Worker processes running `module`'s steps; every one still alive is killed at
    the end."""

    def __init__(self, settings: Settings, module: str, logs: Path) -> None:
        self.settings = settings
        self.argv = ["-m", "replayflow.cli", "worker", "-m", module]
        self.logs = logs
        self.started: list[Process] = []

    def start(self, name: str) -> Process:
        process = Process(name, self.argv, self.settings, self.logs / f"{name}.log")
        self.started.append(process)
        return process

    def kill_all(self) -> None:
        for process in self.started:
            if process.alive():
                process.kill()


@contextmanager
def orchestrated(
    settings: Settings, registry: Registry, orchestrator_id: str, module: str, logs: Path
) -> Iterator[Workers]:
    """Topics, an orchestrator holding its partitions, and a first worker ("worker-1")."""
    assert apply_topics(settings.bootstrap, load_topics(settings)).ok
    orchestrator = Orchestrator(settings, registry, instance_id=orchestrator_id)
    ready = threading.Event()
    thread = threading.Thread(target=orchestrator.run, args=(ready,), daemon=True)
    thread.start()
    workers = Workers(settings, module, logs)
    try:
        workers.start("worker-1")
        assert ready.wait(60), "the orchestrator got no partitions"
        yield workers
    finally:
        workers.kill_all()
        orchestrator.stop()
        thread.join(30)
