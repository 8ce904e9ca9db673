"""The orchestrator: folds replayflow.commands exactly once.

One consumer group member and one transactional producer per process (KIP-447: the
consumed offsets go into the transaction with the consumer's group metadata, so a
zombie from an older generation is fenced). Each batch follows the five steps of
`_process_batch`; nothing else writes state. Which commands a batch takes, and in what
order, is processors/cadence.py's: step results ahead of new starts, starts admitted
at the pace the engine keeps up with.

The loop never waits on a clock while there is work: it blocks in the consumer only
when nothing is queued, and a batch commits as soon as it is folded (a transaction
costs a few round trips, see docs/performance.md).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from replayflow import codec, telemetry
from replayflow.core.decide import Decider
from replayflow.core.definitions import Registry
from replayflow.core.messages import Command, FireTimer
from replayflow.kafka import clients
from replayflow.kafka.config import group_name
from replayflow.kafka.reading import located
from replayflow.processors import collector
from replayflow.processors.admission import LimiterShards
from replayflow.processors.cadence import ORIGIN_HEADER, Intake, StartBudget, waited_ms
from replayflow.processors.fold import PartitionFolder, Record
from replayflow.processors.restore import StaleStore, is_stale, restore_partition
from replayflow.processors.routing import Router
from replayflow.settings import Settings
from replayflow.store.partition import PartitionStore
from replayflow.topics import Topics

log = logging.getLogger("replayflow.orchestrator")

#: Seconds the loop blocks for a command when nothing is queued; due timers fire at
#: least this often.
POLL_WAIT = 0.05


@dataclass
class OrchestratorStats:
    batches: int = 0
    commands: int = 0
    timers: int = 0
    dead_letters: int = 0
    aborts: int = 0
    restored_records: int = 0
    assigned: list[int] = field(default_factory=list)


class Orchestrator:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        instance_id: str | None = None,
        data_dir: Path | None = None,
        batch_size: int = 2000,
        cache_size: int = 10_000,
        concurrency: dict[str, int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings)
        self.instance_id = instance_id or f"orchestrator-{socket.gethostname()}-{os.getpid()}"
        base = data_dir or Path(settings.data_dir)
        self.data_dir = base / (settings.namespace or "default") / self.instance_id
        self.decider = Decider(registry, cache_size=cache_size, concurrency=concurrency)
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.stats = OrchestratorStats()
        self._clock = clock
        self._last_now = 0
        self._folders: dict[int, PartitionFolder] = {}
        self._stop = threading.Event()
        self._changelog_offsets: dict[int, int] = {}
        self._consumer: Consumer | None = None
        self._partition_count = 1
        self._producer: Producer | None = None
        self.telemetry = telemetry.for_orchestrator(group_name(settings, "orchestrator"))
        self._idle = collector.IdleCollector()
        self._intake = Intake(batch_size)
        self._budget = StartBudget(high=batch_size)
        self._positions: dict[int, int] = {}  # offsets committed, per partition
        self._router = Router()
        self._topic_names = {name: spec.name for name, spec in self.topics.specs.items()}

    # -- lifecycle -------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def run(self, ready: threading.Event | None = None) -> None:
        """Run until stop(). Fatal Kafka errors (fencing) end the loop with an error."""
        self._producer = clients.transactional_producer(
            self.settings, group_name(self.settings, self.instance_id)
        )
        self._consumer = clients.consumer(
            self.settings,
            "orchestrator",
            **{
                "group.instance.id": self.instance_id,
                "session.timeout.ms": 10_000,
                "max.poll.interval.ms": 120_000,
            },
        )
        self._consumer.subscribe(
            [self.topics.commands],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        log.info("orchestrator %s started", self.instance_id)
        collector.settle()
        try:
            while not self._stop.is_set():
                messages = self._next_batch()
                if ready is not None and self._folders:
                    ready.set()
                self._process_batch(messages)
                self.telemetry.tick(self._consumer)
        finally:
            self._close()

    def _next_batch(self) -> list[Message]:
        """The commands of the next batch (cadence.py): read what is fetched, blocking
        briefly for the first only when nothing is queued."""
        assert self._consumer is not None
        intake = self._intake
        consumer = self._consumer
        if intake.wants_more() and not intake.has_work():
            first = consumer.poll(POLL_WAIT)
            if first is None:
                self._idle.idle()
            else:
                self._file([first])
        # Read everything already fetched: a result behind a run of starts in its
        # partition is found only by reading past them.
        while intake.wants_more():
            fresh = consumer.consume(self.batch_size, timeout=0)
            self._file(fresh)
            if len(fresh) < self.batch_size:
                break
        return intake.take(self._budget.per_batch(self._now(), intake.ready()))

    def _file(self, messages: list[Message]) -> None:
        for bad in self._intake.add(messages):
            error = bad.error()
            if error is not None:
                self._on_consumer_error(error)

    def _close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()  # revokes: the folders close through _on_revoke
        for folder in self._folders.values():
            folder.store.close()
        self._folders.clear()
        if self._producer is not None:
            self._producer.flush(10)
        self.telemetry.close()

    # -- the commit protocol -----------------------------------------------------------

    def _process_batch(self, messages: list[Message]) -> None:
        assert self._producer is not None and self._consumer is not None
        now = self._now()
        began = time.process_time()
        # 1. decode each command; bad input goes to the dead-letter topic with the reason
        # 2. fold each through decide() on RocksDB state with the batch's pending writes
        for message in messages:
            folder = self._folders.get(message.partition())  # type: ignore[arg-type]
            if folder is None:
                continue  # revoked while the batch was in hand: its new owner reads it
            waited = waited_ms(message)
            if waited is not None:
                self._budget.observe(waited)
            self._fold_message(folder, message, now)
        self._budget.folded(len(messages), time.process_time() - began)
        for folder in self._folders.values():
            self.stats.timers += folder.fire_due_timers(now)
        folders = [f for f in self._folders.values() if f.staged()]
        offsets = {
            p: o
            for p, o in self._intake.positions().items()
            if p in self._folders and self._positions.get(p) != o
        }
        if not folders and not offsets:
            return
        try:
            self._producer.begin_transaction()
            # 3. produce history, tasks, completions, commands, DLQ and changelog records
            self._changelog_offsets = {}
            for folder in folders:
                for record in folder.records:
                    self._produce(record)
                self._produce_changelog(folder)
            # 4. send the consumed offsets to the transaction and commit it
            if offsets:
                self._producer.send_offsets_to_transaction(
                    [TopicPartition(self.topics.commands, p, o) for p, o in offsets.items()],
                    self._consumer.consumer_group_metadata(),
                    30,
                )
            self._commit_transaction()
        except KafkaException as exc:
            self._abort(exc, folders)
            return
        self._positions.update(offsets)
        # 5. only now write RocksDB: state, timers, queues and the changelog offset reached
        for folder in folders:
            folder.committed(self._changelog_offsets.get(folder.partition))
        self.stats.batches += 1
        self.stats.commands += len(messages)

    def _commit_transaction(self, attempts: int = 5) -> None:
        """Commit; a retriable error leaves the outcome unknown, so the commit is tried
        again (aborting then could abort a transaction that in fact committed)."""
        assert self._producer is not None
        for attempt in range(1, attempts + 1):
            try:
                self._producer.commit_transaction(60)
                return
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if (
                    attempt == attempts
                    or not isinstance(error, KafkaError)
                    or not error.retriable()
                ):
                    raise
                log.warning("commit failed (%s), trying again", error)

    def _fold_message(self, folder: PartitionFolder, message: Message, now: int) -> None:
        key, value = message.key(), message.value()
        source = (*located(message), key, value)
        try:
            command = codec.decode(value or b"")
        except codec.CodecError as exc:
            self.stats.dead_letters += 1
            folder.dead_letter(source, f"undecodable command: {exc.reason}", "CodecError", now)
            return
        if not isinstance(command, Command) or isinstance(command, FireTimer):
            # FireTimer is made by the orchestrator itself; from outside it would let
            # anyone end a sleep early.
            self.stats.dead_letters += 1
            folder.dead_letter(
                source,
                f"{type(command).__name__} is not a command accepted on this topic",
                "NotACommand",
                now,
            )
            return
        misrouted = self._misrouted(command, message)
        if misrouted is not None:
            self.stats.dead_letters += 1
            reason, error_type = misrouted
            folder.dead_letter(source, reason, error_type, now)
            return
        try:
            folder.fold(command, now, source)
        except Exception as exc:  # a bug must not block the partition: park the input
            log.exception(
                "folding %s failed",
                type(command).__name__,
                extra=telemetry.fields(getattr(command, "instance_id", None)),
            )
            self.stats.dead_letters += 1
            folder.dead_letter(
                source, f"the fold failed: {type(exc).__name__}: {exc}", "FoldError", now
            )

    def _misrouted(self, command: Command, message: Message) -> tuple[str, str] | None:
        """Why a command must not be folded where it arrived, or None (routing.py)."""
        return self._router.misrouted(command, message, self._partition_count)

    def _produce(
        self,
        record: Record,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        assert self._producer is not None
        topic = self._topic_names[record.topic]
        headers = (
            self.telemetry.task_headers(record.topic, record.key)
            if self.telemetry.enabled
            else None
        )
        if record.topic == "commands":
            headers = [*(headers or []), ORIGIN_HEADER]
        while True:
            try:
                if record.partition is None:
                    self._producer.produce(
                        topic,
                        value=record.value,
                        key=record.key,
                        headers=headers,
                        on_delivery=on_delivery,
                    )
                else:
                    self._producer.produce(
                        topic,
                        value=record.value,
                        key=record.key,
                        partition=record.partition,
                        headers=headers,
                        on_delivery=on_delivery,
                    )
                return
            except BufferError:
                self._producer.poll(0.05)  # queue full: let deliveries drain

    def _produce_changelog(self, folder: PartitionFolder) -> None:
        """The batch's state changes to the changelog, in the order they apply. Records
        of one partition are acknowledged in order, so only the last reports its offset
        (the one the store records as reached)."""
        assert self._producer is not None
        produce = self._producer.produce
        topic = self._topic_names["state"]
        partition = folder.partition
        changes = folder.changes()
        last = len(changes) - 1
        for i, (key, value) in enumerate(changes.items()):
            callback = self._changelog_delivered if i == last else None
            while True:
                try:
                    produce(topic, value, key, partition=partition, on_delivery=callback)
                    break
                except BufferError:
                    self._producer.poll(0.05)

    def _changelog_delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            _, partition, offset = located(message)
            if offset > self._changelog_offsets.get(partition, -1):
                self._changelog_offsets[partition] = offset

    def _abort(self, exc: KafkaException, folders: list[PartitionFolder]) -> None:
        assert self._producer is not None and self._consumer is not None
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.fatal():
            log.error("fatal producer error, stopping: %s", error)
            raise exc
        log.warning(
            "transaction failed, aborting and re-reading from the committed offsets: %s", exc
        )
        self.stats.aborts += 1
        try:
            self._producer.abort_transaction(30)
        except KafkaException as abort_exc:
            log.error("abort failed, stopping: %s", abort_exc)
            raise
        for folder in folders:
            folder.aborted()
        # Everything read since the last commit is read again, held starts included;
        # results folded ahead of them fold again as no-ops (cadence.py).
        self._intake.drop()
        topic = self.topics.commands
        assigned = [TopicPartition(topic, p) for p in self._folders]
        for tp in self._consumer.committed(assigned, timeout=30):
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self._consumer.seek(TopicPartition(topic, tp.partition, offset))
        self._positions.clear()

    # -- rebalancing -----------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        topic = self.topics.commands
        self._partition_count = len(
            consumer.list_topics(topic, timeout=30).topics[topic].partitions
        )
        self.decider.admission = LimiterShards(self._partition_count)
        for tp in partitions:
            if tp.partition in self._folders:
                continue
            store, restored = self._restored_store(tp.partition)
            self.stats.restored_records += restored
            folder = PartitionFolder(
                store, self.decider, self.cache_size, partitions=self._partition_count
            )
            folder.observer = self.telemetry.partition(tp.partition, folder.status_counts)
            self._folders[tp.partition] = folder
            log.info(
                "partition %d assigned (%d changelog records restored)", tp.partition, restored
            )
        self.stats.assigned = sorted(self._folders)

    def _restored_store(self, partition: int) -> tuple[PartitionStore, int]:
        """The partition's store, brought up to date from the changelog; rebuilt from
        the whole changelog when the local copy is too old to trust its tail."""
        path = self.data_dir / f"p{partition}"
        store = PartitionStore(path, partition)
        if is_stale(store, int(time.time() * 1000)):
            log.info("partition %d: local store is stale, rebuilding it", partition)
            store.destroy()
            store = PartitionStore(path, partition)
        try:
            return store, restore_partition(self.settings, self.topics.state, store)
        except StaleStore as exc:
            log.info("%s: rebuilding it", exc)
            store.destroy()
            store = PartitionStore(path, partition)
            return store, restore_partition(self.settings, self.topics.state, store)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._intake.drop(tp.partition for tp in partitions)
        for tp in partitions:
            self._positions.pop(tp.partition, None)
            folder = self._folders.pop(tp.partition, None)
            self.telemetry.revoked(tp.partition)
            if folder is not None:
                folder.aborted()
                folder.store.close()
        # Live coroutines may belong to revoked partitions; a miss rebuilds them safely.
        self.decider.forget_all()
        self.stats.assigned = sorted(self._folders)

    def _on_consumer_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        log.warning("consumer: %s", error)

    def _now(self) -> int:
        # The fold's time never goes backwards, even if the wall clock does.
        self._last_now = max(self._last_now, int(self._clock() * 1000))
        return self._last_now
