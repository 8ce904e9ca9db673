"""The worker: runs step attempts from replayflow.tasks and reports to replayflow.commands.

Many attempts run at once (async steps on one event loop, plain functions in a thread
pool), so a slow step does not hold up other instances on its partition. A task's
offset is committed as soon as its result is acknowledged by the broker (tasks that
finished above one still running go in the commit's metadata, processors/task_offsets.py):
a crash re-runs only what had not reported, and the fold keeps only the first result of
the current attempt, so running twice changes nothing.

Nothing here waits on Kafka for long. A result whose delivery failed is sent again (a
producer that failed for good is replaced, and everything it had in flight is sent
through the new one); the offset commit runs under a deadline (kafka/watchdog.py); and a
consumer whose commit hung, that failed for good, or that stopped moving while tasks
wait (kafka/liveness.py) is replaced: the new one rejoins the group and reads from the
committed offsets, so at worst a step runs again.

The worker is a static member of its group (group.instance.id, one per Worker object).
After a broker restart longer than the session timeout, a dynamic member rejoins under a
new member id, and the group, reloaded with the old id in it, waits a whole session
timeout for that old member before it hands out any partition: the worker idles for
that long after the broker is back. A static member takes its old place at once, and so
does a replacement consumer of the same worker. Static members send no LeaveGroup on
close, so a worker that stops leaves the group explicitly (kafka/membership.py): its
partitions go to the other workers at once, as before.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from replayflow import codec, telemetry
from replayflow.core.clip import MAX_ECHO, clip
from replayflow.core.definitions import Registry
from replayflow.core.messages import CompleteStep, ErrorInfo, FailStep, Task
from replayflow.execution import run_async, run_sync, unknown_step
from replayflow.kafka import clients
from replayflow.kafka.config import group_name
from replayflow.kafka.liveness import ConsumerLiveness
from replayflow.kafka.membership import close_consumer, leave_and_close
from replayflow.kafka.outage import Outage
from replayflow.kafka.reading import located
from replayflow.kafka.transactional import fatal_error
from replayflow.kafka.watchdog import GRACE, Guard, Hung
from replayflow.processors import fatal
from replayflow.processors.heartbeat import Heartbeat
from replayflow.processors.stream_sink import KafkaStreamSink, register_stream_steps
from replayflow.processors.task_offsets import CommitPoint, TaskOffsets
from replayflow.settings import Settings
from replayflow.topics import Topics

log = logging.getLogger("replayflow.worker")

COMMIT_TIMEOUT = 5.0  # seconds librdkafka gets for an offset commit
# A commit that hung (the broker away) is waited for this long before the consumer is
# replaced: a new consumer would not reach the broker sooner, and the same consumer
# usually recovers by itself once the broker answers.
COMMIT_HUNG_LIMIT = 60.0
CONSUMER_SETTINGS = {"session.timeout.ms": 10_000, "max.poll.interval.ms": 300_000}


@dataclass
class WorkerStats:
    started: int = 0
    completed: int = 0
    failed: int = 0
    bad_tasks: int = 0
    undelivered: int = 0  # deliveries that failed (each result is sent again)
    consumers_replaced: int = 0
    producers_replaced: int = 0


@dataclass
class _Result:
    """A step's outcome on its way to replayflow.commands."""

    instance_id: str
    value: bytes
    headers: telemetry.KafkaHeaders | None
    task_at: tuple[int, int] | None  # (partition, offset) of its task


