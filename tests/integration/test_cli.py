"""The `replayflow` command on the real broker: start, send-event, result, history,
replay, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from examples import agent

from replayflow.core.definitions import Registry
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def runtime(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    apply_topics(settings.bootstrap, load_topics(settings))
    config = Settings(
        bootstrap=settings.bootstrap,
        namespace=settings.namespace,
        partitions=settings.partitions,
        data_dir=tmp_path,
    )
    with LocalRuntime(config, Registry.of(agent)):
        yield config


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.bootstrap,
        "REPLAYFLOW_NAMESPACE": settings.namespace,
    }
    return subprocess.run(
        [sys.executable, "-m", "replayflow.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_workflow_through_the_cli(runtime: Settings) -> None:
    started = cli(runtime, "start", "travel-agent", '{"goal": "Lisbon"}', "--id", "trip-cli")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "trip-cli"

    sent = cli(runtime, "send-event", "trip-cli", "approval", '{"approved": true}')
    assert sent.returncode == 0, sent.stderr

    result = cli(runtime, "result", "trip-cli", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["answer"].startswith("Booked")

    history = cli(runtime, "history", "trip-cli")
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert lines[0].split()[:3] == ["SEQ", "TIME", "(UTC)"]
    assert "WorkflowStarted" in lines[1] and "WorkflowCompleted" in lines[-1]

    same = cli(runtime, "replay", "trip-cli", "-m", "examples.agent")
    assert same.returncode == 0, same.stderr
    assert same.stdout.startswith("identical")

    changed = cli(runtime, "replay", "trip-cli", "-m", "tests.integration.changed_agent")
    assert changed.returncode == 1
    assert "different: event #" in changed.stderr


def test_errors_are_one_line(runtime: Settings) -> None:
    missing = cli(runtime, "history", "no-such-instance")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: no history for 'no-such-instance'"
    bad_json = cli(runtime, "start", "travel-agent", "{not json")
    assert bad_json.returncode == 1
    assert "Traceback" not in bad_json.stderr and "INPUT is not JSON" in bad_json.stderr


def test_lifecycle_commands(runtime: Settings) -> None:
    assert (
        cli(runtime, "start", "travel-agent", '{"goal": "Oslo"}', "--id", "trip-lc").returncode == 0
    )
    for command in ("pause", "resume", "cancel"):
        done = cli(runtime, command, "trip-lc", "--reason", f"cli {command}")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"{command} sent to trip-lc"
    ended = cli(runtime, "result", "trip-lc", "--timeout", "60")
    assert ended.returncode == 1
    assert "ended CANCELLED" in ended.stderr
    history = cli(runtime, "history", "trip-lc").stdout
    for event in ("WorkflowPaused", "WorkflowResumed", "CancelRequested", "WorkflowCancelled"):
        assert event in history
    assert "reason=cli cancel" in history
