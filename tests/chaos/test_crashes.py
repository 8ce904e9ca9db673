"""Crashes of real processes on the real broker: `replayflow orchestrator` and
`replayflow worker` run as subprocesses (this interpreter, `-m replayflow.cli`), are
killed with SIGKILL by the pid recorded at start, and started again. One more crash the
CLI cannot make on purpose, between a transaction's commit and its RocksDB write, comes
from `python -m tests.chaos.workloads crash-after-commit`.

Every process a test starts is killed in the fixture's teardown, whatever happens."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from replayflow import codec
from replayflow.client import Client
from replayflow.core.messages import (
    EventAwaited,
    StartWorkflow,
    StepCompleted,
    TimerStarted,
    WorkflowCompleted,
)
from replayflow.settings import Settings
from replayflow.topics import Topics
from tests.chaos.conftest import (
    Cluster,
    completions_by_id,
    histories,
)
from tests.chaos.workloads import (
    CRASH_STATUS,
    TopicTail,
    produce_located,
    wait_folded,
    wait_until,
)

pytestmark = pytest.mark.kafka


# ---------------------------------------------------------------------------------------


def test_orchestrator_killed_mid_run(cluster: Cluster, settings: Settings) -> None:
    """kill -9 the orchestrator in the middle of 2,000 workflows and start it again with
    the same id and data: every workflow completes, each exactly once."""
    total = 2000
    cluster.orchestrator()
    cluster.worker()
    ids = [f"trivial-{i:04d}" for i in range(total)]
    seen: set[str] = set()
    with TopicTail(settings, Topics(settings).completions) as tail, Client(settings) as client:
        client.start_many([("chaos-trivial", i, instance_id) for i, instance_id in enumerate(ids)])

        def progress() -> int:
            cluster.check()
            for record in tail.poll(0.05):
                seen.add(record.decoded().instance_id)
            return len(seen)

        wait_until(
            lambda: progress() >= total // 5, 60, "a fifth of the workflows to end", interval=0
        )
        victim = cluster.processes[0]
        victim.kill()
        done_at_kill = progress()
        assert done_at_kill < total, "everything was done before the kill: nothing tested"
        restarted_at = time.monotonic()
        cluster.orchestrator(wait=False)
        wait_until(lambda: progress() >= total, 90, "every workflow to complete", interval=0.1)
        recovery = time.monotonic() - restarted_at
    print(f"\nkilled at {done_at_kill}/{total} completions; the rest took {recovery:.1f} s")

    counts = completions_by_id(settings)
    assert set(counts) == set(ids)
    duplicates = {i: n for i, n in counts.items() if n != 1}
    assert not duplicates, f"{len(duplicates)} instances completed more than once"

    # Exactly once in history too: one gap-free sequence per instance, one final event.
    for instance_id, events in histories(settings).items():
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1)), (instance_id, seqs)
        assert sum(isinstance(e, WorkflowCompleted) for e in events) == 1, instance_id
        [final] = [e for e in events if isinstance(e, WorkflowCompleted)]
        assert json.loads(final.output) == int(instance_id.split("-")[1]) + 3


def test_orchestrator_crash_between_commit_and_store_write(
    cluster: Cluster, settings: Settings
) -> None:
    """A crash after the transaction committed but before RocksDB saw the batch: the
    restart applies the changelog tail, so nothing is folded twice."""
    total = 300
    crashing = cluster.crashing_orchestrator(after_commits=6)
    cluster.worker()
    ids = [f"torn-{i:03d}" for i in range(total)]
    with Client(settings) as client:
        client.start_many([("chaos-trivial", i, instance_id) for i, instance_id in enumerate(ids)])
        wait_until(lambda: not crashing.alive(), 60, "the orchestrator to crash")
        crashing.ended_on_purpose = True
        assert crashing.popen.returncode == CRASH_STATUS, crashing.output()[-3000:]
        restarted = cluster.orchestrator()
        restored = [
            int(line.rsplit("(", 1)[1].split()[0])
            for line in restarted.output().splitlines()
            if " assigned (" in line
        ]
        assert sum(restored) > 0, "the changelog tail was not applied"
        for i, instance_id in enumerate(ids):
            assert client.result(instance_id, timeout=90) == i + 3

    counts = completions_by_id(settings)
    assert counts == Counter(dict.fromkeys(ids, 1)), {i: n for i, n in counts.items() if n != 1}
    for instance_id, events in histories(settings).items():
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1)), (instance_id, seqs)


def test_worker_killed_mid_step(cluster: Cluster, settings: Settings, tmp_path: Path) -> None:
    """kill -9 the worker while a step runs; a new worker runs the step again and the
    workflow completes."""
    marker = tmp_path / "marker.txt"
    cluster.orchestrator()
    first = cluster.worker()
    with Client(settings) as client:
        handle = client.start("chaos-slow", {"marker": str(marker), "seconds": 3}, id="slow-1")

        def step_started() -> bool:
            cluster.check()
            return marker.exists() and "start" in marker.read_text()

        wait_until(step_started, 60, "the step to start in the first worker")
        first.kill()
        assert f"start {first.pid} 1" in marker.read_text()
        second = cluster.worker()
        started = time.monotonic()
        assert handle.result(timeout=90) == "slept 3"
        print(
            f"\nthe step was run again and finished {time.monotonic() - started:.1f} s "
            "after the kill"
        )
        events = client.history("slow-1")

    lines = marker.read_text().splitlines()
    assert f"end {first.pid} 1" not in lines, "the killed worker finished the step?"
    assert f"start {second.pid} 1" in lines and f"end {second.pid} 1" in lines, lines
    assert len([e for e in events if isinstance(e, StepCompleted)]) == 1
    assert completions_by_id(settings) == Counter({"slow-1": 1})


def test_orchestrator_state_rebuilt_from_changelog(cluster: Cluster, settings: Settings) -> None:
    """Stop the orchestrator, delete its RocksDB folder, start it again: the state comes
    back from replayflow.state; waiting and sleeping workflows go on and complete, and
    finished ones stay finished."""
    sleep_s = 12.0
    orchestrator = cluster.orchestrator()
    cluster.worker()
    waiters = [f"waiter-{i}" for i in range(10)]
    sleepers = [f"sleeper-{i}" for i in range(10)]
    finished = [f"done-{i}" for i in range(10)]
    with Client(settings) as client:
        handles = client.start_many([("chaos-trivial", i, f) for i, f in enumerate(finished)])
        assert [h.result(timeout=60) for h in handles] == [i + 3 for i in range(10)]
        client.start_many(
            [("chaos-waiter", i, w) for i, w in enumerate(waiters)]
            + [("chaos-sleeper", sleep_s, s) for s in sleepers]
        )
        started = time.monotonic()

        def all_waiting() -> bool:
            cluster.check()
            events = histories(settings)
            return all(
                any(isinstance(e, EventAwaited) for e in events[w]) for w in waiters
            ) and all(any(isinstance(e, TimerStarted) for e in events[s]) for s in sleepers)

        wait_until(all_waiting, 60, "every waiter and sleeper to wait", interval=0.5)

        orchestrator.stop()
        assert orchestrator.popen.returncode is not None
        assert any(cluster.data.rglob("*.sst")) or any(cluster.data.rglob("*.log")), (
            "the orchestrator wrote no RocksDB files"
        )
        shutil.rmtree(cluster.data)

        restarted = cluster.orchestrator()
        restored = sum(
            int(line.rsplit("(", 1)[1].split()[0])
            for line in restarted.output().splitlines()
            if " assigned (" in line
        )
        assert restored > 0, "nothing was restored from the changelog"
        assert time.monotonic() - started < sleep_s, "the restart took longer than the sleep"

        # Finished instances stay finished: a second start of each changes nothing.
        located = produce_located(
            settings,
            [
                (
                    f.encode(),
                    codec.encode(
                        StartWorkflow(instance_id=f, workflow="chaos-trivial", input="100")
                    ),
                )
                for f in finished
            ],
        )
        for i, waiter in enumerate(waiters):
            client.send_event(waiter, "go", {"i": i})
        for i, waiter in enumerate(waiters):
            assert client.result(waiter, timeout=60) == {"n": i, "got": {"i": i}, "after": i + 1}
        for sleeper in sleepers:
            assert client.result(sleeper, timeout=60) == 1
        assert time.monotonic() - started >= sleep_s - 1
        wait_folded(settings, located)

    counts = completions_by_id(settings)
    assert counts == Counter(dict.fromkeys(waiters + sleepers + finished, 1)), counts
    events = histories(settings)
    for instance_id, history in events.items():
        seqs = [e.seq for e in history]
        assert seqs == list(range(1, len(seqs) + 1)), (instance_id, seqs)
    for sleeper in sleepers:
        [timer] = [e for e in events[sleeper] if isinstance(e, TimerStarted)]
        [done] = [e for e in events[sleeper] if isinstance(e, WorkflowCompleted)]
        assert done.at >= timer.due
    for f in finished:
        assert sum(isinstance(e, WorkflowCompleted) for e in events[f]) == 1
