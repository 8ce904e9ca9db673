"""The partitions of the commands topic an orchestrator holds, each with its folder.

A partition assigned to the process is restored from its changelog partition into a
RocksDB store before anything of it is folded; one revoked, or dropped when the Kafka
clients are replaced, has its folder's unwritten batch forgotten and its store closed.
What the orchestrator learns on assignment lives here too: the commands topic's
partition count (the fold routes admission and children by it) and where a
transaction's tasks go (batch_records.TaskPlacement).

`assign` runs inside the consumer's rebalance callback, so it asks for partition counts
through a metadata client of its own, never through that consumer: confluent-kafka keeps
one call state per client and thread, a call on the consumer inside its own callback
clears the state of the consume call around it, and the next callback of that consume
call (a log line, an error) then aborts the process in C (`CallState_get: Assertion
'cs != NULL' failed`; tests/integration/test_rebalance_callbacks.py).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from replayflow.core.decide import Decider
from replayflow.kafka import clients
from replayflow.kafka.config import METADATA_TIMEOUT
from replayflow.processors.admission import admission_for
from replayflow.processors.batch_records import TaskPlacement
from replayflow.processors.fold import PartitionFolder
from replayflow.processors.restore import restored_store
from replayflow.settings import Settings
from replayflow.telemetry.orchestrator import OrchestratorTelemetry
from replayflow.topics import Topics

log = logging.getLogger("replayflow.orchestrator")


class HeldPartitions:
    """The folders of the partitions held, by partition number."""

    def __init__(
        self,
        settings: Settings,
        topics: Topics,
        data_dir: Path,
        decider: Decider,
        cache_size: int,
        telemetry: OrchestratorTelemetry,
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.data_dir = data_dir
        self.decider = decider
        self.cache_size = cache_size
        self.telemetry = telemetry
        #: Never replaced, only changed: callers may keep a reference to it.
        self.folders: dict[int, PartitionFolder] = {}
        self.partition_count = 1
        self._metadata: AdminClient | None = None  # built on the first assignment
        # Set on assignment, when the tasks topic's partitions are known; orchestrators
        # begin their rotations apart.
        self.tasks = TaskPlacement(1)

    def numbers(self) -> list[int]:
        return sorted(self.folders)

    def assign(self, partitions: Iterable[TopicPartition]) -> int:
        """Restore each newly assigned partition's store from the changelog; returns
        how many changelog records were read."""
        total = 0
        self.partition_count = self._partitions_of(self.topics.commands)
        self.decider.admission = admission_for(self.settings.admission, self.partition_count)
        task_partitions = self._partitions_of(self.topics.tasks)
        if task_partitions != self.tasks.partitions:
            self.tasks = TaskPlacement(task_partitions, first=random.randrange(task_partitions))
        for tp in partitions:
            if tp.partition in self.folders:
                continue
            store, restored = restored_store(
                self.settings, self.topics.state, self.data_dir / f"p{tp.partition}", tp.partition
            )
            total += restored
            folder = PartitionFolder(
                store, self.decider, self.cache_size, partitions=self.partition_count
            )
            folder.observer = self.telemetry.partition(tp.partition, folder.status_counts)
            self.folders[tp.partition] = folder
            log.info(
                "partition %d assigned (%d changelog records restored)", tp.partition, restored
            )
        return total

    def revoke(self, numbers: Iterable[int]) -> None:
        """Close the revoked partitions' stores; their unwritten batches are forgotten."""
        for number in numbers:
            folder = self.folders.pop(number, None)
            self.telemetry.revoked(number)
            if folder is not None:
                folder.aborted()
                folder.store.close()
        # Live coroutines may belong to revoked partitions; a miss rebuilds them safely.
        self.decider.forget_all()

    def drop_all(self) -> None:
        """Let go of every partition (the clients are being replaced): a new assignment
        restores them from the changelog."""
        self.revoke(list(self.folders))

    def _partitions_of(self, topic: str) -> int:
        """How many partitions `topic` has, asked through this object's own metadata
        client (see the module's text for why not the consumer)."""
        if self._metadata is None:
            self._metadata = clients.admin(self.settings)
        metadata = self._metadata.list_topics(topic, timeout=METADATA_TIMEOUT)
        self._metadata.poll(0)  # serves its log lines, which would pile up unserved
        return len(metadata.topics[topic].partitions)
