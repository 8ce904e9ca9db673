"""A schedule that fires every second while `replayflow orchestrator` is killed with
SIGKILL right at fire times (just after a slot's fire was committed, so the next one is
in flight), and once between a transaction's commit and its RocksDB write: every slot
from the first to the last still starts exactly one instance, and none twice."""

from __future__ import annotations

import time
from collections import Counter

import pytest

import replayflow as rf
from replayflow.client import Client
from replayflow.core.messages import Completion, WorkflowStarted
from replayflow.core.schedule_messages import ScheduleFired
from replayflow.core.schedule_state import SCHEDULE_PREFIX
from replayflow.settings import Settings
from replayflow.topics import Topics
from tests.chaos.conftest import Cluster
from tests.chaos.workloads import CRASH_STATUS, TopicTail, read_topic, wait_until

pytestmark = pytest.mark.kafka

SID = "every-second"
KILLS = 5


def test_kill_9_at_fire_times_gives_each_slot_exactly_one_instance(
    cluster: Cluster, settings: Settings
) -> None:
    topics = Topics(settings)
    cluster.orchestrator()
    cluster.worker()
    with Client(settings, watch_completions=False) as client:
        client.schedules.create(
            SID,
            "chaos-trivial",
            # allow_all and a wide catch-up window: slots that came due while no
            # orchestrator ran start after the restart, so no slot may be missing.
            rf.Schedule(every="1s", input=1, overlap="allow_all", catchup_window="10m"),
        )
    fired: list[ScheduleFired] = []
    with TopicTail(settings, topics.history) as tail:

        def next_fire() -> bool:
            cluster.check()
            new = [
                r.decoded() for r in tail.poll(0.05) if r.key == f"{SCHEDULE_PREFIX}{SID}".encode()
            ]
            found = [e for e in new if isinstance(e, ScheduleFired)]
            fired.extend(found)
            return bool(found)

        for kill in range(KILLS):
            wait_until(next_fire, 60, f"a fire before kill {kill + 1}", interval=0)
            victim = next(p for p in cluster.processes if p.name == "orchestrator" and p.alive())
            victim.kill()  # SIGKILL just after a fire committed: the next is in flight
            time.sleep(0.5 + 0.4 * kill)  # down across 0 to 2 slots
            cluster.orchestrator(wait=False)

        # And once between the commit of a batch and its RocksDB write.
        wait_until(next_fire, 60, "a fire before the crash after commit", interval=0)
        next(p for p in cluster.processes if p.name == "orchestrator" and p.alive()).kill()
        crashing = cluster.crashing_orchestrator(after_commits=2)
        wait_until(lambda: not crashing.alive(), 90, "the crash after the commit")
        crashing.ended_on_purpose = True
        assert crashing.popen.returncode == CRASH_STATUS, crashing.output()[-2000:]
        cluster.orchestrator(wait=False)

        stop_at = int(time.time() * 1000)

        def caught_up() -> bool:
            next_fire()
            return any(f.slot_ms >= stop_at for f in fired)

        wait_until(
            caught_up,
            90,
            "the schedule to catch up",
            interval=0,
        )
    with Client(settings, watch_completions=False) as client:
        client.schedules.pause(SID, note="test over")

    facts = [
        r.decoded()
        for r in read_topic(settings, topics.history)
        if r.key == f"{SCHEDULE_PREFIX}{SID}".encode()
    ]
    slots = [f.slot_ms for f in facts if isinstance(f, ScheduleFired)]
    assert len(slots) == len(set(slots)), "a slot fired twice"
    first, last = min(slots), max(slots)
    assert sorted(slots) == list(range(first, last + 1, 1000)), "a slot is missing"
    assert last >= stop_at
    runs = {f.instance_id for f in facts if isinstance(f, ScheduleFired)}

    def started() -> Counter[str]:
        return Counter(
            e.instance_id
            for r in read_topic(settings, topics.history)
            if isinstance(e := r.decoded(), WorkflowStarted) and e.schedule_id == SID
        )

    starts = wait_until(lambda: (s := started()) and set(s) >= runs and s, 60, "every start")
    assert set(starts) == runs and set(starts.values()) == {1}

    def completed() -> Counter[str]:
        return Counter(
            c.instance_id
            for r in read_topic(settings, topics.completions)
            if isinstance(c := r.decoded(), Completion) and c.instance_id in runs
        )

    done = wait_until(lambda: (c := completed()) and set(c) == runs and c, 120, "every run")
    assert set(done.values()) == {1}
    print(f"\n{len(slots)} slots, {KILLS} kills and one crash after commit: each slot once")
