"""An agent run survives kill -9 of its worker between a model call and a tool call:
a new worker runs the tool again (at least once) and the run goes on from history,
without calling the model again for the answer it already recorded."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.messages import StepCompleted
from replayflow.processors.task_commits import COMMIT_EVERY
from replayflow.settings import Settings
from tests.ai import killable
from tests.chaos.worker_kills import orchestrated
from tests.chaos.workloads import wait_until

pytestmark = pytest.mark.kafka


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_killed_worker_does_not_make_the_agent_call_the_model_again(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_calls, tool_runs, gate = tmp_path / "model", tmp_path / "tool", tmp_path / "gate"
    monkeypatch.setenv("AGENT_MODEL_CALLS_FILE", str(model_calls))
    monkeypatch.setenv("AGENT_TOOL_FILE", str(tool_runs))
    monkeypatch.setenv("AGENT_GATE", str(gate))
    settings = settings.replace(data_dir=tmp_path / "data")
    with (
        orchestrated(
            settings, Registry.of(killable), "kill-test", "tests.ai.killable", tmp_path
        ) as workers,
        Client(settings) as client,
    ):
        handle = client.start(
            killable.killable_agent, "look it up", id=f"kill-{uuid.uuid4().hex[:8]}"
        )
        wait_until(lambda: lines(tool_runs) == 1, 90, "the tool to start in worker 1")
        assert lines(model_calls) == 1
        # The model call's task is committed at most COMMIT_EVERY after its result: a
        # kill sooner may run that step again (steps are at least once), not later.
        time.sleep(COMMIT_EVERY + 0.5)
        workers.started[0].kill()  # SIGKILL: the tool's attempt never reports
        gate.touch()
        workers.start("worker-2")
        assert handle.result(timeout=120) == "the tool said answer=42"
        history = client.history(handle.id, wait_final=10)

    assert lines(model_calls) == 2  # the first answer came from history, not the model
    assert lines(tool_runs) == 2  # the tool ran again: steps are at least once
    completed = [e.step for e in history if isinstance(e, StepCompleted)]
    assert completed == ["model-request", "tool-slow_lookup", "model-request#2"]
