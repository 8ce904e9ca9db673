"""ctx.patched on the Kafka engine: instances started by the old code, one before the
patch point and one past it, continue under the patched code next to a new one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.messages import EventAwaited, PatchMarked
from replayflow.core.replay import replay
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics
from tests.replay_code import fraud_v1, fraud_v2

pytestmark = pytest.mark.kafka


def awaited(client: Client, instance_id: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while sum(isinstance(e, EventAwaited) for e in client.history(instance_id)) < count:
        assert time.monotonic() < deadline, f"{instance_id} did not reach wait #{count}"
        time.sleep(0.2)


def test_old_and_new_instances_under_patched_code(settings: Settings, tmp_path: Path) -> None:
    apply_topics(settings.bootstrap, load_topics(settings))
    config = Settings(
        bootstrap=settings.bootstrap,
        namespace=settings.namespace,
        partitions=settings.partitions,
        data_dir=tmp_path,
    )
    with Client(config) as client:
        with LocalRuntime(config, Registry.of(fraud_v1), orchestrator_id="o"):
            client.start("fr-order", "a", id="before")  # waits for "pay": before the patch
            client.start("fr-order", "b", id="past")
            client.send_event("past", "pay")  # charged by the old code: past the patch
            awaited(client, "before", 1)
            awaited(client, "past", 2)
        with LocalRuntime(config, Registry.of(fraud_v2), orchestrator_id="o"):  # the deploy
            client.start("fr-order", "c", id="new")
            for instance_id in ("before", "new", "past"):
                if instance_id != "past":
                    client.send_event(instance_id, "pay")
                    awaited(client, instance_id, 2)
                client.send_event(instance_id, "ship")
            results = {i: client.result(i, timeout=60) for i in ("before", "past", "new")}
        assert results == {
            "before": ["checked a", "charged a"],
            "past": ["charged b"],
            "new": ["checked c", "charged c"],
        }
        patched = Registry.of(fraud_v2)
        for instance_id in ("before", "past", "new"):
            history = client.history(instance_id)
            marked = [e.patch for e in history if isinstance(e, PatchMarked)]
            assert marked == ([] if instance_id == "past" else ["new-fraud-check"])
            report = replay(history, patched)
            assert report.identical, report.difference
