"""The scale benchmark's processes (benchmarks/scale.py): a fresh namespace with its
topics and data folder, and the `replayflow` child processes in it, stopped by their
pids; their RSS and CPU read from /proc."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.engine import delete_namespace
from benchmarks.processes import cpu_seconds, wait_or_kill
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics

ROOT = Path(__file__).resolve().parent.parent
MODULE = "benchmarks.scale_workload"


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) in MB, and CPU seconds used so far."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    except (OSError, IndexError, ValueError):
        pass
    cpu = cpu_seconds(pid)
    if cpu == cpu:  # not NaN: the process still ran
        out["cpu_s"] = cpu
    return out


def dir_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return round(total / 2**20, 1)


class Process:
    """One `replayflow` child process, stopped by its pid."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self._log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "replayflow.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.started = time.time()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def status(self) -> dict[str, float]:
        return proc_status(self.pid)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            wait_or_kill(self.popen)
        self._log.close()


class Namespace:
    """A fresh namespace with its topics, data folder and child processes."""

    def __init__(
        self,
        base: Settings,
        partitions: int,
        label: str,
        keep_data: bool,
        admission: str = "sharded",
    ) -> None:
        self.settings = Settings(
            bootstrap=base.bootstrap,
            namespace=f"scale{uuid.uuid4().hex[:8]}{label}",
            partitions=partitions,
            admission=admission,
        )
        self.topics = Topics(self.settings)
        print(f"[{label}] namespace {self.settings.namespace}:", end=" ", flush=True)
        print(apply_topics(self.settings.bootstrap, load_topics(self.settings)).summary())
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"replayflow-scale-{label}-"))
        self.logs = self.data_dir / "logs"
        self.logs.mkdir()
        self.keep_data = keep_data
        self.env = dict(
            os.environ,
            KAFKA_BOOTSTRAP=self.settings.bootstrap,
            REPLAYFLOW_NAMESPACE=self.settings.namespace,
            REPLAYFLOW_DATA=str(self.data_dir / "stores"),
            REPLAYFLOW_ADMISSION=admission,
            # The checkout this script is in first: the processes run its replayflow.
            PYTHONPATH=os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
        )
        self.processes: list[Process] = []

    def start_orchestrator(self, limits: list[str]) -> Process:
        args = ["orchestrator", "-m", MODULE, "--id", "scale-orchestrator"]
        for limit in limits:
            args += ["--limit", limit]
        return self._start("orchestrator", args)

    def start_worker(self, concurrency: int) -> Process:
        return self._start("worker", ["worker", "-m", MODULE, "--concurrency", str(concurrency)])

    def _start(self, name: str, args: list[str]) -> Process:
        process = Process(name, args, self.env, self.logs)
        self.processes.append(process)
        return process

    def stores_mb(self) -> float:
        return dir_mb(self.data_dir / "stores")

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.keep_data:
            print(f"data, logs and topics kept in {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            delete_namespace(self.settings)


def check_alive(ns: Namespace) -> None:
    for process in ns.processes:
        if not process.alive():
            raise RuntimeError(
                f"the {process.name} exited ({process.popen.returncode}): see {ns.logs}"
            )
