"""A single Kafka broker of one test's own, started through compose/kafka/kafka.sh on a
free port above 20000 with its data in a temporary folder: a test may kill -9 it and
start it again without touching the broker every other test shares.

    with OwnBroker(tmp_path) as broker:
        settings = Settings(bootstrap=broker.bootstrap, namespace="x", partitions=3)
        broker.kill()      # SIGKILL by the pid kafka.sh recorded
        broker.start()     # same data, same port; returns once it answers

The broker is stopped (by its recorded pid) and its folder deleted on exit, whatever
happened in between.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "compose" / "kafka" / "kafka.sh"


def _free_port_pair(low: int = 20_000, high: int = 60_000) -> int:
    """A port p above 20000 with p and p + 1 (the controller's) both free now."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if not low < port < high - 1:
            continue
        try:
            with socket.socket() as other:
                other.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("found no two free neighbouring ports above 20000")


class OwnBroker:
    def __init__(self, log_dir: Path) -> None:
        self.port = _free_port_pair()
        # In /tmp, as the shared rules ask; short, so the path stays readable in logs.
        self.dir = Path(tempfile.mkdtemp(prefix=f"rf-kafka-{self.port}-", dir="/tmp"))
        self.log = log_dir / f"kafka-{self.port}.log"
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.started_at: list[float] = []  # monotonic times at which it answered

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP": "",  # empty: kafka.sh manages the local broker
            "KAFKA_PORT": str(self.port),
            "REPLAYFLOW_KAFKA_DIR": str(self.dir),
            "KAFKA_HEAP_OPTS": "-Xms128m -Xmx384m",
        }

    def _sh(self, command: str, timeout: float = 240) -> None:
        with open(self.log, "ab") as out:
            subprocess.run(
                [str(KAFKA_SH), command],
                env=self._env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=True,
            )

    @property
    def pid(self) -> int | None:
        try:
            text = (self.dir / "kafka.pid").read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def start(self) -> float:
        """Start it (same data and port as before) and return the monotonic time at
        which it answered."""
        self._sh("up")
        answered = time.monotonic()
        self.started_at.append(answered)
        return answered

    def kill(self) -> None:
        """SIGKILL by the recorded pid: no shutdown, no flush, like a machine lost."""
        pid = self.pid
        assert pid is not None, "the broker has no recorded pid"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise AssertionError(f"broker pid {pid} still alive 30 s after SIGKILL")

    def stop(self) -> None:
        try:
            self._sh("down", timeout=90)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def server_log(self) -> str:
        """The broker's own log (WARN and up, plus the lines compose/kafka/log4j2.xml
        keeps at INFO), across every start of this broker."""
        logs = sorted((self.dir / "logs").glob("server.log*"), reverse=True)
        return "".join(path.read_text(errors="replace") for path in logs)

    def __enter__(self) -> OwnBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
