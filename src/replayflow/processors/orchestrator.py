"""The orchestrator: folds replayflow.commands exactly once.

One consumer group member and one transactional producer per process (KIP-447: the
consumed offsets go into the transaction with the consumer's group metadata, so a
zombie from an older generation is fenced). Each batch follows the four steps of
`_process_batch`; nothing else writes state. Which commands a batch takes, and in what
order, is processors/cadence.py's: step results ahead of new starts, starts admitted
at the pace the engine keeps up with. The loop blocks in the consumer only when
nothing is queued, and a batch commits as soon as it is folded (a transaction costs a
few round trips, see docs/performance.md). The commit runs on the producer's helper
thread: meanwhile the next batch, of the partitions the committing one did not touch,
folds, and its transaction begins once the commit has returned (while many step
results wait, a batch takes half the partitions, so that the other half can fold
meanwhile).

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

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from replayflow import telemetry
from replayflow.core.clip import clip
from replayflow.core.decide import Decider
from replayflow.core.definitions import Registry
from replayflow.core.errors import ReplayflowError
from replayflow.core.schedule_messages import CreateSchedule, DeleteSchedule
from replayflow.kafka.config import group_name
from replayflow.kafka.open_transactions import HangingWatch
from replayflow.kafka.outage import Outage
from replayflow.kafka.transactional import TransactionalProducer, fatal_error, is_fatal
from replayflow.kafka.watchdog import Hung, Pending
from replayflow.processors import collector, fatal, served
from replayflow.processors.batch_records import InFlight, produce_batch
from replayflow.processors.cadence import Intake, StartBudget, waited_ms
from replayflow.processors.connection import Connection, Unrecoverable
from replayflow.processors.fatal import FENCE_AFTER_OUTAGE
from replayflow.processors.fold import PartitionFolder
from replayflow.processors.fold_input import fold_message
from replayflow.processors.heartbeat import Heartbeat
from replayflow.processors.held_partitions import HeldPartitions
from replayflow.processors.intake import ORIGIN_HEADER
from replayflow.processors.schedule_declarer import ScheduleDeclarer
from replayflow.settings import Settings
from replayflow.topics import Topics

__all__ = ["ORIGIN_HEADER", "Orchestrator", "OrchestratorStats", "Unrecoverable"]

log = logging.getLogger("replayflow.orchestrator")

#: Seconds the loop blocks for a command when nothing is queued; due timers fire at
#: least this often.
POLL_WAIT = 0.05
#: Ready commands (step results) above which a batch takes half the partitions, so
#: that the other half folds while it commits (cadence.Intake.take).
SPLIT_AT = 200


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
        self._stop = threading.Event()
        self.connection = Connection(
            settings,
            self.instance_id,
            self.topics.commands,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            stop=self._stop,
            on_error=self._on_kafka_error,
        )
        self._declarer = ScheduleDeclarer(settings)
        # Transactions no producer will end, on the topics this process writes and its
        # group's offsets: logged with the command that ends them (a thread of its own).
        t = self.topics
        self.hanging = HangingWatch(
            settings.bootstrap,
            [t.commands, t.history, t.state, t.completions, t.tasks],
            [group_name(settings, "orchestrator")],
        )
        self.telemetry = telemetry.for_orchestrator(group_name(settings, "orchestrator"))
        self._outage = Outage(settings.bootstrap, f"orchestrator {self.instance_id}", log)
        self._heartbeat = Heartbeat(f"orchestrator {self.instance_id}")
        self._fences = fatal.Fences()
        self._served = served.Publisher(settings, self.instance_id, registry)
        self._idle = collector.IdleCollector()
        self._intake = Intake(batch_size)
        self._inflight: InFlight | None = None
        self._taken = 0.0
        self._budget = StartBudget(high=batch_size)
        self._topic_names = {name: spec.name for name, spec in self.topics.specs.items()}
        self._held = HeldPartitions(
            settings, self.topics, self.data_dir, self.decider, cache_size, self.telemetry
        )
        self._folders = self._held.folders  # the same dict, never replaced

    # -- lifecycle -------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def declare(self, commands: Sequence[CreateSchedule | DeleteSchedule]) -> None:
        """Send schedule declarations to the commands topic (schedule_declarer.py)."""
        self._declarer.declare(commands)

    def run(self, ready: threading.Event | None = None) -> None:
        """Run until stop(). Raises Unrecoverable when the Kafka clients cannot be kept
        working (the process should exit non-zero and be started again); a fatal Kafka
        error that replacing cannot cure (another process with the same id) ends the
        process (processors/fatal.py)."""
        try:
            if not self.connection.open():
                return
            self.hanging.start()
            # Say what this process runs, so callers can refuse unknown starts at once.
            self._publish_served()
            log.info("orchestrator %s started", self.instance_id)
            self.declare(self.decider.registry.schedule_declarations())
            collector.settle()
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
                self._publish_served()
        finally:
            self._close()

    def _publish_served(self) -> None:
        """Publish what this process runs when it changed (served.py), in a transaction
        of its own: a batch still committing on the producer's helper thread is finished
        first (a second transaction cannot begin meanwhile). Registries change rarely, so
        the pipeline pauses rarely. A failure is handled as a batch's; the record stays
        due and goes out at a later check."""
        producer = self.connection.producer
        record = self._served.due(self._now()) if producer is not None else None
        if producer is None or record is None:
            return
        if self._inflight is not None and self._finish_inflight() is None:
            return  # aborted or recovered
        try:
            self._served.publish(producer, record)
        except Hung as exc:
            self._recover(str(exc))
        except KafkaException as exc:
            self._abort(exc, producer, [])

    def _next_batch(self) -> list[Message] | None:
        """The commands of the next batch (cadence.py): read what is fetched, blocking
        briefly for the first only when nothing is queued. None: nothing to fold now
        (the batch in flight was finished instead), or the clients were replaced."""
        connection = self.connection
        consumer = connection.consumer
        assert consumer is not None
        intake = self._intake
        inflight = self._inflight
        if inflight is not None:
            # The consumer is left alone while a batch commits (no rebalance can come
            # in between): the next batch is what is read already, of other partitions,
            # and admits no new start (the start budget is the next batch's to spend).
            batch = intake.take(0, busy=inflight.partitions, split_at=SPLIT_AT)
            if batch:
                return batch
            self._finish_inflight()
            return None
        fenced = self._fences.take()
        if fenced is not None:
            self._recover(f"fenced: {fenced}")
            return None
        try:
            if intake.wants_more() and not intake.has_work():
                first = consumer.poll(POLL_WAIT)
                if first is None:
                    self._idle.idle()
                elif not self._file([first]):
                    return None
            if not intake.wants_more() and connection.liveness is not None:
                connection.liveness.busy()  # not reading: a still position says nothing
            # Read everything already fetched: a result behind a run of starts in its
            # partition is found only by reading past them.
            while intake.wants_more():
                fresh = consumer.consume(self.batch_size, timeout=0)
                if not self._file(fresh):
                    return None
                if len(fresh) < self.batch_size:
                    break
        except fatal.FatalKafkaError:
            raise
        except (KafkaException, ReplayflowError, TimeoutError) as exc:
            # Raised by a rebalance callback (a restore that failed) or the consumer.
            self._recover(f"the consumer failed: {type(exc).__name__}: {exc}")
            return None
        budget = self._budget.per_batch(self._now(), intake.ready(), intake.held)
        return intake.take(budget, split_at=SPLIT_AT)

    def _file(self, messages: list[Message]) -> bool:
        """Hand consumed records to the intake; False when a fatal consumer error made
        the clients be replaced."""
        for bad in self._intake.add(messages):
            error = bad.error()
            assert error is not None  # the intake hands back only records with an error
            log.warning("consumer: %s", clip(str(error)))
            # The consumer hands its errors over as messages (a fatal one with the
            # code _FATAL, its own flag not always set): the same path as error_cb.
            self._on_kafka_error(error)
            if fatal_error(error):
                self._recover(f"fatal consumer error: {error}")
                return False
        return True

    def _close(self) -> None:
        self.hanging.stop()
        if self._inflight is not None and self.connection.producer is not None:
            self._finish_inflight()
        self._drop_partitions()
        self.connection.close()
        self._declarer.close()
        self.telemetry.close()

    # -- the commit protocol -----------------------------------------------------------

    def _process_batch(self, messages: list[Message]) -> None:
        """Fold a batch and start its transaction's commit, which runs on the producer's
        helper thread while the next batch (of other partitions) folds. A batch taken
        while the previous one commits folds first, then waits for that commit."""
        producer, consumer = self.connection.producer, self.connection.consumer
        assert producer is not None and consumer is not None
        now = self._now()
        self._taken = time.time()
        begun: Pending | None = None
        offsets: dict[int, int] = {}
        if self._inflight is None:
            # 1. begin the transaction and send it the consumed offsets on the helper
            # thread while this one folds (which commands the batch folds is known).
            # Offsets first: while the previous transaction's commit markers are still
            # being written the coordinator answers CONCURRENT_TRANSACTIONS, and
            # librdkafka retries AddOffsetsToTxn after retry.backoff.ms (1 ms here) but
            # the AddPartitionsToTxn of a first record after a fixed 20 ms
            # (rdkafka_txnmgr.c). Sent first, the offsets wait the markers out and the
            # records' partitions join a transaction the coordinator is ready for
            # (docs/performance.md; `make bench-txn`).
            try:
                begun, offsets = self._begin(producer, consumer)
            except _Replaced:
                return
        busy = set() if self._inflight is None else self._inflight.partitions
        # 2. decode each command (bad input goes to the dead-letter topic with the
        # reason) and fold it through decide() on the store with the batch's pending
        # writes; offsets never pass a command read but not folded yet (cadence.py)
        began = time.process_time()
        for message in messages:
            folder = self._folders.get(message.partition())  # type: ignore[arg-type]
            if folder is None:
                continue  # revoked while the batch was in hand: its new owner reads it
            waited = waited_ms(message)
            if waited is not None:
                self._budget.observe(waited)
            if not fold_message(folder, message, now, self._held.partition_count):
                self.stats.dead_letters += 1
        self._budget.folded(len(messages), time.process_time() - began)
        for number, folder in self._folders.items():
            if number not in busy:
                self.stats.timers += folder.fire_due_timers(now)
        if self._inflight is not None:
            if not self._finish_inflight():
                return  # aborted or recovered: this batch is dropped and read again
            try:
                begun, offsets = self._begin(producer, consumer)
            except _Replaced:
                return
        folders = [f for f in self._folders.values() if f.staged()]
        if not folders and begun is None:
            return
        try:
            if begun is None:
                producer.begin()  # timers fired: a transaction with no offsets
            else:
                begun.wait()
            # 3. produce history, tasks, completions, commands, DLQ and changelog
            # records, and start the commit
            reached = produce_batch(
                producer, folders, self._topic_names, self.telemetry, self._held.tasks
            )
            self._inflight = InFlight(
                self._commit_transaction(producer),
                folders,
                offsets,
                reached,
                len(messages),
                self._taken,
                time.time(),
            )
        except Hung as exc:
            self._recover(str(exc))
        except KafkaException as exc:
            self._abort(exc, producer, folders)

    def _begin(
        self, producer: TransactionalProducer, consumer: Consumer
    ) -> tuple[Pending | None, dict[int, int]]:
        """Begin with the offsets to commit sent meanwhile: their Pending (None when
        there are none) and the offsets (_Replaced when the clients had to be replaced)."""
        offsets = {p: o for p, o in self._intake.to_commit().items() if p in self._folders}
        if not offsets:
            return None, offsets
        try:
            pending = producer.begin_with_offsets(
                [TopicPartition(self.topics.commands, p, o) for p, o in offsets.items()],
                consumer.consumer_group_metadata(),
            )
        except (Hung, KafkaException) as exc:  # no transaction to abort: new clients
            self._recover(f"beginning a transaction failed: {exc}")
            raise _Replaced from exc
        return pending, offsets

    def _commit_transaction(self, producer: TransactionalProducer) -> Pending:
        return producer.commit_started()

    def _finish_inflight(self) -> InFlight | None:
        """Wait for the batch in flight to commit; 4. only then write its partitions'
        state, timers, queues and changelog offsets to RocksDB. On a failure every
        batch folded since the last commit is dropped and read again. Returns the batch
        when it committed."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return None
        producer = self.connection.producer
        assert producer is not None
        try:
            inflight.commit.wait()
        except Hung as exc:
            self._recover(str(exc))
            return None
        except KafkaException as exc:
            self._abort(exc, producer, list(self._folders.values()))
            return None
        self._intake.committed(inflight.offsets)
        for folder in inflight.folders:
            folder.committed(inflight.reached.get(folder.partition))
        self.stats.batches += 1
        self.stats.commands += inflight.commands
        return inflight

    def _abort(
        self,
        exc: KafkaException,
        producer: TransactionalProducer,
        folders: list[PartitionFolder],
    ) -> None:
        if is_fatal(exc) or producer.dead is not None:
            # A producer given up after retrying (kafka/transactional.py): its commit's
            # outcome may be unknown, so only its successor's init and the changelog can
            # tell what was committed.
            self._recover(f"the producer failed: {exc}")
            return
        log.warning(
            "transaction failed, aborting and re-reading from the committed offsets: %s",
            clip(str(exc)),
        )
        self.stats.aborts += 1
        try:
            producer.abort()
        except (Hung, KafkaException) as abort_exc:
            self._recover(f"the abort failed: {abort_exc}")
            return
        for folder in folders:
            folder.aborted()
        # Everything read since the last commit is read again, held starts included;
        # results folded ahead of them fold again as no-ops (cadence.py).
        consumer = self.connection.consumer
        assert consumer is not None
        try:
            for partition, offset in self._intake.rewind().items():
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
        self._inflight = None  # its outcome is read back from the changelog
        self._intake.drop()
        self._held.drop_all()
        self.stats.assigned = []

    # -- rebalancing -----------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stats.restored_records += self._held.assign(partitions)
        self.stats.assigned = self._held.numbers()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        self._intake.drop(numbers)
        self._held.revoke(numbers)
        self.stats.assigned = self._held.numbers()

    def _on_kafka_error(self, error: KafkaError) -> None:
        """Every error of the current clients (processors/connection.py). Another process
        with this one's id ends this process (processors/fatal.py: a second fence within a
        minute; the first may be the consumer's own rejoin after a broker outage, and new
        clients cure it): replacing the clients would only fence it back. Other fatal
        errors are cured by replacing the clients when the call that meets them fails; an
        unreachable cluster logs one "waiting for Kafka" line per interval."""
        if self._fences.repeated(error, after_outage=self._outage.lately(FENCE_AFTER_OUTAGE)):
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


class _Replaced(Exception):
    """The Kafka clients were replaced: the batch in hand is dropped."""
