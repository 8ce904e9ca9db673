"""A folded batch's records into its transaction (history, tasks, completions,
commands, dead letters, replies, then each partition's state changes to the
changelog), and the batch while its transaction commits."""

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


def produce_batch(
    producer: TransactionalProducer,
    folders: list[PartitionFolder],
    topic_names: dict[str, str],
    telemetry: OrchestratorTelemetry,
) -> dict[int, int]:
    """Queue the folders' records in the open transaction. Returns the changelog offsets
    the batch reaches, per partition, filled by delivery reports as the commit flushes
    (a dict of the batch's own: a report from a replaced producer reaches no later
    batch)."""
    reached: dict[int, int] = {}
    for folder in folders:
        for record in folder.records:
            _produce(producer, record, topic_names, telemetry)
        _produce_changelog(producer, folder, topic_names["state"], reached)
    return reached


def _produce(
    producer: TransactionalProducer,
    record: Record,
    topic_names: dict[str, str],
    telemetry: OrchestratorTelemetry,
) -> None:
    headers = telemetry.task_headers(record.topic, record.key) if telemetry.enabled else None
    if record.topic == "commands":
        headers = [*(headers or []), ORIGIN_HEADER]
    topic, partition = topic_names[record.topic], record.partition
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
