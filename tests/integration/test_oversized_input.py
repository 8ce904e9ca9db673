"""No input may stop a partition (issue 10, item 2): a StartWorkflow with a 3 MB
instance id, and records at and above every size limit (instance id, payload, the
fold's record limit, the topic's max.message.bytes; compressible and not), are fed to
one partition; good commands after them on the same partition must still complete."""

from __future__ import annotations

from replayflow.client import Client
from replayflow.kafka.partition import murmur2_partition
from replayflow.settings import Settings
from replayflow.topics import Topics
from tests.chaos.conftest import cluster
from tests.chaos.fuzz import check_dead_letters, feed_bad_input
from tests.chaos.harness import Cluster
from tests.chaos.workloads import read_topic, wait_until

__all__ = ["cluster"]  # the chaos tests' fixture: processes killed at teardown


def test_records_at_and_above_every_size_limit_do_not_wedge_the_partition(
    cluster: Cluster, settings: Settings
) -> None:
    cluster.orchestrator()
    cluster.worker()
    partitions = settings.partitions or 1
    sent = feed_bad_input(settings, malformed_kinds=False, only=[0])
    refused = [s.kind for s in sent if s.offset < 0]
    assert refused == ["garbage-over-topic-limit-random"], refused

    after = [f"after-{n}" for n in range(200)]
    after = [i for i in after if murmur2_partition(i.encode(), partitions) == 0][:5]
    with Client(settings) as client:
        client.start_many([("chaos-trivial", n, i) for n, i in enumerate(after)])
        # Five trivial workflows take a second; behind a wedged record they never end.
        for n, instance_id in enumerate(after):
            assert client.result(instance_id, timeout=30) == n + 3, instance_id
    dead = wait_until(
        lambda: read_topic(settings, Topics(settings).dlq) or None, 30, "dead letters"
    )
    report = check_dead_letters(settings, sent, dead)
    assert report["problems"] == [], report
