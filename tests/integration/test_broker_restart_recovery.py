"""The engine gets through a broker restart by itself.

A broker of the test's own (tests/integration/own_broker.py) serves an orchestrator and a
worker, run as processes (`python -m replayflow.cli ...`, as tests/chaos starts them)
under a workload of three-step workflows. The broker is killed with SIGKILL twice
mid-run (once briefly, once for longer than the group session timeout) and started
again on the same data. Checked from the topics alone (read_committed):

- every workflow completes exactly once, with a gap-free history;
- after each restart, the first completion produced after the broker answered again
  comes within RESUME_WITHIN seconds of it;
- no process exited: the test never restarts one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from replayflow.client import Client
from replayflow.core.messages import WorkflowCompleted
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics
from tests.chaos.conftest import Cluster, completions_by_id, histories
from tests.chaos.workloads import TopicTail, wait_until
from tests.integration.own_broker import OwnBroker

pytestmark = pytest.mark.kafka

RESUME_WITHIN = 10.0  # seconds from the broker answering to the next completion
TOTAL = 4000


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[OwnBroker]:
    with OwnBroker(tmp_path) as own:
        yield own


def test_orchestrator_and_worker_survive_broker_kills(broker: OwnBroker, tmp_path: Path) -> None:
    settings = Settings(
        bootstrap=broker.bootstrap, namespace="t" + uuid.uuid4().hex[:10], partitions=3
    )
    apply_topics(settings.bootstrap, load_topics(settings))
    cluster = Cluster(settings, tmp_path)
    try:
        _run(cluster, broker, settings)
    finally:
        cluster.close()
        print(cluster.logs())
        print(broker.output()[-3000:])


def _run(cluster: Cluster, broker: OwnBroker, settings: Settings) -> None:
    cluster.orchestrator()
    cluster.worker()
    ids = [f"restart-{i:04d}" for i in range(TOTAL)]
    seen: set[str] = set()
    resumed: list[float] = []
    with TopicTail(settings, Topics(settings).completions) as tail, Client(settings) as client:
        client.start_many([("chaos-trivial", i, instance_id) for i, instance_id in enumerate(ids)])

        def progress(since_ms: int | None = None) -> int:
            cluster.check()  # no process may have died
            for record in tail.poll(0.05):
                seen.add(record.decoded().instance_id)
                if since_ms is not None and record.timestamp >= since_ms:
                    resumed.append(record.timestamp / 1000 - since_ms / 1000)
                    since_ms = None
            return len(seen)

        for fraction, down_for in ((0.15, 2.0), (0.4, 15.0)):
            wait_until(
                lambda f=fraction: progress() >= TOTAL * f,  # type: ignore[misc]
                120,
                f"{fraction:.0%} of the workflows to complete",
                interval=0,
            )
            broker.kill()
            at_kill = progress()
            assert at_kill < TOTAL, "everything was done before the kill: nothing tested"
            time.sleep(down_for)
            broker.start()
            answered_ms = int(time.time() * 1000)
            before = len(resumed)
            wait_until(
                lambda a=answered_ms, b=before: (progress(a), len(resumed) > b)[1],  # type: ignore[misc]
                60,
                "a completion produced after the broker came back",
                interval=0.05,
            )
            print(
                f"\nbroker killed at {at_kill}/{TOTAL} completions, down {down_for:g} s; "
                f"first new completion {resumed[-1]:.2f} s after it answered"
            )
        wait_until(lambda: progress() >= TOTAL, 240, "every workflow to complete", interval=0.1)

    assert len(cluster.processes) == 2, "a process was started again"
    assert all(p.alive() for p in cluster.processes)
    assert all(delay <= RESUME_WITHIN for delay in resumed), resumed

    counts = completions_by_id(settings)
    assert set(counts) == set(ids)
    duplicates = {i: n for i, n in counts.items() if n != 1}
    assert not duplicates, f"{len(duplicates)} instances completed more than once"
    assert Counter(counts.values()) == Counter({1: TOTAL})
    for instance_id, events in histories(settings).items():
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1)), (instance_id, seqs)
        finals = [e for e in events if isinstance(e, WorkflowCompleted)]
        assert len(finals) == 1, instance_id
        assert json.loads(finals[0].output) == int(instance_id.split("-")[1]) + 3
