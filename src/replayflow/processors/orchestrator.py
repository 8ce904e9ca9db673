"""The orchestrator: folds replayflow.commands exactly once.

One consumer group member and one transactional producer per process (KIP-447: the
consumed offsets go into the transaction with the consumer's group metadata, so a
zombie from an older generation is fenced). Each batch follows the five steps of
`_process_batch`; nothing else writes state.

The clients live in processors/connection.py. Every blocking call on them runs under a
deadline (kafka/watchdog.py). When a call hangs or the producer fails for good, the
batch in flight is dropped exactly as on an abort, both clients are replaced, and the
partitions are restored as on a fresh assignment (`_recover`): what was committed is
read back from the changelog, what was not is read again from the commands topic.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from replayflow import codec, telemetry
from replayflow.core.clip import MAX_ECHO, clip, clip_traceback
from replayflow.core.decide import Decider
from replayflow.core.definitions import Registry
from replayflow.core.entities import route
from replayflow.core.errors import ReplayflowError
from replayflow.core.replies import REQUEST_ID_HEADER
from replayflow.core.schedule_messages import CreateSchedule, DeleteSchedule
from replayflow.kafka import clients
from replayflow.kafka.config import group_name
from replayflow.kafka.outage import Outage
from replayflow.kafka.producing import Record as ProducedRecord
from replayflow.kafka.producing import deliver
from replayflow.kafka.reading import located
from replayflow.kafka.transactional import TransactionalProducer, fatal_error, is_fatal
from replayflow.kafka.watchdog import Hung
from replayflow.processors import fatal, served
from replayflow.processors.connection import Connection, Unrecoverable
from replayflow.processors.fold import PartitionFolder
from replayflow.processors.fold_records import Outcome, Record
from replayflow.processors.heartbeat import Heartbeat
from replayflow.processors.intake import ORIGIN_HEADER, Refused, accept
from replayflow.processors.restore import StaleStore, is_stale, restore_partition
from replayflow.settings import Settings
from replayflow.store.partition import PartitionStore
from replayflow.topics import Topics

__all__ = ["ORIGIN_HEADER", "Orchestrator", "OrchestratorStats", "Unrecoverable"]

log = logging.getLogger("replayflow.orchestrator")


def _request_id(message: Message) -> str | None:
    """The caller's request id (it waits for a Reply), if the command carries one."""
    for header in message.headers() or ():
        name, value = header[0], header[1]
        if name == REQUEST_ID_HEADER and value:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            return text[:200]
    return None


