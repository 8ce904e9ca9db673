"""Kafka down and back, with a broker of this test's own (compose/kafka/kafka.sh on a
free port, data in a temporary folder, stopped by the pid it records):

- `replayflow dev` started before the broker waits for it, one "waiting for Kafka" line
  per interval, then runs by itself once the broker answers;
- its log has no GETPID lines from a fresh broker and no httpx lines from the API's
  health polls;
- while the broker is stopped, the orchestrator and the worker say "waiting for Kafka"
  once per interval (not a line per reconnect of every client), and say when it is
  back.

The short commands against a port nothing listens on are in test_unreachable.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from replayflow.client import Client
from replayflow.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "replayflow.cli")
KAFKA_SH = REPO / "compose" / "kafka" / "kafka.sh"
INTERVAL = 3  # REPLAYFLOW_LOG_INTERVAL for the processes under test


def free_port() -> int:
    # Two consecutive free ports: the broker's and its controller's.
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65000 and port > 20000:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


class Broker:
    def __init__(self, folder: Path, port: int) -> None:
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(port),
            "REPLAYFLOW_KAFKA_DIR": str(folder),
            "KAFKA_BOOTSTRAP": "",
        }
        self.bootstrap = f"127.0.0.1:{port}"

    def run(self, command: str) -> None:
        done = subprocess.run(
            ["bash", str(KAFKA_SH), command], env=self.env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not (REPO / "compose" / "kafka" / "libs").is_dir():
        subprocess.run(["bash", str(KAFKA_SH), "libs"], check=True)
    own = Broker(tmp_path / "kafka", free_port())
    try:
        yield own
    finally:
        own.run("down")


def lines_with(log: Path, text: str) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if text in line]


def wait_for(log: Path, text: str, timeout: float, count: int = 1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(lines_with(log, text)) >= count:
            return
        time.sleep(0.3)
    raise AssertionError(f"{text!r} x{count} not in the log:\n{log.read_text()[-4000:]}")


def test_dev_waits_for_kafka_and_rides_out_an_outage(broker: Broker, tmp_path: Path) -> None:
    log = tmp_path / "dev.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        api_port = s.getsockname()[1]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": broker.bootstrap,
        "REPLAYFLOW_NAMESPACE": "",
        "REPLAYFLOW_DATA": str(tmp_path / "data"),
        "REPLAYFLOW_PARTITIONS": "3",
        "REPLAYFLOW_LOG_INTERVAL": str(INTERVAL),
    }
    dev = subprocess.Popen(
        [*CLI, "dev", "--no-kafka", "-m", "examples.pipeline", "--api-port", str(api_port)],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        # 1. Started before the broker: it waits, one line per interval.
        time.sleep(4 * INTERVAL + 1)
        waiting = lines_with(log, "waiting for Kafka at " + broker.bootstrap)
        assert 3 <= len(waiting) <= 6, log.read_text()
        assert len(log.read_text().splitlines()) <= 8, log.read_text()
        assert dev.poll() is None
        # 2. The broker comes up: dev proceeds by itself.
        broker.run("up")
        wait_for(log, "replayflow is running", 180)
        settings = Settings.from_env(
            {"KAFKA_BOOTSTRAP": broker.bootstrap, "REPLAYFLOW_PARTITIONS": "3"}
        )
        with Client(settings) as client:
            assert client.start("pipeline", {"source": "s3://a"}, id="before").result(90)
        text = log.read_text()
        assert "GETPID" not in text and "httpx" not in text, text
        # 3. The broker stops for a while: a line per interval and process, no flood.
        before = len(text.splitlines())
        broker.run("down")
        outage = 6 * INTERVAL
        time.sleep(outage)
        during = log.read_text().splitlines()[before:]
        waits = [line for line in during if "waiting for Kafka" in line]
        # orchestrator and worker, each at most one line per interval (and one at once)
        assert 2 <= len(waits) <= 2 * (outage // INTERVAL + 2), "\n".join(during)
        assert len(during) <= 60, "\n".join(during)
        # 4. Back again: both say so and stay up. (A transaction after a broker
        # restart can hang inside librdkafka's send_offsets_to_transaction; the watchdog
        # that rebuilds the producer then belongs to the broker-survival work, so this
        # test stops at the processes noticing the broker is back.)
        broker.run("up")
        wait_for(log, "answers again", 120, count=2)
        assert dev.poll() is None
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            dev.kill()
