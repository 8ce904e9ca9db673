"""The worker: runs step attempts from replayflow.tasks and reports to replayflow.commands.

Many attempts run at once (async steps on one event loop, plain functions in a thread
pool), so a slow step does not hold up other instances on its partition. A task's
offset is committed as soon as its result is acknowledged by the broker (tasks that
finished above one still running go in the commit's metadata, processors/task_offsets.py):
a crash re-runs only what had not reported, and the fold keeps only the first result of
the current attempt, so running twice changes nothing.

The loop never sleeps on a clock: when nothing is fetched it waits in a poll on a
helper thread (librdkafka wakes it the moment a task arrives) while the event loop goes
on running steps; a result is produced the moment its step ends, and the poll returns
within ACK_WAIT of that, so that the loop serves the result's acknowledgement and
commits (it polls in ACK_WAIT slices while steps run; in one long poll only when
there is nothing to do). No other call reaches the consumer while it polls:
confluent-kafka (2.16) lets one call at a time into a consumer, so a commit beside a
poll would wait for it.

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
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from replayflow import codec, telemetry
from replayflow.core.clip import clip
from replayflow.core.definitions import Registry, StepDef
from replayflow.core.messages import CompleteStep, ErrorInfo, FailStep, Task
from replayflow.execution import run_async, run_sync, unknown_step
from replayflow.kafka import clients
from replayflow.kafka.config import group_name
from replayflow.kafka.liveness import ConsumerLiveness
from replayflow.kafka.membership import close_consumer, leave_and_close
from replayflow.kafka.outage import Outage
from replayflow.kafka.reading import located
from replayflow.kafka.transactional import fatal_error
from replayflow.processors import collector, fatal
from replayflow.processors.cadence import WAITED_HEADER
from replayflow.processors.fatal import FENCE_AFTER_OUTAGE
from replayflow.processors.heartbeat import Heartbeat
from replayflow.processors.step_threads import StepThreads
from replayflow.processors.stream_sink import KafkaStreamSink, register_stream_steps
from replayflow.processors.task_commits import COMMIT_TIMEOUT, TaskCommits
from replayflow.processors.task_offsets import CommitPoint, TaskOffsets
from replayflow.processors.worker_outbox import Outbox, Result, WorkerStats
from replayflow.settings import Settings
from replayflow.topics import Topics

log = logging.getLogger("replayflow.worker")

CONSUMER_SETTINGS = {"session.timeout.ms": 10_000, "max.poll.interval.ms": 300_000}
#: Seconds the polling thread waits for a task (a task that arrives meanwhile wakes it
#: at once) before the loop takes its turn: with nothing to do (POLL_WAIT), while steps
#: run (STEP_WAIT, in ACK_WAIT slices, ended early by a step's end), while results wait
#: for their acknowledgement (ACK_WAIT).
POLL_WAIT = 0.1
STEP_WAIT = 0.05
ACK_WAIT = 0.002

__all__ = ["Worker", "WorkerStats"]


def _waited(message: Message) -> bytes | None:
    """Milliseconds since the task was produced, as header bytes."""
    ts_type, produced = message.timestamp()
    if ts_type == TIMESTAMP_NOT_AVAILABLE:
        return None
    return str(max(0, int(time.time() * 1000) - produced)).encode()


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
        self._threads = StepThreads(threads)
        self._stop = threading.Event()
        self._offsets = TaskOffsets()
        self._generation = 0  # of the consumer: callbacks of a replaced one do nothing
        self._commits = TaskCommits(
            self.topics.tasks, self._offsets, every=settings.task_commit_ms / 1000
        )
        self._outbox = Outbox(self._offsets, self.stats)
        self._producer: Producer = None  # type: ignore[assignment]  # built by run_async
        self.telemetry = telemetry.for_worker(group_name(settings, "worker"))
        self._outage = Outage(settings.bootstrap, "worker", log)
        self._fences = fatal.Fences()
        self._heartbeat = Heartbeat("worker")
        self._poller = ThreadPoolExecutor(1, thread_name_prefix="replayflow-poll")
        self._step_ended = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        asyncio.run(self.run_async())

    async def run_async(self) -> None:
        consumer, liveness = self._new_consumer()
        self._producer = clients.producer(self.settings, error_cb=self._on_kafka_error)
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task[None]] = set()
        idle = collector.IdleCollector()
        collector.settle()
        log.info("worker started with %d step functions", len(self.registry.steps))
        try:
            while not self._stop.is_set():
                free = self.concurrency - len(running)
                if free > 0:
                    messages = await self._fetch(consumer, min(free, 500), bool(running))
                    if not messages and not running:
                        idle.idle()
                else:
                    timeout = ACK_WAIT if self._outbox.unacknowledged() else POLL_WAIT
                    timeout = self._until_commit(timeout)
                    await asyncio.wait(running, timeout=timeout, return_when="FIRST_COMPLETED")
                    messages = []
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
                    replace_consumer = self._commits.turn(consumer)
                if replace_consumer is not None:
                    consumer, liveness = self._replace_consumer(consumer, replace_consumer)
                # Let the steps just started run before fetching more.
                await asyncio.sleep(0)
            if running:
                await asyncio.wait(running, timeout=10)
            self._deliver()
            self._producer.flush(10)
            self._deliver()
            self._commits.turn(consumer, at_once=True)
        finally:
            self._poller.shutdown(wait=True)  # a poll still running ends within POLL_WAIT
            self._threads.close()
            self.streams.flush(10)
            self._producer.flush(10)
            self._commits.close()
            leave_and_close(consumer)
            self.telemetry.close()

    async def _fetch(self, consumer: Consumer, n: int, stepping: bool) -> list[Message]:
        """Up to n fetched tasks: at once if any are fetched already, else the first to
        arrive within the wait (on the polling thread, while steps go on) and the rest."""
        messages: list[Message] = consumer.consume(n, timeout=0)
        if messages:
            return messages
        wait = POLL_WAIT
        if self._outbox.unacknowledged():
            wait = ACK_WAIT
        elif stepping:
            wait = STEP_WAIT
        wait = self._until_commit(wait)
        loop = asyncio.get_running_loop()
        self._step_ended.clear()
        first = await loop.run_in_executor(self._poller, self._poll, consumer, wait)
        if first is None:
            return []
        return [first, *consumer.consume(n - 1, timeout=0)] if n > 1 else [first]

    def _until_commit(self, wait: float) -> float:
        """`wait`, cut short so that the turn after it sends a commit that waits for the
        commit interval (processors/task_commits.py)."""
        deferred = self._commits.deferred(time.monotonic())
        return wait if deferred is None else min(wait, max(deferred, ACK_WAIT))

    def _poll(self, consumer: Consumer, wait: float) -> Message | None:
        """On the polling thread: the first task within `wait`; one poll when no step
        runs, else slices of ACK_WAIT until a step ends (a poll cannot be interrupted)."""
        if wait == POLL_WAIT:
            return consumer.poll(wait)
        deadline = time.monotonic() + wait
        while True:
            message: Message | None = consumer.poll(ACK_WAIT)
            if message is not None or self._step_ended.is_set() or time.monotonic() > deadline:
                return message

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
        self._fences.take()  # a fence is cured by this new consumer too
        close_consumer(consumer)
        self._offsets.forget_all()
        self._commits.replaced()
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
            waited = _waited(message)
            with self.telemetry.step(task, message.headers()) as attempt:
                outcome = await self._execute(task)
                attempt.finish(outcome)
            await self._streams_written()
            if isinstance(outcome, CompleteStep):
                self.stats.completed += 1
            else:
                self.stats.failed += 1
            headers = attempt.headers
            if waited is not None:
                # How long the task queued: the orchestrator paces new starts by it.
                headers = [*(headers or []), (WAITED_HEADER, waited)]
            value = codec.encode(outcome)
            number = self._outbox.add(Result(task.instance_id, value, headers, (partition, offset)))
            self._produce(number)
            sent = True
        finally:
            if not sent:
                self._offsets.end(partition, offset)
            slots.release()
            self._step_ended.set()  # a poll waiting on the polling thread returns

    async def _streams_written(self) -> None:
        # A step's stream values go on the log before its result: the orchestrator ends
        # an instance's streams only after every value of its completed steps.
        if self.streams.pending():
            await self._threads.run(self.streams.flush)

    async def _execute(self, task: Task) -> CompleteStep | FailStep:
        step = self.registry.step(task.function)
        if step is None:
            return unknown_step(task)
        if task.timeout_ms is None:
            return await self._attempt(step, task)
        timeout = task.timeout_ms / 1000
        try:
            # asyncio.timeout, unlike wait_for, wraps the step in no extra task.
            async with asyncio.timeout(timeout):
                return await self._attempt(step, task)
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

    async def _attempt(self, step: StepDef, task: Task) -> CompleteStep | FailStep:
        if step.is_async:
            return await run_async(step, task, sink=self.streams)
        # The copied context carries the step's span into the thread.
        outcome: CompleteStep | FailStep = await self._threads.run(
            contextvars.copy_context().run,
            functools.partial(run_sync, step, task, sink=self.streams),
        )
        return outcome

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

    def _on_kafka_error(self, error: KafkaError) -> None:
        """Every client error. A fatal one is cured by replacing the client that met it,
        also a fence of the consumer's static id: the worker's id is its own (member_id),
        so a fence is the consumer's own rejoin after a broker outage; a second within a
        minute (someone gave two workers one member_id) ends the process (fatal.py). An
        unreachable cluster logs one "waiting for Kafka" line per interval."""
        if self._fences.repeated(error, after_outage=self._outage.lately(FENCE_AFTER_OUTAGE)):
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
            self._commits.committed[tp.partition] = CommitPoint(tp.offset, tp.metadata or "")

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The next owner starts from the committed offsets: hand over every result
        # acknowledged so far (without waiting: a broker that is away must not hold up
        # the rebalance; steps still running here run there again).
        revoked = {tp.partition for tp in partitions}
        points = self._offsets.commit_points()
        handover = [self._commits.position(p, points[p]) for p in revoked if p in points]
        if handover:
            try:
                consumer.commit(offsets=handover, asynchronous=True)
            except KafkaException as exc:
                log.info("handing over offsets: %s", clip(str(exc)))
        for partition in revoked:
            self._offsets.forget(partition)
            self._commits.committed.pop(partition, None)
