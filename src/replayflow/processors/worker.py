"""The worker: runs step attempts from replayflow.tasks and reports to replayflow.commands.

Many attempts run at once (async steps on one event loop, plain functions in a thread
pool), so a slow step does not hold up other instances on its partition. Offsets are
committed only below the lowest attempt still running in each partition: a crash
re-runs what had not finished, and the fold keeps only the first result of the current
attempt, so running twice changes nothing.

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
close, so a worker that stops leaves the group explicitly (`_leave_and_close`): its
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
from replayflow.kafka.reading import located
from replayflow.kafka.transactional import fatal_error
from replayflow.kafka.watchdog import GRACE, Guard, Hung, guarded
from replayflow.processors.stream_sink import KafkaStreamSink, register_stream_steps
from replayflow.settings import Settings
from replayflow.topics import Topics

log = logging.getLogger("replayflow.worker")

COMMIT_TIMEOUT = 5.0  # seconds librdkafka gets for an offset commit
# A commit that hung (the broker away) is waited for this long before the consumer is
# replaced: a new consumer would not reach the broker sooner, and the same consumer
# usually recovers by itself once the broker answers.
COMMIT_HUNG_LIMIT = 60.0
CLOSE_DEADLINE = 10.0
LEAVE_WAIT = 3.0  # seconds a stopping worker waits for its revocation before closing
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

    def __init__(self, offsets: _Offsets, stats: WorkerStats) -> None:
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


class _Offsets:
    """Per partition: offsets in flight, and the highest offset seen."""

    def __init__(self) -> None:
        self.in_flight: dict[int, set[int]] = {}
        self.seen: dict[int, int] = {}

    def begin(self, partition: int, offset: int) -> None:
        self.in_flight.setdefault(partition, set()).add(offset)
        self.seen[partition] = max(self.seen.get(partition, -1), offset)

    def end(self, partition: int, offset: int) -> None:
        self.in_flight.get(partition, set()).discard(offset)

    def committable(self) -> dict[int, int]:
        """The offset to commit per partition: the lowest still running, or past all."""
        result = {}
        for partition, seen in self.seen.items():
            running = self.in_flight.get(partition)
            result[partition] = min(running) if running else seen + 1
        return result

    def forget(self, partition: int) -> None:
        self.in_flight.pop(partition, None)
        self.seen.pop(partition, None)


class Worker:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        concurrency: int = 500,
        threads: int = 32,
        commit_interval: float = 1.0,
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
        self._commit_interval = commit_interval
        self._stop = threading.Event()
        self._offsets = _Offsets()
        self._committed: dict[int, int] = {}
        self._generation = 0  # of the consumer: callbacks of a replaced one do nothing
        self._commits = Guard("worker offset commits")
        self._hung_commit: tuple[Guard, float] | None = None  # its guard, and since when
        self._outbox = _Outbox(self._offsets, self.stats)
        self._producer: Producer = None  # type: ignore[assignment]  # built by run_async
        self.telemetry = telemetry.for_worker(group_name(settings, "worker"))

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        asyncio.run(self.run_async())

    async def run_async(self) -> None:
        consumer, liveness = self._new_consumer()
        self._producer = clients.producer(self.settings)
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task[None]] = set()
        last_commit = loop.time()
        log.info("worker started with %d step functions", len(self.registry.steps))
        try:
            while not self._stop.is_set():
                free = self.concurrency - len(running)
                messages = consumer.consume(min(free, 500), timeout=0) if free > 0 else []
                replace_consumer: str | None = None
                for message in messages:
                    error = message.error()
                    if error is not None:
                        log.warning("consumer: %s", clip(str(error)))
                        if fatal_error(error):
                            replace_consumer = f"fatal consumer error: {error}"
                        continue
                    await slots.acquire()
                    _, partition, offset = located(message)
                    self._offsets.begin(partition, offset)
                    job = asyncio.create_task(self._run(message, slots))
                    running.add(job)
                    job.add_done_callback(running.discard)
                self._deliver()
                self.streams.poll()
                self.telemetry.tick(consumer)
                if free <= 0:
                    liveness.busy()
                elif replace_consumer is None:
                    replace_consumer = liveness.stalled()
                if replace_consumer is None and loop.time() - last_commit >= self._commit_interval:
                    replace_consumer = self._commit(consumer)
                    last_commit = loop.time()
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
            _leave_and_close(consumer)
            self.telemetry.close()

    def _new_consumer(self) -> tuple[Consumer, ConsumerLiveness]:
        consumer = clients.consumer(
            self.settings,
            "worker",
            **{"group.instance.id": self.member_id, **CONSUMER_SETTINGS},
        )
        self._generation += 1
        generation = self._generation

        def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            if generation == self._generation:  # a replaced consumer's revoke does nothing
                self._on_revoke(consumer, partitions)

        consumer.subscribe([self.topics.tasks], on_revoke=on_revoke)
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
        _close(consumer)
        for partition in list(self._offsets.seen):
            self._offsets.forget(partition)
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
            self._producer = clients.producer(self.settings)  # the old one is dropped
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

    def _commit(self, consumer: Consumer) -> str | None:
        """Commit below the attempts still running (their results are acknowledged:
        see _Outbox). Returns why the consumer must be replaced, or None."""
        offsets = [
            TopicPartition(self.topics.tasks, p, o)
            for p, o in self._offsets.committable().items()
            if self._committed.get(p) != o
        ]
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
                self._committed[tp.partition] = tp.offset
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

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._offsets.forget(tp.partition)
            self._committed.pop(tp.partition, None)


def _commit_sync(consumer: Consumer, offsets: list[TopicPartition]) -> None:
    consumer.commit(offsets=offsets, asynchronous=False)


def _leave_and_close(consumer: Consumer) -> None:
    """Leave the group, then close. A static member's close() sends no LeaveGroup, but
    unsubscribe() does once the revocation is served; without it the partitions would
    wait a session timeout for this worker."""

    def leave() -> None:
        consumer.unsubscribe()
        give_up = time.monotonic() + LEAVE_WAIT
        while True:
            consumer.poll(0.05)  # serves the revocation; the LeaveGroup follows it
            if not consumer.assignment() or time.monotonic() > give_up:
                return

    try:
        guarded("consumer leave", LEAVE_WAIT + GRACE, leave)
    except (Hung, KafkaException, RuntimeError) as exc:  # the session timeout does it then
        log.info("leaving the group: %s", clip(str(exc)))
    _close(consumer)


def _close(consumer: Consumer) -> None:
    try:
        guarded("consumer close", CLOSE_DEADLINE, consumer.close)
    except Hung:
        log.warning("the consumer did not close within %g s: left behind", CLOSE_DEADLINE)
    except (KafkaException, RuntimeError) as exc:
        log.info("closing the consumer: %s", clip(str(exc)))
