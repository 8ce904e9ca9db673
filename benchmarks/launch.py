"""The benchmark's child processes: `python -m benchmarks.launch orchestrator|worker`.

Each builds what `replayflow orchestrator|worker -m benchmarks.workload` builds (the same
classes, registry and deployed-document source) and keeps a journal for the latency
breakdown (benchmarks/breakdown.py), which the topics alone cannot give:

  orchestrator  per batch: when it was taken, when its commit began and returned, and
                how many commands it held
  worker        per task (partition, offset): when its step began and when it ended

The journal costs two clock reads per batch or task. SIGUSR1 writes it to --journal
(atomically, with a generation number the benchmark waits for); SIGTERM stops the
process, which writes it once more on the way out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from replayflow.cli.run import _limits, with_documents, with_dsl_steps  # noqa: E402
from replayflow.cli.support import load_registry  # noqa: E402
from replayflow.processors.orchestrator import Orchestrator  # noqa: E402
from replayflow.processors.worker import Worker  # noqa: E402
from replayflow.settings import Settings  # noqa: E402

MODULES = ("benchmarks.workload",)


class Journal:
    def __init__(self, path: Path, role: str) -> None:
        self.path = path
        self.role = role
        self.rows: list[tuple[Any, ...]] = []
        self.partitions: list[int] = []
        self.generation = 0
        # The partitions held now (the orchestrator's); read at each dump, so an idle
        # orchestrator reports them too.
        self.holding: Any = None

    def dump(self) -> None:
        self.generation += 1
        if self.holding is not None:
            self.partitions = list(self.holding())
        data = {
            "role": self.role,
            "pid": os.getpid(),
            "generation": self.generation,
            "partitions": self.partitions,
            "rows": self.rows,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)


class JournaledOrchestrator(Orchestrator):
    journal: Journal

    def _finish_inflight(self) -> Any:
        done = super()._finish_inflight()
        if done is not None:
            # (taken, commit began, commit returned, commands, start budget, starts held)
            budget = getattr(self, "_budget", None)
            intake = getattr(self, "_intake", None)
            self.journal.rows.append(
                (
                    done.taken,
                    done.began,
                    done.commit.finished_at,
                    done.commands,
                    getattr(budget, "share", None),
                    getattr(intake, "held", None),
                )
            )
        return done


class JournaledWorker(Worker):
    journal: Journal

    async def _run(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._began[(message.partition(), message.offset())] = time.time()
        await super()._run(message, *args, **kwargs)

    def _produce(self, number: int) -> None:
        # Called the moment a step's result is ready (and again for a result sent anew).
        result = self._outbox.get(number)
        task_at = None if result is None else result.task_at
        if task_at is not None:
            began = self._began.pop(tuple(task_at), None)
            if began is not None:
                self.journal.rows.append((*task_at, began, time.time()))
        super()._produce(number)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("orchestrator", "worker"))
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--id", default=None)
    parser.add_argument("--limit", action="append", default=[])
    parser.add_argument("--concurrency", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    journal = Journal(args.journal, args.role)
    process: Orchestrator | Worker
    if args.role == "orchestrator":
        registry = with_documents(load_registry(MODULES), settings)
        orchestrator = JournaledOrchestrator(
            settings, registry, instance_id=args.id, concurrency=_limits(tuple(args.limit))
        )
        orchestrator.journal = journal
        journal.holding = lambda: orchestrator.stats.assigned
        process = orchestrator
    else:
        registry = with_dsl_steps(load_registry(MODULES), settings)
        worker = JournaledWorker(settings, registry, concurrency=args.concurrency)
        worker.journal = journal
        worker._began = {}
        process = worker
    stop = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: journal.dump())
    signal.signal(signal.SIGTERM, lambda *_: (stop.set(), process.stop()))
    signal.signal(signal.SIGINT, lambda *_: (stop.set(), process.stop()))
    try:
        process.run()
    finally:
        journal.dump()


if __name__ == "__main__":
    main()
