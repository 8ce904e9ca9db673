"""The worker: runs step attempts from replayflow.tasks and reports to replayflow.commands.

Many attempts run at once (async steps on one event loop, plain functions in a thread
pool), so a slow step does not hold up other instances on its partition. Offsets are
committed only below the lowest attempt still running in each partition: a crash
re-runs what had not finished, and the fold keeps only the first result of the current
attempt, so running twice changes nothing.

The loop never sleeps on a clock: when nothing is fetched it waits in a poll on a
helper thread (librdkafka wakes it the moment a task arrives) while the event loop
goes on running steps, and a result is produced the moment its step ends. An offset
counts as done only when its result is acknowledged, so commits need no flush and
never block the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from replayflow import codec, telemetry
from replayflow.core.definitions import Registry, StepDef
from replayflow.core.messages import CompleteStep, ErrorInfo, FailStep, Task
from replayflow.execution import run_async, run_sync, unknown_step
from replayflow.kafka import clients
from replayflow.kafka.config import group_name
from replayflow.kafka.reading import located
from replayflow.processors import collector
from replayflow.processors.cadence import WAITED_HEADER
from replayflow.settings import Settings
from replayflow.topics import Topics

log = logging.getLogger("replayflow.worker")

#: Seconds the polling thread waits for a task before the loop checks its stop flag and
#: commits; a task that arrives meanwhile wakes it at once.
POLL_WAIT = 0.1


@dataclass
class WorkerStats:
    started: int = 0
    completed: int = 0
    failed: int = 0
    bad_tasks: int = 0
    undelivered: int = 0


class _Offsets:
    """Per partition: offsets in flight, and the highest offset seen. Revocation runs
    in the polling thread, everything else in the event loop's: a lock keeps them
    apart."""

    def __init__(self) -> None:
        self.in_flight: dict[int, set[int]] = {}
        self.seen: dict[int, int] = {}
        self._lock = threading.Lock()

    def begin(self, partition: int, offset: int) -> None:
        with self._lock:
            self.in_flight.setdefault(partition, set()).add(offset)
            if offset > self.seen.get(partition, -1):
                self.seen[partition] = offset

    def end(self, partition: int, offset: int) -> None:
        with self._lock:
            self.in_flight.get(partition, set()).discard(offset)

    def committable(self) -> dict[int, int]:
        """The offset to commit per partition: the lowest still running, or past all."""
        with self._lock:
            result = {}
            for partition, seen in self.seen.items():
                running = self.in_flight.get(partition)
                result[partition] = min(running) if running else seen + 1
            return result

    def forget(self, partition: int) -> None:
        with self._lock:
            self.in_flight.pop(partition, None)
            self.seen.pop(partition, None)


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

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        asyncio.run(self.run_async())

    async def run_async(self) -> None:
        consumer = clients.consumer(
            self.settings,
            "worker",
            **{"session.timeout.ms": 10_000, "max.poll.interval.ms": 300_000},
        )
        producer = clients.producer(self.settings)
        consumer.subscribe([self.topics.tasks], on_revoke=self._on_revoke)
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task[None]] = set()
        last_commit = loop.time()
        poller = ThreadPoolExecutor(1, thread_name_prefix="replayflow-poll")
        idle = collector.IdleCollector()
        collector.settle()
        log.info("worker started with %d step functions", len(self.registry.steps))
        try:
            while not self._stop.is_set():
                free = self.concurrency - len(running)
                if free > 0:
                    messages = await self._fetch(loop, poller, consumer, min(free, 500))
                    if not messages and not running:
                        idle.idle()
                else:
                    await asyncio.wait(running, timeout=POLL_WAIT, return_when="FIRST_COMPLETED")
                    messages = []
                for message in messages:
                    if message.error() is not None:
                        log.warning("consumer: %s", message.error())
                        continue
                    await slots.acquire()
                    _, partition, offset = located(message)
                    self._offsets.begin(partition, offset)
                    job = asyncio.create_task(self._run(message, producer, slots))
                    running.add(job)
                    job.add_done_callback(running.discard)
                producer.poll(0)
                self.telemetry.tick(consumer)
                if loop.time() - last_commit >= self._commit_interval:
                    self._commit(consumer, producer)
                    last_commit = loop.time()
                # Let the steps just started run before fetching more.
                await asyncio.sleep(0)
            if running:
                await asyncio.wait(running, timeout=10)
            producer.flush(10)
            self._commit(consumer, producer, wait=True)
        finally:
            poller.shutdown(wait=True)
            self._threads.shutdown(wait=False, cancel_futures=True)
            producer.flush(10)
            consumer.close()
            self.telemetry.close()

    async def _fetch(
        self,
        loop: asyncio.AbstractEventLoop,
        poller: ThreadPoolExecutor,
        consumer: Consumer,
        n: int,
    ) -> list[Message]:
        """Up to n fetched tasks: at once if any are fetched already, else the first one
        to arrive within POLL_WAIT (waited for on the polling thread) and the rest."""
        messages: list[Message] = consumer.consume(n, timeout=0)
        if messages:
            return messages
        first = await loop.run_in_executor(poller, consumer.poll, POLL_WAIT)
        if first is None:
            return []
        return [first, *consumer.consume(n - 1, timeout=0)] if n > 1 else [first]

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
            waited = _waited(message)
            with self.telemetry.step(task, message.headers()) as attempt:
                outcome = await self._execute(task)
                attempt.finish(outcome)
            if isinstance(outcome, CompleteStep):
                self.stats.completed += 1
            else:
                self.stats.failed += 1
            headers = attempt.headers
            if waited is not None:
                # How long the task queued: the orchestrator paces new starts by it.
                headers = [*(headers or []), (WAITED_HEADER, waited)]
            self._send(producer, task.instance_id, outcome, headers, (partition, offset))
            sent = True
        finally:
            if not sent:
                self._offsets.end(partition, offset)
            slots.release()

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
            return await run_async(step, task)
        loop = asyncio.get_running_loop()
        # The copied context carries the step's span into the thread.
        return await loop.run_in_executor(
            self._threads, contextvars.copy_context().run, run_sync, step, task
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

    def _commit(self, consumer: Consumer, producer: Producer, wait: bool = False) -> None:
        # An offset counts as done only once its result is acknowledged (see _send), so
        # the results an offset stands for are on the log already: no flush needed.
        producer.poll(0)
        offsets = [
            TopicPartition(self.topics.tasks, p, o)
            for p, o in self._offsets.committable().items()
            if self._committed.get(p) != o
        ]
        if not offsets:
            return
        try:
            if wait:
                consumer.commit(offsets=offsets, asynchronous=False)
            else:
                consumer.commit(offsets=offsets, asynchronous=True)
            for tp in offsets:
                self._committed[tp.partition] = tp.offset
        except Exception as exc:  # a failed commit only means some steps may run again
            log.warning("offset commit failed: %s", exc)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._offsets.forget(tp.partition)
            self._committed.pop(tp.partition, None)
