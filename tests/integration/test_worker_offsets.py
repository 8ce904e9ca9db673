"""A worker killed -9 hands over exactly what it had not finished: a step whose result
reached the log (and whose commit was due, at most COMMIT_EVERY later) does not run
again in the next worker, even when it finished after a task of its partition that was
still running (its offset is then above the commit point, and travels in the commit's
metadata); the step that was running does run again (steps are at least once). The
interval between commits is the worker's REPLAYFLOW_TASK_COMMIT_MS."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.kafka.partition import murmur2_partition
from replayflow.processors.task_commits import COMMIT_EVERY
from replayflow.settings import Settings
from tests.chaos.worker_kills import orchestrated
from tests.chaos.workloads import wait_until
from tests.conftest import TEST_PARTITIONS
from tests.integration import gated_steps


def runs(path: Path, what: str) -> int:
    return path.read_text().splitlines().count(what) if path.exists() else 0


def same_partition_ids(prefix: str) -> tuple[str, str]:
    """Two instance ids whose tasks share a partition of replayflow.tasks."""
    first = f"{prefix}-a"
    target = murmur2_partition(first.encode(), TEST_PARTITIONS)
    for n in range(1000):
        other = f"{prefix}-b{n}"
        if murmur2_partition(other.encode(), TEST_PARTITIONS) == target:
            return first, other
    raise AssertionError("no id found on the same partition")


def test_a_step_finished_above_a_running_one_does_not_run_again_after_a_kill(
    settings: Settings, tmp_path: Path, monkeypatch: Any
) -> None:
    ran, gate = tmp_path / "runs", tmp_path / "gate"
    monkeypatch.setenv("GATED_RUNS", str(ran))
    monkeypatch.setenv("GATED_GATE", str(gate))
    settings = settings.replace(data_dir=tmp_path / "data")
    slow_id, quick_id = same_partition_ids(settings.namespace)
    with (
        orchestrated(
            settings,
            Registry.of(gated_steps),
            "offsets-test",
            "tests.integration.gated_steps",
            tmp_path,
        ) as workers,
        Client(settings) as client,
    ):
        slow = client.start(gated_steps.gated, id=slow_id)
        wait_until(lambda: runs(ran, "slow") == 1, 90, "the slow step to start")
        # Its task is below the quick one's on the same partition, and still runs.
        quick = client.start(gated_steps.quick_flow, id=quick_id)
        assert quick.result(timeout=60) == "quick done"
        # The worker commits at most every COMMIT_EVERY: a kill sooner after a result
        # may run its step again (at least once); one after that must not.
        time.sleep(COMMIT_EVERY + 0.5)
        workers.started[0].kill()
        gate.touch()
        workers.start("worker-2")
        assert slow.result(timeout=120) == "slow done"
        # Anything the new worker would run again it reads at once after the slow task.
        time.sleep(2)

    assert runs(ran, "slow") == 2  # it was running at the kill: it ran again
    assert runs(ran, "quick") == 1  # its result was on the log: it did not


def test_a_result_within_the_commit_interval_runs_again_after_a_kill(
    settings: Settings, tmp_path: Path, monkeypatch: Any
) -> None:
    ran = tmp_path / "runs"
    monkeypatch.setenv("GATED_RUNS", str(ran))
    monkeypatch.setenv("GATED_GATE", str(tmp_path / "gate"))
    # The worker processes read it from their environment, as `replayflow worker` does.
    monkeypatch.setenv("REPLAYFLOW_TASK_COMMIT_MS", "60000")
    settings = settings.replace(data_dir=tmp_path / "data")
    with (
        orchestrated(
            settings,
            Registry.of(gated_steps),
            "commit-interval-test",
            "tests.integration.gated_steps",
            tmp_path,
        ) as workers,
        Client(settings) as client,
    ):
        # The worker commits when it reads its first task (the group has nothing
        # committed yet), and the step's result only a minute after that commit: with
        # the default it would be committed 50 ms later, and not run again below.
        done = client.start(gated_steps.quick_flow, id=f"{settings.namespace}-once")
        assert done.result(timeout=60) == "quick done"
        time.sleep(COMMIT_EVERY + 0.5)
        workers.started[0].kill()
        workers.start("worker-2")
        wait_until(lambda: runs(ran, "quick") == 2, 90, "the step to run again")
        time.sleep(2)  # and only once more

    assert runs(ran, "quick") == 2
