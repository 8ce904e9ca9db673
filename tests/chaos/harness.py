"""The chaos harness, shared by the chaos tests (tests/chaos/) and `make chaos`
(benchmarks/chaos/): replayflow CLI processes started as subprocesses (this
interpreter, `-m replayflow.cli`), known by the pid recorded at start and killed by it;
and readers of the topics they write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from replayflow.core.messages import Completion
from replayflow.settings import Settings
from replayflow.topics import Topics
from tests.chaos.workloads import read_topic, wait_until

REPO = Path(__file__).resolve().parents[2]
WORKLOADS = "tests.chaos.workloads"


class Process:
    """One Python process (`args` after the interpreter), its output in a log file,
    known by its pid."""

    def __init__(self, name: str, args: list[str], settings: Settings, log: Path) -> None:
        self.name = name
        self.log = log
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP": settings.bootstrap,
            "REPLAYFLOW_NAMESPACE": settings.namespace,
            "PYTHONUNBUFFERED": "1",
        }
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, *args], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.pid = self.popen.pid
        self.ended_on_purpose = False

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL by pid: no cleanup, no flush, no goodbye to the group."""
        self.ended_on_purpose = True
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait; SIGKILL if it does not end in time."""
        self.ended_on_purpose = True
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


class Cluster:
    """Starts the processes of one test and remembers every one of them."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.tmp_path = tmp_path
        self.data = tmp_path / "orchestrator-data"
        self.processes: list[Process] = []

    def _start(self, name: str, args: list[str], module: str = "replayflow.cli") -> Process:
        log = self.tmp_path / f"{name}-{len(self.processes)}.log"
        process = Process(name, ["-m", module, *args], self.settings, log)
        self.processes.append(process)
        return process

    def orchestrator(
        self, wait: bool = True, instance_id: str = "chaos-orchestrator", partitions: int = 0
    ) -> Process:
        """An orchestrator (`instance_id` names it and its data folder); `wait` for it
        to be assigned `partitions` partitions (default: all)."""
        data = self.data if instance_id == "chaos-orchestrator" else self.tmp_path / instance_id
        process = self._start(
            "orchestrator",
            ["orchestrator", "-m", WORKLOADS, "--id", instance_id, "--data", str(data)],
        )
        if wait:
            partitions = partitions or self.settings.partitions or 1
            wait_until(
                lambda: self._check(process).output().count(" assigned (") >= partitions,
                60,
                "the orchestrator to get its partitions",
            )
        return process

    def crashing_orchestrator(self, after_commits: int) -> Process:
        """An orchestrator that exits after its n-th commit, before the RocksDB write."""
        return self._start(
            "crashing-orchestrator",
            ["crash-after-commit", str(after_commits), "chaos-orchestrator", str(self.data)],
            module=WORKLOADS,
        )

    def worker(self) -> Process:
        return self._start("worker", ["worker", "-m", WORKLOADS])

    def trigger(self, module: str, member_id: str, *extra: str) -> Process:
        """`replayflow trigger -m module --id member_id` (no DSL documents)."""
        return self._start(
            "trigger", ["trigger", "-m", module, "--id", member_id, "--no-documents", *extra]
        )

    def _check(self, process: Process) -> Process:
        if not process.alive():
            raise AssertionError(
                f"{process.name} exited with {process.popen.returncode}:\n"
                f"{process.output()[-3000:]}"
            )
        return process

    def check(self) -> None:
        """Fail at once when a process that should run has died."""
        for process in self.processes:
            if not process.ended_on_purpose:
                self._check(process)

    def close(self) -> None:
        for process in self.processes:
            try:
                process.kill()
            except Exception as exc:  # keep killing the others
                print(f"could not kill {process.name} pid {process.pid}: {exc}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} pid {p.pid} ({p.log.name})\n{p.output()[-2000:]}" for p in self.processes
        )


def completions_by_id(settings: Settings) -> Counter[str]:
    counts: Counter[str] = Counter()
    for record in read_topic(settings, Topics(settings).completions):
        completion = record.decoded()
        assert isinstance(completion, Completion)
        assert record.key == completion.instance_id.encode()
        counts[completion.instance_id] += 1
    return counts


def histories(settings: Settings) -> dict[str, list[Any]]:
    events: dict[str, list[Any]] = defaultdict(list)
    for record in read_topic(settings, Topics(settings).history):
        event = record.decoded()
        events[event.instance_id].append(event)
    return events
