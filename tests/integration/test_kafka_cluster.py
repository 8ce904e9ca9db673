"""`kafka.sh` with BROKERS=3 (what `make up BROKERS=3` runs): three KRaft nodes of this
test's own, on free ports, data in a tmp folder, stopped by pid at the end. `topics
apply` gives every topic replication 3 and min.insync.replicas 2, and acks=all writes
and read_committed reads go on with one node killed (kill -9)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from replayflow.kafka.config import producer_config
from replayflow.settings import Settings
from replayflow.topics import Topics, load_topics
from tests.chaos.brokers import REPO, LocalKafka
from tests.chaos.workloads import read_topic


def test_three_node_cluster_keeps_writing_with_one_node_killed(tmp_path: Path) -> None:
    with LocalKafka(tmp_path / "kafka", brokers=3) as kafka:
        settings = Settings(
            bootstrap=kafka.bootstrap, namespace="c" + uuid.uuid4().hex[:8], partitions=3
        )
        applied = subprocess.run(
            [sys.executable, "-m", "replayflow.cli", "topics", "apply"],
            cwd=REPO,
            env={
                **kafka.env,
                "KAFKA_BOOTSTRAP": kafka.address(1),  # as `make up`: one node is enough
                "REPLAYFLOW_NAMESPACE": settings.namespace,
                "REPLAYFLOW_PARTITIONS": "3",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr

        admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
        specs = load_topics(settings).values()
        topics = admin.list_topics(timeout=10).topics
        resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs]
        configs = {r.name: f.result() for r, f in admin.describe_configs(resources).items()}
        for spec in specs:
            partitions = topics[spec.name].partitions.values()
            assert {len(p.replicas) for p in partitions} == {3}, spec.name
            assert configs[spec.name]["min.insync.replicas"].value == "2", spec.name

        # Applying again on the cluster finds nothing to report.
        again = subprocess.run(
            [sys.executable, "-m", "replayflow.cli", "topics", "apply"],
            cwd=REPO,
            env={
                **kafka.env,
                "KAFKA_BOOTSTRAP": kafka.bootstrap,
                "REPLAYFLOW_NAMESPACE": settings.namespace,
                "REPLAYFLOW_PARTITIONS": "3",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert again.returncode == 0 and "mismatched" not in again.stdout.replace(
            "0 mismatched", ""
        ), again.stdout + again.stderr

        victim = kafka.kill(2)
        assert victim > 0
        topic = Topics(settings).commands
        producer = Producer(producer_config(settings, **{"acks": "all"}))
        failures: list[str] = []

        def delivered(err: object, _msg: object) -> None:
            if err is not None:
                failures.append(str(err))

        for i in range(60):
            producer.produce(
                topic, key=f"k{i}".encode(), value=f"v{i}".encode(), on_delivery=delivered
            )
        assert producer.flush(30) == 0, "not every record was delivered in 30 s"
        assert failures == []
        values = sorted(r.value or b"" for r in read_topic(settings, topic))
        assert values == sorted(f"v{i}".encode() for i in range(60))

        kafka.up()  # restarts the killed node only
        assert "node 2 running" in kafka.kafka_sh("status")
