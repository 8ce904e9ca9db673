"""An agent run survives kill -9 of its worker between a model call and a tool call:
a new worker runs the tool again (at least once) and the run goes on from history,
without calling the model again for the answer it already recorded."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.messages import StepCompleted
from replayflow.processors.orchestrator import Orchestrator
from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics
from tests.ai import killable
from tests.chaos.conftest import Process

pytestmark = pytest.mark.kafka

WORKER = ["-m", "replayflow.cli", "worker", "-m", "tests.ai.killable"]


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_killed_worker_does_not_make_the_agent_call_the_model_again(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_calls, tool_runs, gate = tmp_path / "model", tmp_path / "tool", tmp_path / "gate"
    monkeypatch.setenv("AGENT_MODEL_CALLS_FILE", str(model_calls))
    monkeypatch.setenv("AGENT_TOOL_FILE", str(tool_runs))
    monkeypatch.setenv("AGENT_GATE", str(gate))
    settings = settings.replace(data_dir=tmp_path / "data")
    assert apply_topics(settings.bootstrap, load_topics(settings)).ok
    orchestrator = Orchestrator(settings, Registry.of(killable), instance_id="kill-test")
    ready = threading.Event()
    thread = threading.Thread(target=orchestrator.run, args=(ready,), daemon=True)
    thread.start()
    first = Process("worker-1", WORKER, settings, tmp_path / "worker-1.log")
    second = None
    try:
        assert ready.wait(60), "the orchestrator got no partitions"
        with Client(settings) as client:
            handle = client.start(
                killable.killable_agent, "look it up", id=f"kill-{uuid.uuid4().hex[:8]}"
            )
            wait_until(lambda: lines(tool_runs) == 1, 90, "the tool to start in worker 1")
            assert lines(model_calls) == 1
            first.kill()  # SIGKILL: the tool's attempt never reports
            gate.touch()
            second = Process("worker-2", WORKER, settings, tmp_path / "worker-2.log")
            assert handle.result(timeout=120) == "the tool said answer=42"
            history = client.history(handle.id, wait_final=10)
    finally:
        for process in (first, second):
            if process is not None and process.alive():
                process.kill()
        orchestrator.stop()
        thread.join(30)

    assert lines(model_calls) == 2  # the first answer came from history, not the model
    assert lines(tool_runs) == 2  # the tool ran again: steps are at least once
    completed = [e.step for e in history if isinstance(e, StepCompleted)]
    assert completed == ["model-request", "tool-slow_lookup", "model-request#2"]
