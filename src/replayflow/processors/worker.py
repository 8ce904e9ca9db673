"""The worker: runs step attempts from replayflow.tasks and reports to replayflow.commands.

Many attempts run at once (async steps on one event loop, plain functions in a thread
pool), so a slow step does not hold up other instances on its partition. A task's
offset is committed as soon as its result is acknowledged by the broker (tasks that
finished above one still running go in the commit's metadata, processors/task_offsets.py):
a crash re-runs only what had not reported, and the fold keeps only the first result of
the current attempt, so running twice changes nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
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
from replayflow.kafka.reading import located
from replayflow.processors.stream_sink import KafkaStreamSink, register_stream_steps
from replayflow.processors.task_offsets import CommitPoint, TaskOffsets
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


class Worker:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        concurrency: int = 500,
        threads: int = 32,
    ) -> None:
        self.settings = settings
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
        self.telemetry = telemetry.for_worker(group_name(settings, "worker"))

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
                "on_commit": self._on_commit,
            },
        )
        producer = clients.producer(self.settings)
        consumer.subscribe(
            [self.topics.tasks], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        slots = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task[None]] = set()
        log.info("worker started with %d step functions", len(self.registry.steps))
        try:
            while not self._stop.is_set():
                free = self.concurrency - len(running)
                messages = consumer.consume(min(free, 500), timeout=0) if free > 0 else []
                for message in messages:
                    if message.error() is not None:
                        log.warning("consumer: %s", message.error())
                        continue
                    _, partition, offset = located(message)
                    if not self._offsets.begin(partition, offset):
                        continue  # its result is on the log: it finished before a takeover
                    await slots.acquire()
                    job = asyncio.create_task(self._run(message, producer, slots))
                    running.add(job)
                    job.add_done_callback(running.discard)
                producer.poll(0)
                self.streams.poll()
                self.telemetry.tick(consumer)
                self._commit(consumer, self._due_commits())
                await asyncio.sleep(0 if messages else 0.01)
            if running:
                await asyncio.wait(running, timeout=10)
            producer.flush(30)  # the last results' acknowledgements end their tasks
            self._commit(consumer, self._due_commits(), wait=True)
        finally:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self.streams.flush(10)
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
            await self._streams_written()
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

    def _due_commits(self) -> list[TopicPartition]:
        """The commit decision, made on every turn of the loop: each partition whose
        commit point moved since the last commit sent. Points move only when results
        are acknowledged (or tasks are read), so a task is committed within one turn of
        its result reaching the log, not on a timer: a worker killed after that does
        not run the step again. What is left is the commit's own round trip."""
        return [
            self._position(partition, point)
            for partition, point in self._offsets.commit_points().items()
            if self._committed.get(partition) != point
        ]

    def _position(self, partition: int, point: CommitPoint) -> TopicPartition:
        return TopicPartition(self.topics.tasks, partition, point.offset, metadata=point.metadata)

    def _commit(
        self, consumer: Consumer, offsets: list[TopicPartition], wait: bool = False
    ) -> None:
        if not offsets:
            return
        for tp in offsets:
            self._committed[tp.partition] = CommitPoint(tp.offset, tp.metadata or "")
        try:
            if wait:
                consumer.commit(offsets=offsets, asynchronous=False)
            else:
                consumer.commit(offsets=offsets, asynchronous=True)
        except Exception as exc:  # a failed commit only means some steps may run again
            log.warning("offset commit failed: %s", exc)
            self._uncommitted(offsets)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None:
            log.warning("offset commit failed: %s", error)
            self._uncommitted(partitions)

    def _uncommitted(self, partitions: list[TopicPartition]) -> None:
        # Sent again on the next turn, with whatever the point is by then.
        for tp in partitions:
            self._committed.pop(tp.partition, None)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Tasks that finished above a running one are named in the commit's metadata.
        try:
            committed = consumer.committed(partitions, timeout=30)
        except Exception as exc:  # they all run again: at least once, as before
            log.warning("committed offsets of %s unknown: %s", self.topics.tasks, exc)
            return
        for tp in committed:
            self._offsets.restore(tp.partition, tp.offset, tp.metadata)
            self._committed[tp.partition] = CommitPoint(tp.offset, tp.metadata or "")

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The next owner starts from what is committed now: hand over every result
        # acknowledged so far (steps still running here will run there again).
        # Sent again even if unchanged: an asynchronous commit of it may still be on its way.
        revoked = {tp.partition for tp in partitions}
        points = self._offsets.commit_points()
        self._commit(
            consumer, [self._position(p, points[p]) for p in revoked if p in points], wait=True
        )
        for partition in revoked:
            self._offsets.forget(partition)
            self._committed.pop(partition, None)
