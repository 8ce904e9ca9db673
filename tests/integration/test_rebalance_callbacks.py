"""The orchestrator's rebalance callbacks survive a consumer that logs a lot.

confluent-kafka keeps, per client and thread, the state of the call in progress
(consume, poll, list_topics, ...); a callback served inside that call (a rebalance, an
error, a log line) finds it there. A call made on the same client inside its own
callback clears it when it returns, and the next callback of the outer call then aborts
the whole process in C: `CallState_get: Assertion 'cs != NULL' failed`. An orchestrator
that asked its consumer for the topics' partition counts while the consumer assigned it
partitions died that way, but only when another callback followed in the same consume
call (a log line or an error: after a broker restart, say).

The orchestrator here runs in a process of its own (an abort would take pytest with it)
with librdkafka's debug lines on for its consumer, so log callbacks follow every
rebalance callback at once; before the fix it aborted on its first assignment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import replayflow as rf
from replayflow.core.definitions import Registry
from replayflow.kafka import clients
from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
ASSIGNED_WITHIN = 60.0  # seconds the orchestrator may take to be assigned its partitions
RUN_ON = 3.0  # seconds it runs on after that


@rf.workflow(name="rebalance-noop")
async def noop(ctx: rf.Context, x: int) -> int:
    return x


def test_orchestrator_survives_chatty_rebalance_callbacks(
    settings: Settings, tmp_path: Path
) -> None:
    apply_topics(settings.bootstrap, load_topics(settings))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.bootstrap,
        "REPLAYFLOW_NAMESPACE": settings.namespace,
        "DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.test_rebalance_callbacks"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode != -signal.SIGABRT, f"the orchestrator aborted:\n{output[-3000:]}"
    assert done.returncode == 0, output[-3000:]
    assert "partitions assigned: [0, 1, 2]" in done.stdout, output[-3000:]


def _main() -> None:
    """The orchestrator, its consumer with librdkafka's debug lines on, until RUN_ON s after
    its partitions were assigned."""
    from replayflow.processors.orchestrator import Orchestrator

    plain = clients.consumer_config

    def chatty(settings: Settings, group: str | None, **extra: object) -> dict[str, object]:
        return {**plain(settings, group, **extra), "debug": "cgrp,topic,metadata,fetch"}

    clients.consumer_config = chatty  # type: ignore[assignment]
    settings = Settings.from_env()
    orchestrator = Orchestrator(
        settings, Registry.of(noop), instance_id="rebalance", data_dir=Path(os.environ["DATA_DIR"])
    )
    held: list[int] = []

    def stop_after_assignment() -> None:
        # Runs on while the consumer keeps logging, so callbacks follow the assignment.
        deadline = time.monotonic() + ASSIGNED_WITHIN
        while not orchestrator.stats.assigned and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(RUN_ON)
        held.extend(orchestrator.stats.assigned)
        orchestrator.stop()

    threading.Thread(target=stop_after_assignment, daemon=True).start()
    orchestrator.run()
    print(f"partitions assigned: {held}", flush=True)


if __name__ == "__main__":
    _main()
