"""Processes of a benchmark run: the orchestrators and the worker as children (through
benchmarks/launch.py), the broker found by its pid file, and their CPU time from /proc."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replayflow.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def broker_pid() -> int | None:
    """The local broker's pid (compose/kafka/kafka.sh records it), if it runs here."""
    folder = Path(os.environ.get("REPLAYFLOW_KAFKA_DIR", ROOT / ".kafka"))
    for pid_file in (folder / "kafka.pid", *sorted(folder.glob("node-*/kafka.pid"))):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{pid}").exists():
            return pid
    return None


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    journal: Path
    log: Any

    @property
    def pid(self) -> int:
        return self.process.pid

    def journal_now(self, timeout: float = 10.0) -> dict[str, Any]:
        """Ask for the journal (SIGUSR1) and wait until the new one is written."""
        before = self._read().get("generation", 0)
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self._read()
            if data.get("generation", 0) > before:
                return data
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} wrote no journal within {timeout} s")

    def _read(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.journal.read_text()))
        except (OSError, ValueError):
            return {}

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Processes:
    """Orchestrators and a worker for one namespace, stopped by their pids."""

    settings: Settings
    data_dir: Path
    children: list[Child] = field(default_factory=list)

    def _env(self) -> dict[str, str]:
        return dict(
            os.environ,
            KAFKA_BOOTSTRAP=self.settings.bootstrap,
            REPLAYFLOW_NAMESPACE=self.settings.namespace,
            REPLAYFLOW_DATA=str(self.data_dir / "stores"),
            REPLAYFLOW_ADMISSION=self.settings.admission,
            # The code of this checkout, whichever one the virtualenv installed.
            PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'src'}",
        )

    def start(self, name: str, args: list[str]) -> Child:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        journal = self.data_dir / f"{name}.journal.json"
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.launch", *args, "--journal", str(journal)],
            env=self._env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        child = Child(name, process, journal, log)
        self.children.append(child)
        return child

    def orchestrator(self, name: str, limits: tuple[str, ...] = ()) -> Child:
        args = ["orchestrator", "--id", name]
        for limit in limits:
            args += ["--limit", limit]
        return self.start(name, args)

    def worker(self, name: str = "worker", concurrency: int = 1000) -> Child:
        return self.start(name, ["worker", "--concurrency", str(concurrency)])

    def by_role(self, role: str) -> list[Child]:
        return [c for c in self.children if c.name.startswith(role)]

    def check_alive(self) -> None:
        for child in self.children:
            if not child.alive():
                raise RuntimeError(
                    f"{child.name} exited with {child.process.returncode}: see "
                    f"{self.data_dir / 'logs' / (child.name + '.log')}"
                )

    def stop(self) -> None:
        for child in self.children:
            if child.alive():
                child.process.terminate()
        for child in self.children:
            wait_or_kill(child.process)
            child.log.close()


def wait_or_kill(process: subprocess.Popen[Any], grace: float = 30.0) -> None:
    """Wait up to `grace` seconds for a process told to stop, then kill it."""
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


class CpuMeter:
    """CPU seconds of each benchmark process, the broker and this client, between
    `begin()` and `end()`."""

    def __init__(self, processes: Processes) -> None:
        self.pids: dict[str, int] = {c.name: c.pid for c in processes.children}
        broker = broker_pid()
        if broker is not None:
            self.pids["broker"] = broker
        self._start: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        now["client"] = own_cpu_seconds()
        return now

    def begin(self) -> None:
        self._start = self._now()

    def end(self) -> dict[str, float]:
        now = self._now()
        return {name: round(now[name] - self._start[name], 3) for name in now}