class _Outbox:
    """Results not yet acknowledged by the broker, so none is ever dropped: a failed
    delivery goes back in line, and a producer that is replaced hands over all of its
    results. The task's offset stays in flight until its result is acknowledged."""

    def __init__(self, offsets: TaskOffsets, stats: WorkerStats) -> None:
        self._offsets = offsets
        self._stats = stats
        self._pending: dict[int, _Result] = {}
        self._again: list[int] = []
        self._next = 0
        self.producer_failed: str | None = None  # why the producer must be replaced

    def add(self, result: _Result) -> int:
        self._next += 1
        self._pending[self._next] = result
        return self._next

    def delivered(self, number: int) -> Callable[[KafkaError | None, Message], None]:
        def report(error: KafkaError | None, _message: Message) -> None:
            result = self._pending.get(number)
            if result is None:
                return  # handed over to a new producer already
            if error is None:
                del self._pending[number]
                if result.task_at is not None:
                    self._offsets.end(*result.task_at)
                return
            self._stats.undelivered += 1
            log.warning(
                "result for %s not delivered (%s): sending it again",
                clip(result.instance_id, MAX_ECHO),
                error,
            )
            if fatal_error(error):
                self.producer_failed = f"fatal producer error: {error}"
            else:
                self._again.append(number)

        return report

    def later(self, number: int) -> None:
        self._again.append(number)

    def take_again(self) -> list[int]:
        again, self._again = self._again, []
        return [n for n in again if n in self._pending]

    def take_all(self) -> list[int]:
        """Everything still unacknowledged, for a new producer."""
        self._again = []
        return sorted(self._pending)

    def get(self, number: int) -> _Result | None:
        return self._pending.get(number)


