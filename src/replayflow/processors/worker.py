"""The worker: runs step attempts from replayflow.tasks and reports to replayflow.commands.

Many attempts run at once (async steps on one event loop, plain functions in a thread
pool), so a slow step does not hold up other instances on its partition. Offsets are
committed only below the lowest attempt still running in each partition: a crash
re-runs what had not finished, and the fold keeps only the first result of the current
attempt, so running twice changes nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from replayflow import codec, telemetry
from replayflow.core.definitions import Registry
from replayflow.core.messages import CompleteStep, ErrorInfo, FailStep, Task
from replayflow.execution import run_async, run_sync, unknown_step
from replayflow.kafka import clients
from replayflow.kafka.config import group_name
from replayflow.kafka.outage import Outage
from replayflow.kafka.reading import located
from replayflow.processors import fatal
from replayflow.processors.heartbeat import Heartbeat
from replayflow.settings import Settings
from replayflow.topics import Topics

log = logging.getLogger("replayflow.worker")


@dataclass
class WorkerStats:
    started: int = 0
    completed: int = 0
    failed: int = 0
    bad_tasks: int = 0
    undelivered: int = 0


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
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings)
        self.registry = registry
        self.concurrency = concurrency
        self.stats = WorkerStats()
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="replayflow-step")
        self._commit_interval = commit_interval
        self._stop = threading.Event()
        self._offsets = _Offsets()
        self._committed: dict[int, int] = {}
        self.telemetry = telemetry.for_worker(group_name(settings, "worker"))
        self._outage = Outage(settings.bootstrap, "worker", log)
        self._heartbeat = Heartbeat("worker")

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        asyncio.run(self.run_async())

    async def run_async(self) -> None:
        consumer = clients.consumer(
            self.settings,
            "worker",
            **{
                "session.timeout.ms": 10_000,
                "max.poll.interval.ms": 300_000,
                "error_cb": self._on_kafka_error,
            },
        )
        producer = clients.producer(self.settings, error_cb=self._on_kafka_error)
        consumer.subscribe([self.topics.tasks], on_revoke=self._on_revoke)
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task[None]] = set()
        last_commit = loop.time()
        log.info("worker started with %d step functions", len(self.registry.steps))
        try:
            while not self._stop.is_set():
                free = self.concurrency - len(running)
                messages = consumer.consume(min(free, 500), timeout=0) if free > 0 else []
                for message in messages:
                    error = message.error()
                    if error is not None:
                        self._on_kafka_error(error)
                        continue
                    await slots.acquire()
                    _, partition, offset = located(message)
                    self._offsets.begin(partition, offset)
                    job = asyncio.create_task(self._run(message, producer, slots))
                    running.add(job)
                    job.add_done_callback(running.discard)
                producer.poll(0)
                self.telemetry.tick(consumer)
                self._outage.check(lambda: consumer.list_topics(self.topics.tasks, timeout=1))
                self._heartbeat.beat(running=len(running), kafka_down=self._outage.down)
                if loop.time() - last_commit >= self._commit_interval:
                    self._commit(consumer, producer)
                    last_commit = loop.time()
                await asyncio.sleep(0 if messages else 0.01)
            if running:
                await asyncio.wait(running, timeout=10)
            self._commit(consumer, producer)
        finally:
            self._threads.shutdown(wait=False, cancel_futures=True)
            producer.flush(10)
            consumer.close()
            self.telemetry.close()

    async def _run(self, message: Message, producer: Producer, slots: asyncio.Semaphore) -> None:
        # The task's offset stays in flight until its result is on the log (see _send):
        # a result lost in the producer means the step runs again, never that it is lost.
        _, partition, offset = located(message)
        sent = False
        try:
            try:
                task = codec.decode(message.value() or b"")
            except codec.CodecError as exc:
                self.stats.bad_tasks += 1
                log.error("undecodable task at %d@%d: %s", partition, offset, exc.reason)
                return
            if not isinstance(task, Task):
                self.stats.bad_tasks += 1
                return
            self.stats.started += 1
            with self.telemetry.step(task, message.headers()) as attempt:
                outcome = await self._execute(task)
                attempt.finish(outcome)
            if isinstance(outcome, CompleteStep):
                self.stats.completed += 1
            else:
                self.stats.failed += 1
            self._send(producer, task.instance_id, outcome, attempt.headers, (partition, offset))
            sent = True
        finally:
            if not sent:
                self._offsets.end(partition, offset)
            slots.release()

    async def _execute(self, task: Task) -> CompleteStep | FailStep:
        step = self.registry.step(task.function)
        if step is None:
            return unknown_step(task)
        timeout = None if task.timeout_ms is None else task.timeout_ms / 1000
        try:
            if step.is_async:
                return await asyncio.wait_for(run_async(step, task), timeout)
            loop = asyncio.get_running_loop()
            # The copied context carries the step's span into the thread.
            future = loop.run_in_executor(
                self._threads, contextvars.copy_context().run, run_sync, step, task
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

    def _send(
        self,
        producer: Producer,
        instance_id: str,
        outcome: CompleteStep | FailStep,
        headers: telemetry.KafkaHeaders | None = None,
        task_at: tuple[int, int] | None = None,
    ) -> None:
        value = codec.encode(outcome)

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                # Left in flight: the offset is not committed past it, so the step runs
                # again after a restart, and the fold keeps only the first result.
                self.stats.undelivered += 1
                log.error("result of %s/%s not delivered: %s", instance_id, outcome.step, error)
            elif task_at is not None:
                self._offsets.end(*task_at)

        while True:
            try:
                producer.produce(
                    self.topics.commands,
                    key=instance_id.encode(),
                    value=value,
                    headers=headers,
                    on_delivery=delivered,
                )
                return
            except BufferError:
                producer.poll(0.05)

    def _commit(self, consumer: Consumer, producer: Producer) -> None:
        # Results must be on the log before the offsets that stand for them.
        producer.flush(30)
        offsets = [
            TopicPartition(self.topics.tasks, p, o)
            for p, o in self._offsets.committable().items()
            if self._committed.get(p) != o
        ]
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
            for tp in offsets:
                self._committed[tp.partition] = tp.offset
        except Exception as exc:  # a failed commit only means some steps may run again
            log.warning("offset commit failed: %s", exc)

    def _on_kafka_error(self, error: KafkaError) -> None:
        """Every client error: a fatal one ends the process (processors/fatal.py); an
        unreachable cluster logs one "waiting for Kafka" line per interval."""
        fatal.on_error(error, "worker")
        self._outage.error(error)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._offsets.forget(tp.partition)
            self._committed.pop(tp.partition, None)
