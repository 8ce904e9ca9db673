"""A folded batch's records into its transaction (history, tasks, completions,
commands, dead letters, replies, then each partition's state changes to the
changelog), the partitions its tasks go to, and the batch while its transaction
commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message

from replayflow.kafka.reading import located
from replayflow.kafka.transactional import TransactionalProducer
from replayflow.kafka.watchdog import Pending
from replayflow.processors.fold import PartitionFolder
from replayflow.processors.fold_records import Record
from replayflow.processors.intake import ORIGIN_HEADER
from replayflow.telemetry.orchestrator import OrchestratorTelemetry


@dataclass
class InFlight:
    """A batch produced whose transaction commits on the producer's helper thread."""

    commit: Pending
    folders: list[PartitionFolder]
    offsets: dict[int, int]  # consumed offsets the transaction commits
    reached: dict[int, int]  # changelog offsets, filled by delivery reports
    commands: int
    taken: float  # when the batch was taken (time.time())
    began: float  # when its commit began

    @property
    def partitions(self) -> set[int]:
        return {f.partition for f in self.folders} | set(self.offsets)


class TaskPlacement:
    """The partitions of the tasks topic a transaction's tasks go to: one partition for
    up to `per_partition` tasks, the next transaction's to the next partition.

    Every partition a transaction writes costs a log append and a commit marker, and the
    commit waits for both; a batch of commands from k partitions writes history, state
    and completions to k partitions each, and its tasks would make a fourth k. Tasks are
    the one output nobody looks up by its key's partition: a worker runs whatever its
    partitions hold and answers on the instance's own command partition (by key), and an
    instance's next task is decided only after its last result, so no order between an
    instance's tasks is lost. At 500 workflows/s on 12 partitions this took a fifth off
    the commit and the latency (docs/performance.md). A large batch still spreads over
    several partitions, `per_partition` tasks each, so the workers sharing the topic
    share it; the rotation spreads small batches over time."""

    def __init__(self, partitions: int, per_partition: int = 64, first: int = 0) -> None:
        if partitions < 1 or per_partition < 1:
            raise ValueError(
                f"need a partition and a task per partition: {partitions}, {per_partition}"
            )
        self.partitions = partitions
        self.per_partition = per_partition
        self._partition = first % partitions
        self._placed = 0  # tasks placed on the current partition in this transaction

    def begin(self) -> None:
        """A new transaction: its tasks go to the partition after the last one used."""
        if self._placed:
            self._partition = (self._partition + 1) % self.partitions
            self._placed = 0

    def place(self) -> int:
        """The partition of the transaction's next task."""
        if self._placed == self.per_partition:
            self._partition = (self._partition + 1) % self.partitions
            self._placed = 0
        self._placed += 1
        return self._partition


def produce_batch(
    producer: TransactionalProducer,
    folders: list[PartitionFolder],
    topic_names: dict[str, str],
    telemetry: OrchestratorTelemetry,
    tasks: TaskPlacement,
) -> dict[int, int]:
    """Queue the folders' records in the open transaction, tasks on the partitions
    `tasks` gives. Returns the changelog offsets the batch reaches, per partition,
    filled by delivery reports as the commit flushes (a dict of the batch's own: a
    report from a replaced producer reaches no later batch)."""
    reached: dict[int, int] = {}
    tasks.begin()
    for folder in folders:
        for record in folder.records:
            _produce(producer, record, topic_names, telemetry, tasks)
        _produce_changelog(producer, folder, topic_names["state"], reached)
    return reached


def _produce(
    producer: TransactionalProducer,
    record: Record,
    topic_names: dict[str, str],
    telemetry: OrchestratorTelemetry,
    tasks: TaskPlacement,
) -> None:
    headers = telemetry.task_headers(record.topic, record.key) if telemetry.enabled else None
    if record.topic == "commands":
        headers = [*(headers or []), ORIGIN_HEADER]
    topic, partition = topic_names[record.topic], record.partition
    if record.topic == "tasks":
        partition = tasks.place()
    if partition is None:  # (two calls, not a dict of keywords made for every record)
        producer.produce(topic, record.key, record.value, headers=headers)
    else:
        producer.produce(topic, record.key, record.value, headers=headers, partition=partition)


def _produce_changelog(
    producer: TransactionalProducer, folder: PartitionFolder, topic: str, reached: dict[int, int]
) -> None:
    """The batch's state changes to the changelog, in the order they apply. Records of
    one partition are acknowledged in order, so only the last reports its offset (the
    one the store records as reached)."""
    partition = folder.partition
    changes = folder.changes()
    last = len(changes) - 1
    delivered = _delivered(reached)
    for i, (key, value) in enumerate(changes.items()):
        on_delivery = delivered if i == last else None
        producer.produce(topic, key, value, partition=partition, on_delivery=on_delivery)


def _delivered(offsets: dict[int, int]) -> Callable[[KafkaError | None, Message], None]:
    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is None:
            _, partition, offset = located(message)
            if offset > offsets.get(partition, -1):
                offsets[partition] = offset

    return delivered
