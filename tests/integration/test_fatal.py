"""A fenced orchestrator ends its process: two orchestrator processes started with one
--id, the first is fenced by the second and exits non-zero with a clear message, so a
supervisor restarts it; the second goes on folding."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from replayflow.client import Client
from replayflow.processors.fatal import EXIT_FATAL
from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics

REPO = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "replayflow.cli")


def orchestrator(settings: Settings, data: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.bootstrap,
        "REPLAYFLOW_NAMESPACE": settings.namespace,
        "REPLAYFLOW_DATA": str(data),
    }
    return subprocess.Popen(
        [*CLI, "orchestrator", "-m", "examples.pipeline", "--id", "same-id"],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_for(log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {log}:\n{log.read_text(errors='replace')[-3000:]}")


def test_a_fenced_orchestrator_exits_with_a_clear_message(
    settings: Settings, tmp_path: Path
) -> None:
    apply_topics(settings.bootstrap, load_topics(settings))
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = orchestrator(settings, tmp_path / "a", first_log)
    second = None
    try:
        wait_for(first_log, "partition 0 assigned", 90)
        second = orchestrator(settings, tmp_path / "b", second_log)
        code = first.wait(90)
        assert code == EXIT_FATAL, first_log.read_text()
        text = first_log.read_text()
        assert "fatal Kafka error, stopping" in text
        assert "another process runs with the same id (--id)" in text
        assert "Traceback" not in text
        # The second one is the orchestrator now: it answers starts.
        wait_for(second_log, "assigned", 90)
        with Client(settings) as client:
            handle = client.start("pipeline", {"source": "s3://x"}, id="after-fence")
            assert handle.outcome == "ACCEPTED"
        assert second.poll() is None
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