class Worker:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        concurrency: int = 500,
        threads: int = 32,
        member_id: str | None = None,
    ) -> None:
        self.settings = settings
        # The group.instance.id of every consumer of this worker (see the docstring).
        self.member_id = (
            member_id or f"worker-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        self.topics = Topics(settings)
        self.registry = registry
        register_stream_steps(registry)  # ctx.stream(...).write() runs as a built-in step
        self.streams = KafkaStreamSink(settings)
        self.concurrency = concurrency
        self.stats = WorkerStats()
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="replayflow-step")
        self._stop = threading.Event()
        self._offsets = TaskOffsets()
        self._committed: dict[int, CommitPoint] = {}  # sent, and not known to have failed
        self._generation = 0  # of the consumer: callbacks of a replaced one do nothing
        self._commits = Guard("worker offset commits")
        self._hung_commit: tuple[Guard, float] | None = None  # its guard, and since when
        self._outbox = _Outbox(self._offsets, self.stats)
        self._producer: Producer = None  # type: ignore[assignment]  # built by run_async
        self.telemetry = telemetry.for_worker(group_name(settings, "worker"))
        self._outage = Outage(settings.bootstrap, "worker", log)
        self._fences = fatal.Fences()
        self._heartbeat = Heartbeat("worker")

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        asyncio.run(self.run_async())

    async def run_async(self) -> None:
        consumer, liveness = self._new_consumer()
        self._producer = clients.producer(self.settings, error_cb=self._on_kafka_error)
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task[None]] = set()
        log.info("worker started with %d step functions", len(self.registry.steps))
        try:
            while not self._stop.is_set():
                free = self.concurrency - len(running)
                messages = consumer.consume(min(free, 500), timeout=0) if free > 0 else []
                replace_consumer = self._fences.take()
                for message in messages:
                    error = message.error()
                    if error is not None:
                        log.warning("consumer: %s", clip(str(error)))
                        self._on_kafka_error(error)
                        if fatal_error(error):
                            replace_consumer = f"fatal consumer error: {error}"
                        continue
                    _, partition, offset = located(message)
                    if not self._offsets.begin(partition, offset):
                        continue  # its result is on the log: it finished before a takeover
                    await slots.acquire()
                    job = asyncio.create_task(self._run(message, slots))
                    running.add(job)
                    job.add_done_callback(running.discard)
                self._deliver()
                self.streams.poll()
                self.telemetry.tick(consumer)
                self._outage.check(
                    functools.partial(consumer.list_topics, self.topics.tasks, timeout=1)
                )
                self._heartbeat.beat(running=len(running), kafka_down=self._outage.down)
                if free <= 0:
                    liveness.busy()
                elif replace_consumer is None:
                    replace_consumer = liveness.stalled()
                if replace_consumer is None:
                    replace_consumer = self._commit(consumer)
                if replace_consumer is not None:
                    consumer, liveness = self._replace_consumer(consumer, replace_consumer)
                await asyncio.sleep(0 if messages else 0.01)
            if running:
                await asyncio.wait(running, timeout=10)
            self._deliver()
            self._producer.flush(10)
            self._deliver()
            self._commit(consumer)
        finally:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self.streams.flush(10)
            self._producer.flush(10)
            self._commits.close()
            leave_and_close(consumer)
            self.telemetry.close()

    def _new_consumer(self) -> tuple[Consumer, ConsumerLiveness]:
        consumer = clients.consumer(
            self.settings,
            "worker",
            **{"group.instance.id": self.member_id, **CONSUMER_SETTINGS},
            error_cb=self._on_kafka_error,
        )
        self._generation += 1
        generation = self._generation

        def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            if generation == self._generation:
                self._on_assign(consumer, partitions)

        def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            if generation == self._generation:  # a replaced consumer's revoke does nothing
                self._on_revoke(consumer, partitions)

        consumer.subscribe([self.topics.tasks], on_assign=on_assign, on_revoke=on_revoke)
        return consumer, ConsumerLiveness(consumer, self.topics.tasks)

    def _replace_consumer(
        self, consumer: Consumer, reason: str
    ) -> tuple[Consumer, ConsumerLiveness]:
        """A new group member in place of one that failed. Attempts still running go on;
        their tasks may be handed out again, and the fold keeps the first result."""
        log.warning("replacing the consumer: %s", clip(reason))
        self.stats.consumers_replaced += 1
        self._generation += 1
        self._hung_commit = None
        self._fences.take()  # a fence is cured by this new consumer too
        close_consumer(consumer)
        self._offsets.forget_all()
        self._committed.clear()
        return self._new_consumer()

    def _deliver(self) -> None:
        """Serve delivery reports and send again what failed; a producer that failed
        for good is replaced and everything it had in flight goes through the new one."""
        self._producer.poll(0)
        outbox = self._outbox
        if outbox.producer_failed is not None:
            log.warning("replacing the producer: %s", clip(outbox.producer_failed))
            self.stats.producers_replaced += 1
            outbox.producer_failed = None
            self._producer = clients.producer(  # the old one is dropped
                self.settings, error_cb=self._on_kafka_error
            )
            again = outbox.take_all()
        else:
            again = outbox.take_again()
        for number in again:
            self._produce(number)

    async def _run(self, message: Message, slots: asyncio.Semaphore) -> None:
        # The task's offset stays in flight until its result is on the log (see _send):
        # a result lost in the producer means the step runs again, never that it is lost.
        _, partition, offset = located(message)
        sent = False
        try:
            try:
                task = codec.decode(message.value() or b"")
            except codec.CodecError as exc:
                self.stats.bad_tasks += 1
                log.error("undecodable task at %d@%d: %s", partition, offset, clip(exc.reason))
                return
            if not isinstance(task, Task):
                self.stats.bad_tasks += 1
                return
            self.stats.started += 1
            with self.telemetry.step(task, message.headers()) as attempt:
                outcome = await self._execute(task)
                attempt.finish(outcome)
            await self._streams_written()
            if isinstance(outcome, CompleteStep):
                self.stats.completed += 1
            else:
                self.stats.failed += 1
            number = self._outbox.add(
                _Result(
                    task.instance_id, codec.encode(outcome), attempt.headers, (partition, offset)
                )
            )
            self._produce(number)
            sent = True
        finally:
            if not sent:
                self._offsets.end(partition, offset)
            slots.release()

    async def _streams_written(self) -> None:
        # A step's stream values go on the log before its result: the orchestrator ends
        # an instance's streams only after every value of its completed steps.
        if self.streams.pending():
            await asyncio.get_running_loop().run_in_executor(self._threads, self.streams.flush)

    async def _execute(self, task: Task) -> CompleteStep | FailStep:
        step = self.registry.step(task.function)
        if step is None:
            return unknown_step(task)
        timeout = None if task.timeout_ms is None else task.timeout_ms / 1000
        try:
            if step.is_async:
                return await asyncio.wait_for(run_async(step, task, sink=self.streams), timeout)
            loop = asyncio.get_running_loop()
            # The copied context carries the step's span into the thread.
            future = loop.run_in_executor(
                self._threads,
                contextvars.copy_context().run,
                functools.partial(run_sync, step, task, sink=self.streams),
            )
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            # A thread cannot be stopped; its late result is dropped here, and the fold
            # would ignore it anyway (the attempt is over).
            return FailStep(
                instance_id=task.instance_id,
                step=task.step,
                attempt=task.attempt,
                error=ErrorInfo(
                    type="StepTimeout",
                    retryable=True,
                    message=f"attempt {task.attempt} ran over {timeout} s",
                ),
            )

    def _produce(self, number: int) -> None:
        result = self._outbox.get(number)
        if result is None:
            return  # acknowledged meanwhile
        try:
            self._producer.produce(
                self.topics.commands,
                key=result.instance_id.encode(),
                value=result.value,
                headers=result.headers,
                on_delivery=self._outbox.delivered(number),
            )
        except BufferError:
            # The queue is full (the broker away): the next round sends it, and the
            # event loop goes on meanwhile.
            self._outbox.later(number)

    def _due_commits(self) -> list[TopicPartition]:
        """The commit decision, made on every turn of the loop: each partition whose
        commit point moved since the last commit. Points move when results are
        acknowledged (see _Outbox), so a task is committed in the turn its result
        reached the log, not on a timer: a worker killed after that does not run the
        step again (what is left is the commit's own round trip). A turn that had no
        acknowledgement commits nothing."""
        return [
            self._position(partition, point)
            for partition, point in self._offsets.commit_points().items()
            if self._committed.get(partition) != point
        ]

    def _position(self, partition: int, point: CommitPoint) -> TopicPartition:
        return TopicPartition(self.topics.tasks, partition, point.offset, metadata=point.metadata)

    def _commit(self, consumer: Consumer) -> str | None:
        """Commit what _due_commits says. Returns why the consumer must be replaced, or
        None."""
        offsets = self._due_commits()
        if not offsets:
            return None
        if self._hung_commit is not None:
            hung, since = self._hung_commit
            if hung.running:
                waited = time.monotonic() - since
                if waited > COMMIT_HUNG_LIMIT:
                    return f"an offset commit has not returned for {waited:.0f} s"
                return None  # the consumer goes on; commit again once that one returns
            self._hung_commit = None
        try:
            self._commits.run(
                "offset commit", COMMIT_TIMEOUT + GRACE, _commit_sync, consumer, offsets
            )
            for tp in offsets:
                self._committed[tp.partition] = CommitPoint(tp.offset, tp.metadata or "")
        except Hung as exc:
            log.warning("%s; the consumer goes on, and commits again once it returns", exc)
            self._hung_commit = (self._commits, time.monotonic())
            self._commits = Guard("worker offset commits")
        except KafkaException as exc:  # a failed commit only means some steps may run again
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and fatal_error(error):
                return f"fatal error committing offsets: {error}"
            log.warning("offset commit failed: %s", clip(str(exc)))
        return None

    def _on_kafka_error(self, error: KafkaError) -> None:
        """Every client error. A fatal one is cured by replacing the client that met it,
        also a fence of the consumer's static id: the worker's id is its own (member_id),
        so a fence is the consumer's own rejoin after a broker outage; a second within a
        minute (someone gave two workers one member_id) ends the process (fatal.py). An
        unreachable cluster logs one "waiting for Kafka" line per interval."""
        if self._fences.repeated(error):
            fatal.on_error(error, "worker")
        self._outage.error(error)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Tasks that finished above a running one are named in the commit's metadata.
        try:
            committed = consumer.committed(partitions, timeout=COMMIT_TIMEOUT)
        except KafkaException as exc:  # they all run again: at least once, as before
            log.warning("committed offsets of %s unknown: %s", self.topics.tasks, clip(str(exc)))
            return
        for tp in committed:
            self._offsets.restore(tp.partition, tp.offset, tp.metadata)
            self._committed[tp.partition] = CommitPoint(tp.offset, tp.metadata or "")

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The next owner starts from the committed offsets: hand over every result
        # acknowledged so far (without waiting: a broker that is away must not hold up
        # the rebalance; steps still running here run there again).
        revoked = {tp.partition for tp in partitions}
        points = self._offsets.commit_points()
        handover = [self._position(p, points[p]) for p in revoked if p in points]
        if handover:
            try:
                consumer.commit(offsets=handover, asynchronous=True)
            except KafkaException as exc:
                log.info("handing over offsets: %s", clip(str(exc)))
        for partition in revoked:
            self._offsets.forget(partition)
            self._committed.pop(partition, None)


def _commit_sync(consumer: Consumer, offsets: list[TopicPartition]) -> None:
    consumer.commit(offsets=offsets, asynchronous=False)
