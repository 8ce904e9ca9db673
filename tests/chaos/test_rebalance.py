"""Two orchestrator processes share the partitions; one joining and one leaving move
partitions between them without losing or repeating anything."""

from __future__ import annotations

import time

from replayflow.client import Client
from replayflow.core.messages import WorkflowCompleted
from replayflow.settings import Settings
from replayflow.topics import Topics
from tests.chaos.conftest import (
    WORKLOADS,
    Cluster,
    Process,
    completions_by_id,
    histories,
)
from tests.chaos.workloads import TopicTail, wait_until


def _orchestrator(cluster: Cluster, name: str) -> Process:
    process = cluster._start(
        name,
        ["orchestrator", "-m", WORKLOADS, "--id", name, "--data", str(cluster.tmp_path / name)],
    )
    return process


def test_orchestrators_join_and_leave_without_loss_or_repeats(
    cluster: Cluster, settings: Settings
) -> None:
    # Durable sleeps keep instances (and their timers) in flight while partitions move.
    total = 1200
    first = _orchestrator(cluster, "orch-a")
    wait_until(
        lambda: first.output().count(" assigned (") >= (settings.partitions or 1),
        60,
        "the first orchestrator to get every partition",
    )
    cluster.worker()
    ids = [f"shared-{i:04d}" for i in range(total)]
    seen: set[str] = set()
    with TopicTail(settings, Topics(settings).completions) as tail, Client(settings) as client:

        def progress() -> int:
            cluster.check()
            for record in tail.poll(0.05):
                seen.add(record.decoded().instance_id)
            return len(seen)

        client.start_many([("chaos-sleeper", 3, instance_id) for instance_id in ids[:600]])
        second = _orchestrator(cluster, "orch-b")  # joins while 600 instances sleep
        wait_until(
            lambda: " assigned (" in second.output(),
            60,
            "the second orchestrator to get partitions",
            interval=0.1,
        )
        client.start_many([("chaos-sleeper", 3, instance_id) for instance_id in ids[600:]])
        time.sleep(1.0)
        in_flight = total - progress()
        first.stop()  # leaves while instances sleep: its timers move with its partitions
        left_at = time.monotonic()
        wait_until(lambda: progress() >= total, 120, "every workflow to complete", interval=0.1)
        print(
            f"\n{in_flight} in flight when orch-a left; all done "
            f"{time.monotonic() - left_at:.1f} s later"
        )
        assert in_flight > 0, "nothing was in flight: the leave was not exercised"

    counts = completions_by_id(settings)
    assert set(counts) == set(ids)
    assert not {i: n for i, n in counts.items() if n != 1}, "an instance completed twice"
    for instance_id, events in histories(settings).items():
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1)), (instance_id, seqs)
        assert sum(isinstance(e, WorkflowCompleted) for e in events) == 1, instance_id
