"""A Kafka of the caller's own, one node or a cluster, started through
compose/kafka/kafka.sh on free ports with its data in a folder of its own; its nodes
are killed (kill -9) and restarted by the pids kafka.sh recorded. It never touches a
broker it did not start: the shared one of KAFKA_BOOTSTRAP is ignored here."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "compose" / "kafka" / "kafka.sh"


def free_port_run(count: int, low: int = 20000, high: int = 40000) -> int:
    """The first of `count` consecutive free ports on 127.0.0.1 (kafka.sh gives node i
    the ports base + 2(i-1) and the one after)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if not low <= base <= high - count:
            base = low + (base % (high - low - count))
        if all(_free(port) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports found")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class LocalKafka:
    """`with LocalKafka(folder, brokers=3) as kafka:` starts the nodes and stops them
    (by pid) at the end, whatever happened."""

    def __init__(self, folder: Path, brokers: int = 1, start_timeout: int = 120) -> None:
        self.folder = folder
        self.brokers = brokers
        self.base_port = free_port_run(2 * brokers)
        self.env = {
            **os.environ,
            "REPLAYFLOW_KAFKA_DIR": str(folder),
            "KAFKA_PORT": str(self.base_port),
            "BROKERS": str(brokers),
            "KAFKA_ADMIN_PYTHON": sys.executable,
            "KAFKA_START_TIMEOUT": str(start_timeout),
            "KAFKA_STOP_TIMEOUT": "15",
        }
        self.env.pop("KAFKA_BOOTSTRAP", None)  # kafka.sh would use that cluster instead
        self.env.pop("KAFKA_CONTROLLER_PORT", None)

    @property
    def bootstrap(self) -> str:
        return ",".join(self.address(node) for node in range(1, self.brokers + 1))

    def address(self, node: int) -> str:
        return f"127.0.0.1:{self.base_port + 2 * (node - 1)}"

    def kafka_sh(self, *args: str, timeout: float = 240) -> str:
        done = subprocess.run(
            [str(KAFKA_SH), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"kafka.sh {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout[-2000:]}{done.stderr[-3000:]}"
            )
        return done.stdout

    def up(self) -> str:
        """Start every node that does not run (all at first; a killed one later) and
        return once each answers."""
        return self.kafka_sh("up")

    def down(self) -> str:
        return self.kafka_sh("down")

    def pidfile(self, node: int = 1) -> Path:
        if self.brokers == 1:
            return self.folder / "kafka.pid"
        return self.folder / f"node-{node}" / "kafka.pid"

    def pid(self, node: int = 1) -> int:
        return int(self.pidfile(node).read_text().strip())

    def kill(self, node: int = 1) -> int:
        """kill -9 one node by its recorded pid; return once it is gone."""
        pid = self.pid(node)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return pid
            time.sleep(0.05)
        raise RuntimeError(f"broker pid {pid} survived SIGKILL")

    def __enter__(self) -> LocalKafka:
        try:
            self.up()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        try:
            self.down()
        except Exception as exc:  # reported, not raised over the test's own failure
            print(f"kafka.sh down failed for {self.folder}: {exc}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
