"""A Kafka topic trigger: reads a source topic and turns each record into commands on
replayflow.commands (StartWorkflow, SendEvent), exactly once per record.

Per batch, in one Kafka transaction (replayflow.kafka.transactions, KIP-447):

1. poll a batch of source records (read_committed);
2. map each through the trigger's mapper; a record that cannot be mapped becomes a
   dead letter with the reason and its original bytes (bounded), and the partition
   keeps flowing;
3. produce the commands (keyed by instance id) and the dead letters;
4. send the consumed source offsets with the group metadata and commit.

A crash before 4 aborts the transaction: no command of the batch is visible to the
orchestrator (it reads read_committed) and the offsets were not committed, so the
batch is read again. So every record acts once, whatever kills the process. The
instance id comes from the record, so even a start written twice (the same record on
the topic twice) starts one instance.

Each trigger has its own consumer group (`replayflow.trigger.<name>`): several trigger
processes share a topic's partitions, and two triggers on one topic each see it all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import Message, TopicPartition

from replayflow import codec, telemetry
from replayflow.core.messages import Command, DeadLetter, SendEvent, StartWorkflow
from replayflow.kafka.producing import Record
from replayflow.kafka.reading import located
from replayflow.kafka.transactions import TransactionalLoop
from replayflow.processors.trigger_source import SourceRecord, TriggerSpec, Unmappable
from replayflow.settings import Settings
from replayflow.topics import Topics

log = logging.getLogger("replayflow.trigger")

#: Header on every record a trigger writes: the trigger's name.
TRIGGER_HEADER = "replayflow-trigger"
#: Header on the commands: where the record came from, "<topic>/<partition>/<offset>".
SOURCE_HEADER = "replayflow-source"
#: A dead letter keeps at most this much of the original value and key.
MAX_DEAD_LETTER_VALUE = 1024 * 1024
MAX_DEAD_LETTER_KEY = 16 * 1024


def group_role(name: str) -> str:
    """The consumer group role of trigger `name` (namespaced by group_name)."""
    return f"trigger.{name}"


@dataclass
class TriggerStats:
    records: int = 0  # committed: mapped, skipped or dead-lettered
    started: int = 0
    events: int = 0
    skipped: int = 0
    dead_letters: int = 0
    batches: int = 0
    aborts: int = 0


def source_record(message: Message) -> SourceRecord:
    topic, partition, offset = located(message)
    _, timestamp = message.timestamp()
    return SourceRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        key=message.key(),
        value=message.value(),
        # confluent_kafka hands headers over as a list of (name, bytes | None) pairs.
        headers=tuple(cast("list[tuple[str, bytes | None]]", message.headers() or [])),
        timestamp=max(0, timestamp),
    )


def _outcome(command: Command) -> str:
    if isinstance(command, StartWorkflow):
        return "started"
    return "events" if isinstance(command, SendEvent) else "other"


class TriggerProcessor:
    def __init__(
        self,
        settings: Settings,
        spec: TriggerSpec,
        *,
        member_id: str,
        batch_size: int = 2000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.spec = spec
        self.member_id = member_id
        self.batch_size = batch_size
        self.topic = settings.topic_name(spec.topic)
        topics = Topics(settings)
        self._commands = topics.commands
        self._dlq = topics.dlq
        self._clock = clock
        self._stop = threading.Event()
        self.assigned: set[int] = set()
        self.stats = TriggerStats()
        self.loop = TransactionalLoop(
            settings,
            group_role(spec.name),
            member_id,
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
        )
        self.telemetry = telemetry.for_trigger(self.loop.group, spec.name)
        self._origin = (TRIGGER_HEADER, spec.name.encode())

    def stop(self) -> None:
        self._stop.set()

    def run(self, ready: threading.Event | None = None) -> None:
        """Run until stop(). A fatal Kafka error (this member was fenced) is raised."""
        self.loop.start()
        log.info("trigger %s started: %s", self.spec.name, self.spec.description)
        try:
            while not self._stop.is_set():
                messages = self.loop.next_batch(self.batch_size)
                if ready is not None and self.assigned:
                    ready.set()
                if messages:
                    self.process(messages)
                self.telemetry.tick(self.loop.consumer)
        finally:
            self.loop.close()
            self.telemetry.close()

    def process(self, messages: list[Message]) -> bool:
        """Map, produce and commit one batch (the steps of the module docstring). True
        when it committed; False when it was aborted (the batch is read again)."""
        now = int(self._clock() * 1000)
        out: list[Record] = []
        counts: Counter[str] = Counter()
        for message in messages:
            record = source_record(message)
            try:
                commands = self.spec.mapper(record)
            except Unmappable as exc:
                out.append(self._dead_letter(record, exc.reason, exc.error_type, now))
                counts["dead_letters"] += 1
                continue
            except Exception as exc:  # a bug in a mapper must not block the partition
                log.exception("trigger %s: mapping a record failed", self.spec.name)
                reason = f"the mapping failed: {type(exc).__name__}: {exc}"
                out.append(self._dead_letter(record, reason, "MappingError", now))
                counts["dead_letters"] += 1
                continue
            if not commands:
                counts["skipped"] += 1
            for command in commands:
                out.append(self._command(command, record))
                counts[_outcome(command)] += 1

        def write(produce: Callable[[Record], None]) -> None:
            for item in out:
                produce(item)

        if not self.loop.commit(write, self.loop.offsets_of(messages), messages):
            self.stats.aborts += 1
            return False
        stats = self.stats
        stats.batches += 1
        stats.records += len(messages)
        stats.started += counts["started"]
        stats.events += counts["events"]
        stats.skipped += counts["skipped"]
        stats.dead_letters += counts["dead_letters"]
        for outcome in ("started", "events", "skipped", "dead_letters"):
            self.telemetry.handled(outcome, counts[outcome])
        return True

    def _command(self, command: Command, record: SourceRecord) -> Record:
        instance_id: str = command.instance_id  # every command a mapper makes has one
        where = f"{record.topic}/{record.partition}/{record.offset}".encode()
        return Record(
            self._commands,
            codec.encode(command),
            key=instance_id.encode(),
            headers=[self._origin, (SOURCE_HEADER, where)],
        )

    def _dead_letter(self, record: SourceRecord, reason: str, error_type: str, now: int) -> Record:
        log.warning(
            "trigger %s: dead letter from %s[%d]@%d: %s",
            self.spec.name,
            record.topic,
            record.partition,
            record.offset,
            reason,
        )
        value, key = record.value, record.key
        if value is not None and len(value) > MAX_DEAD_LETTER_VALUE:
            reason += f" (value cut to its first {MAX_DEAD_LETTER_VALUE} of {len(value)} bytes)"
            value = value[:MAX_DEAD_LETTER_VALUE]
        if key is not None and len(key) > MAX_DEAD_LETTER_KEY:
            reason += f" (key cut to its first {MAX_DEAD_LETTER_KEY} of {len(key)} bytes)"
            key = key[:MAX_DEAD_LETTER_KEY]
        letter = DeadLetter(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            value=value,
            reason=reason,
            error_type=error_type,
            at=now,
        )
        # The original headers ride along (a binary-mode CloudEvent is half in them).
        return Record(
            self._dlq, codec.encode(letter), key=key, headers=[*record.headers, self._origin]
        )

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.assigned |= {tp.partition for tp in partitions}
        log.info("trigger %s: partitions %s assigned", self.spec.name, sorted(self.assigned))

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self.assigned -= {tp.partition for tp in partitions}
