"""One engine under test: a fresh namespace with its topics, orchestrator and worker
processes (benchmarks/launch.py), and the benchmark client (driver.py)."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import breakdown
from benchmarks.driver import Starter, Watcher, encode_start, engine_completion
from benchmarks.measure import drive
from benchmarks.processes import CpuMeter, Processes
from benchmarks.workload import three_steps_result
from replayflow.kafka import clients
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics

THREE_STEPS = "bench-three-steps"


class Engine:
    def __init__(
        self,
        base: Settings,
        partitions: int,
        label: str,
        *,
        orchestrators: int = 1,
        worker: bool = True,
        limits: tuple[str, ...] = (),
        admission: str = "sharded",
    ) -> None:
        self.settings = Settings(
            bootstrap=base.bootstrap,
            namespace=f"bench-{label}-{uuid.uuid4().hex[:6]}",
            partitions=partitions,
            admission=admission,
        )
        self.partitions = partitions
        report = apply_topics(self.settings.bootstrap, load_topics(self.settings))
        if not report.ok:
            raise RuntimeError(report.summary())
        self.topics = Topics(self.settings)
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"replayflow-bench-{label}-"))
        self.processes = Processes(self.settings, self.data_dir)
        for i in range(orchestrators):
            self.processes.orchestrator(f"orchestrator-{i + 1}", limits)
        if worker:
            self.processes.worker()
        self.expected: dict[str, str] = {}
        self.starter = Starter(self.settings, self.topics.commands, linger_ms=0)
        self.watcher = Watcher(
            self.settings,
            self.topics.completions,
            partitions,
            engine_completion(self.expected),
        )
        self.watcher.start()
        self.meter = CpuMeter(self.processes)

    # -- workloads -------------------------------------------------------------------

    def records(
        self, prefix: str, n: int, workflow: str = THREE_STEPS, value: int | None = None
    ) -> list[tuple[str, bytes]]:
        token = uuid.uuid4().hex[:6]
        out = []
        for i in range(n):
            instance_id = f"{prefix}-{token}-{i:06d}"
            arg = i if value is None else value
            if workflow == THREE_STEPS:
                self.expected[instance_id] = str(three_steps_result(arg))
            out.append((instance_id, encode_start(instance_id, workflow, arg)))
        return out

    def warm_up(self, n: int = 24, timeout: float = 180.0, workflow: str = THREE_STEPS) -> None:
        """Run a few workflows through until every orchestrator holds partitions and
        together they hold each partition once (a second orchestrator's join is a
        rebalance that may come after the first warm-up workflows completed)."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.records("warmup", n, workflow=workflow, value=1)
            for instance_id, _ in records:
                self.expected.setdefault(instance_id, "1")
            self.watcher.expect([i for i, _ in records])
            self.starter.send(records)
            self.starter.flush()
            while not self.watcher.wait(1.0):
                self.processes.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError("the engine did not complete its warm-up workflows")
            held = self.partitions_held()
            if all(held) and sorted(p for ps in held for p in ps) == list(range(self.partitions)):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the orchestrators did not share the partitions: {held}")
            time.sleep(1.0)

    def partitions_held(self) -> list[list[int]]:
        """The partitions each orchestrator holds now."""
        return [
            list(child.journal_now().get("partitions", []))
            for child in self.processes.by_role("orchestrator")
        ]

    def commands_folded(self) -> list[int]:
        """The commands each orchestrator has folded so far (its journal's batches)."""
        return [
            sum(int(row[3]) for row in child.journal_now().get("rows", []))
            for child in self.processes.by_role("orchestrator")
        ]

    def run(
        self,
        records: list[tuple[str, bytes]],
        rate: float | None = None,
        commands_per_workflow: int = 4,
        with_breakdown: bool = False,
        steps: tuple[str, ...] = ("a", "b", "c"),
    ) -> dict[str, Any]:
        names = (
            self.topics.commands,
            self.topics.tasks,
            self.topics.history,
            self.topics.completions,
        )
        begin = breakdown.offsets(self.settings, names, self.partitions)
        figures = drive(
            self.starter,
            self.watcher,
            records,
            rate,
            self.meter,
            commands_per_workflow,
            alive=self.processes.check_alive,
        )
        if with_breakdown:
            figures["breakdown_ms"] = self.breakdown(begin, {i for i, _ in records}, steps)
        return figures

    def breakdown(
        self, begin: dict[str, dict[int, int]], ids: set[str], steps: tuple[str, ...]
    ) -> dict[str, dict[str, float]]:
        journals = {c.name: c.journal_now() for c in self.processes.children}
        facts = breakdown.read_facts(self.settings, begin, ids)
        read_at = {i: d.read_at for i, d in self.watcher.done.items() if i in ids}
        return breakdown.breakdown(
            facts,
            [j for n, j in journals.items() if n.startswith("orchestrator")],
            [j for n, j in journals.items() if n.startswith("worker")],
            read_at,
            steps,
        )

    def close(self) -> dict[str, float]:
        """Stop everything; the peak RSS of each process (MB)."""
        from benchmarks.processes import peak_rss_mb

        rss = {c.name: peak_rss_mb(c.pid) for c in self.processes.children}
        self.watcher.close()
        self.processes.stop()
        delete_namespace(self.settings)
        return rss


def delete_namespace(settings: Settings) -> None:
    """Delete the run's topics: a broker that keeps every run's partitions (thousands,
    after a few runs of the suite of benchmarks) gets slower at everything."""
    admin = clients.admin(settings)
    prefix = settings.topic_name("")
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            future.result()
