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

And from the broker's own log: no partition came back by an unclean leader election
(the controller logs each; compose/kafka/log4j2.xml keeps those lines). A lone broker
formatted with Kafka's eligible leader replicas comes back from SIGKILL by unclean
elections of all its partitions, and Kafka does not promise transactions across those
(kafka.sh's format_storage formats it without them).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from replayflow.client import Client
from replayflow.core.messages import WorkflowCompleted
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics
from tests.chaos.conftest import Cluster, completions_by_id, histories
from tests.chaos.workloads import TopicTail, wait_until
from tests.integration import stall_report
from tests.integration.own_broker import OwnBroker

pytestmark = pytest.mark.kafka

RESUME_WITHIN = 10.0  # seconds from the broker answering to the next completion
TOTAL = 4000
FEED_RATE = 200.0  # workflows started per second: the feed lasts TOTAL / FEED_RATE s
FEED_CHUNK = 50


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
    unclean = [line for line in broker.server_log().splitlines() if "UNCLEAN" in line]
    assert not unclean, f"{len(unclean)} unclean partition changes logged, the first: {unclean[0]}"


def _feed(settings: Settings, ids: list[str], stop: threading.Event) -> None:
    """Start the workflows at a steady rate, so work is in flight whenever the broker
    dies (a burst would complete all at once, maybe before the kill). A chunk whose
    send fails while the broker is away is sent again: starts are idempotent by id."""
    with Client(settings, watch_completions=False, confirm=False, check=False) as client:
        for first in range(0, len(ids), FEED_CHUNK):
            part = ids[first : first + FEED_CHUNK]
            chunk = [("chaos-trivial", int(i.split("-")[1]), i) for i in part]
            while not stop.is_set():
                try:
                    client.start_many(chunk)
                    break
                except Exception as exc:  # the broker is away: try again
                    print(f"feed: {type(exc).__name__}, sending again")
                    time.sleep(0.5)
            if stop.wait(FEED_CHUNK / FEED_RATE):
                return


def _wait_or_report(
    condition: Callable[[], Any], timeout: float, what: str, settings: Settings
) -> None:
    """wait_until, and on a timeout the broker's view of where the engine stopped."""
    try:
        wait_until(condition, timeout, what, interval=0.05)
    except AssertionError as exc:
        seen = stall_report.report(settings.bootstrap, settings.namespace)
        raise AssertionError(f"{exc}\n{seen}") from None


def _run(cluster: Cluster, broker: OwnBroker, settings: Settings) -> None:
    cluster.orchestrator()
    cluster.worker()
    ids = [f"restart-{i:04d}" for i in range(TOTAL)]
    seen: set[str] = set()
    resumed: list[float] = []
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(settings, ids, stop), daemon=True)
    with TopicTail(settings, Topics(settings).completions) as tail:
        feeder.start()

        def progress(since_ms: int | None = None) -> int:
            cluster.check()  # no process may have died
            for record in tail.poll(0.05):
                seen.add(record.decoded().instance_id)
                if since_ms is not None and record.timestamp >= since_ms:
                    resumed.append(record.timestamp / 1000 - since_ms / 1000)
                    since_ms = None
            return len(seen)

        try:
            # The kills are timed from the first completion, not from the feed's start:
            # on a loaded machine the worker may take seconds to start, and a kill
            # before anything completed would test nothing. Then at fixed times after
            # it, inside the feed (TOTAL / FEED_RATE seconds long): the first kill
            # brief, the second longer than the group session timeout (10 s).
            wait_until(lambda: progress() > 0, 60, "a first completion", interval=0.05)
            began = time.monotonic()
            for at, down_for in ((4.0, 2.0), (10.0, 15.0)):
                wait_until(
                    lambda a=at: (progress(), time.monotonic() - began >= a)[1],  # type: ignore[misc]
                    120,
                    f"{at:g} s after the first completion",
                    interval=0.05,
                )
                broker.kill()
                at_kill = progress()
                assert feeder.is_alive() and at_kill < TOTAL, "the feed ended before the kill"
                time.sleep(down_for)
                broker.start()
                answered_ms = int(time.time() * 1000)
                before = len(resumed)
                _wait_or_report(
                    lambda a=answered_ms, b=before: (progress(a), len(resumed) > b)[1],  # type: ignore[misc]
                    60,
                    "a completion produced after the broker came back",
                    settings,
                )
                print(
                    f"\nbroker killed at {at_kill}/{TOTAL} completions, down {down_for:g} s; "
                    f"first new completion {resumed[-1]:.2f} s after it answered"
                )
            feeder.join(120)
            assert not feeder.is_alive(), "the feed did not finish"
            _wait_or_report(
                lambda: progress() >= TOTAL, 240, "every workflow to complete", settings
            )
        finally:
            stop.set()

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