@dataclass
class OrchestratorStats:
    batches: int = 0
    commands: int = 0
    timers: int = 0
    dead_letters: int = 0
    aborts: int = 0
    recoveries: int = 0  # times both Kafka clients were replaced
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
        self._partition_count = 1
        self.connection = Connection(
            settings,
            self.instance_id,
            self.topics.commands,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            stop=self._stop,
            on_error=self._on_kafka_error,
        )
        self._declarer: Producer | None = None  # schedule declarations (declare)
        self._declare_lock = threading.Lock()
        self.telemetry = telemetry.for_orchestrator(group_name(settings, "orchestrator"))
        self._outage = Outage(settings.bootstrap, f"orchestrator {self.instance_id}", log)
        self._heartbeat = Heartbeat(f"orchestrator {self.instance_id}")
        self._fences = fatal.Fences()
        self._served = served.Publisher(settings, self.instance_id, registry)

    # -- lifecycle -------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def declare(self, commands: Sequence[CreateSchedule | DeleteSchedule]) -> None:
        """Send schedule declarations (the code's, a deployed document's) to the commands
        topic and wait for Kafka to take them. They are upserts and deletes, idempotent,
        so every orchestrator may send the same ones; safe from any thread."""
        if not commands:
            return
        records = [
            ProducedRecord(self.topics.commands, codec.encode(c), key=route(c).record_key)
            for c in commands
        ]
        with self._declare_lock:
            if self._declarer is None:
                self._declarer = clients.producer(self.settings)
            deliver(self._declarer, records)
        log.info("declared %d schedule(s)", len(commands))

    def run(self, ready: threading.Event | None = None) -> None:
        """Run until stop(). Raises Unrecoverable when the Kafka clients cannot be kept
        working (the process should exit non-zero and be started again); a fatal Kafka
        error that replacing cannot cure (another process with the same id) ends the
        process (processors/fatal.py)."""
        try:
            if not self.connection.open():
                return
            assert self.connection.producer is not None
            # Say what this process runs, so callers can refuse unknown starts at once.
            self._served.publish(self.connection.producer.producer, self._now())
            log.info("orchestrator %s started", self.instance_id)
            self.declare(self.decider.registry.schedule_declarations())
            while not self._stop.is_set():
                messages = self._next_batch()
                if messages is None:
                    continue  # the clients were replaced
                if ready is not None and self._folders:
                    ready.set()
                self._process_batch(messages)
                connection = self.connection
                if connection.consumer is not None:
                    self.telemetry.tick(connection.consumer)
                if connection.liveness is not None:
                    stalled = connection.liveness.stalled()
                    if stalled is not None:
                        self._recover(stalled)
                self._outage.check(self._probe)
                self._heartbeat.beat(partitions=len(self._folders), kafka_down=self._outage.down)
                if self.connection.producer is not None:
                    self._served.maybe_publish(self.connection.producer.producer, self._now())
        finally:
            self._close()

    def _next_batch(self) -> list[Message] | None:
        # Block briefly for the first command, then take what is already fetched: a
        # lone command is folded at once, a burst is folded in large batches.
        consumer = self.connection.consumer
        assert consumer is not None
        fenced = self._fences.take()
        if fenced is not None:
            self._recover(f"fenced: {fenced}")
            return None
        try:
            first = consumer.poll(0.05)
            if first is None:
                return []
            messages = [first, *consumer.consume(self.batch_size - 1, timeout=0)]
        except fatal.FatalKafkaError:
            raise
        except (KafkaException, ReplayflowError, TimeoutError) as exc:
            # Raised by a rebalance callback (a restore that failed) or the consumer.
            self._recover(f"the consumer failed: {type(exc).__name__}: {exc}")
            return None
        for message in messages:
            error = message.error()
            if error is not None:
                # The consumer hands its errors over as messages (a fatal one with the
                # code _FATAL, its own flag not always set): the same path as error_cb.
                self._on_kafka_error(error)
            if fatal_error(error):
                self._recover(f"fatal consumer error: {error}")
                return None
        return messages

    def _close(self) -> None:
        self._drop_partitions()
        self.connection.close()
        if self._declarer is not None:
            self._declarer.flush(10)
        self.telemetry.close()

    # -- the commit protocol -----------------------------------------------------------

    def _process_batch(self, messages: list[Message]) -> None:
        producer, consumer = self.connection.producer, self.connection.consumer
        assert producer is not None and consumer is not None
        now = self._now()
        offsets: dict[int, int] = {}
        # 1. decode each command; bad input goes to the dead-letter topic with the reason
        # 2. fold each through decide() on RocksDB state with the batch's pending writes
        for message in messages:
            error = message.error()
            if error is not None:
                log.warning("consumer: %s", clip(str(error)))
                continue
            _, partition, offset = located(message)
            folder = self._folders.get(partition)
            if folder is None:
                continue  # revoked while the batch was in hand: its new owner reads it
            offsets[partition] = offset + 1
            self._fold_message(folder, message, now)
        for folder in self._folders.values():
            self.stats.timers += folder.fire_due_timers(now)
        folders = [f for f in self._folders.values() if f.records or f.pending.changes]
        if not folders and not offsets:
            return
        # The changelog offsets this batch reached, filled by delivery reports. A dict of
        # the batch's own: a report from a replaced producer cannot reach a later batch.
        changelog_offsets: dict[int, int] = {}
        try:
            producer.begin()
            # 3. produce history, tasks, completions, commands, DLQ and changelog records
            for folder in folders:
                for record in folder.records:
                    self._produce(producer, record)
                for record in folder.changelog():
                    self._produce(producer, record, _changelog_delivered(changelog_offsets))
            # 4. send the consumed offsets to the transaction and commit it
            if offsets:
                producer.send_offsets(
                    [TopicPartition(self.topics.commands, p, o) for p, o in offsets.items()],
                    consumer.consumer_group_metadata(),
                )
            producer.commit()
        except Hung as exc:
            self._recover(str(exc))
            return
        except KafkaException as exc:
            self._abort(exc, producer, folders, messages)
            return
        # 5. only now write RocksDB: state, timers, queues and the changelog offset reached
        for folder in folders:
            folder.committed(changelog_offsets.get(folder.partition))
        self.stats.batches += 1
        self.stats.commands += sum(1 for m in messages if m.error() is None)

    def _fold_message(self, folder: PartitionFolder, message: Message, now: int) -> None:
        key, value = message.key(), message.value()
        source = (*located(message), key, value)
        request_id = _request_id(message)

        def refuse(command: str, reason: str, error_type: str) -> None:
            # A caller that waits is answered; other bad input goes to the DLQ.
            if request_id is not None:
                outcome = Outcome.refused(reason, error_type, error_type, None)
                folder.reply(key, request_id, command, outcome, now)
                return
            self.stats.dead_letters += 1
            folder.dead_letter(source, reason, error_type, now)

        try:
            command = accept(
                key, value, source[1], self._partition_count, message.headers() or None
            )
        except Refused as refused:
            refuse(refused.command, refused.reason, refused.error_type)
            return
        name = type(command).__name__
        try:
            folder.fold(command, now, source, request_id)
        except Exception as exc:  # a bug must not block the partition: park the input
            instance_id = getattr(command, "instance_id", None)
            log.error(
                "folding %s failed:\n%s",
                type(command).__name__,
                clip_traceback(exc),
                extra=telemetry.fields(
                    None if instance_id is None else clip(instance_id, MAX_ECHO)
                ),
            )
            refuse(name, f"the fold failed: {type(exc).__name__}: {exc}", "FoldError")

    def _produce(
        self,
        producer: TransactionalProducer,
        record: Record,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        topic = getattr(self.topics, record.topic)
        headers = self.telemetry.task_headers(record.topic, record.key)
        if record.topic == "commands":
            headers = [*(headers or []), ORIGIN_HEADER]
        extra: dict[str, Any] = {} if record.partition is None else {"partition": record.partition}
        give_up = time.monotonic() + producer.call_timeout + producer.grace
        while True:
            try:
                producer.producer.produce(
                    topic,
                    value=record.value,
                    key=record.key,
                    headers=headers,
                    on_delivery=on_delivery,
                    **extra,
                )
                return
            except BufferError:
                if time.monotonic() > give_up:  # nothing drains: the broker is away
                    raise Hung("produce: the producer's queue stayed full") from None
                producer.producer.poll(0.05)  # queue full: let deliveries drain

    def _abort(
        self,
        exc: KafkaException,
        producer: TransactionalProducer,
        folders: list[PartitionFolder],
        messages: list[Message],
    ) -> None:
        if is_fatal(exc) or producer.dead is not None:
            # A producer given up after retrying (kafka/transactional.py): its commit's
            # outcome may be unknown, so only its successor's init and the changelog can
            # tell what was committed.
            self._recover(f"the producer failed: {exc}")
            return
        log.warning("transaction failed, aborting and re-reading the batch: %s", clip(str(exc)))
        self.stats.aborts += 1
        try:
            producer.abort()
        except (Hung, KafkaException) as abort_exc:
            self._recover(f"the abort failed: {abort_exc}")
            return
        for folder in folders:
            folder.aborted()
        # Rewind to the first offset of the batch in each partition and read it again.
        first: dict[int, int] = {}
        for message in messages:
            if message.error() is None:
                _, partition, offset = located(message)
                first.setdefault(partition, offset)
        consumer = self.connection.consumer
        assert consumer is not None
        try:
            for partition, offset in first.items():
                if partition in self._folders:
                    consumer.seek(TopicPartition(self.topics.commands, partition, offset))
        except KafkaException as seek_exc:  # the batch must be read again: start afresh
            self._recover(f"rewinding after the abort failed: {seek_exc}")

    def _recover(self, reason: str) -> None:
        """Drop the batch in flight and every partition as on an abort and a revoke,
        then replace both clients; the new consumer's assignment restores the
        partitions from the changelog and re-reads what was not committed."""
        self.stats.recoveries += 1
        self._fences.take()  # a fence is cured by these new clients too
        self._drop_partitions()
        self.connection.replace(reason)

    def _drop_partitions(self) -> None:
        for partition, folder in self._folders.items():
            folder.aborted()
            folder.store.close()
            self.telemetry.revoked(partition)
        self._folders.clear()
        self.decider.forget_all()
        self.stats.assigned = []

    # -- rebalancing -----------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        topic = self.topics.commands
        self._partition_count = len(
            consumer.list_topics(topic, timeout=30).topics[topic].partitions
        )
        for tp in partitions:
            if tp.partition in self._folders:
                continue
            store, restored = self._restored_store(tp.partition)
            self.stats.restored_records += restored
            folder = PartitionFolder(store, self.decider, self.cache_size)
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
        except BaseException:
            store.close()  # the next assignment opens it again
            raise

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            folder = self._folders.pop(tp.partition, None)
            self.telemetry.revoked(tp.partition)
            if folder is not None:
                folder.aborted()
                folder.store.close()
        # Live coroutines may belong to revoked partitions; a miss rebuilds them safely.
        self.decider.forget_all()
        self.stats.assigned = sorted(self._folders)

    def _on_kafka_error(self, error: KafkaError) -> None:
        """Every error of the current clients (processors/connection.py). Another process
        with this one's id ends this process (processors/fatal.py: a second fence within a
        minute; the first may be the consumer's own rejoin after a broker outage, and new
        clients cure it): replacing the clients would only fence it back. Other fatal
        errors are cured by replacing the clients when the call that meets them fails; an
        unreachable cluster logs one "waiting for Kafka" line per interval."""
        if self._fences.repeated(error):
            fatal.on_error(error, f"orchestrator {self.instance_id}")
        self._outage.error(error)

    def _probe(self) -> None:
        consumer = self.connection.consumer
        if consumer is not None:
            consumer.list_topics(self.topics.commands, timeout=1)

    def _now(self) -> int:
        # The fold's time never goes backwards, even if the wall clock does.
        self._last_now = max(self._last_now, int(self._clock() * 1000))
        return self._last_now


def _changelog_delivered(
    offsets: dict[int, int],
) -> Callable[[KafkaError | None, Message], None]:
    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is None:
            _, partition, offset = located(message)
            if offset > offsets.get(partition, -1):
                offsets[partition] = offset

    return delivered
