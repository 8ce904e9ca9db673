"""The Python client: start workflows, send events, cancel, terminate, read results and
history. Everything it does is a record on a topic, so any language can do the same
(schemas/README.md).

    client = rf.Client()                                  # KAFKA_BOOTSTRAP, namespace
    handle = client.start("checkout", {"id": 1}, id="order-1")   # idempotent by id
    print(handle.result(timeout=60))
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from confluent_kafka import TopicPartition

from replayflow import codec, telemetry
from replayflow.core.definitions import WorkflowDef
from replayflow.core.errors import ReplayflowError, WorkflowError
from replayflow.core.messages import (
    CancelWorkflow,
    Command,
    Completion,
    HistoryEvent,
    PauseWorkflow,
    RestartWorkflow,
    ResumeWorkflow,
    SendEvent,
    StartWorkflow,
    TerminateWorkflow,
)
from replayflow.core.names import check_instance_id
from replayflow.core.payloads import dump, load
from replayflow.core.state import FINAL_STATUSES
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.config import FLUSH_TIMEOUT
from replayflow.kafka.partition import murmur2_partition
from replayflow.kafka.producing import DeliveryError, Record, deliver
from replayflow.kafka.reading import read_to_end, watermarks
from replayflow.settings import Settings
from replayflow.topics import Topics

_FINAL_EVENTS = {
    "WorkflowCompleted",
    "WorkflowFailed",
    "WorkflowCancelled",
    "WorkflowTerminated",
    "WorkflowTimedOut",
}


class ResultTimeout(ReplayflowError, TimeoutError):
    """No completion arrived in time; the instance may still be running."""


class Handle:
    def __init__(self, client: Client, instance_id: str, started_at: float) -> None:
        self._client = client
        self.id = instance_id
        self.started_at = started_at

    def result(self, timeout: float | None = 60.0) -> Any:
        return self._client.result(self.id, timeout, since=self.started_at)

    def completion(self, timeout: float | None = 60.0) -> Completion:
        return self._client.completion(self.id, timeout, since=self.started_at)

    def __repr__(self) -> str:
        return f"Handle({self.id!r})"


class _CompletionWatcher(threading.Thread):
    """Reads replayflow.completions from where it was when the client started its first
    workflow, so no completion of a workflow this client started is missed."""

    def __init__(self, settings: Settings, topic: str, partitions: int) -> None:
        super().__init__(name="replayflow-completions", daemon=True)
        self._consumer = clients.consumer(settings, None)
        ends = []
        for p in range(partitions):
            _, high = watermarks(self._consumer, topic, p)
            ends.append(TopicPartition(topic, p, high))
        self._consumer.assign(ends)
        self.completions: dict[str, Completion] = {}
        self._changed = threading.Condition()
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            # Block for the first record only: consume(n, timeout) would wait the whole
            # timeout for n records, delaying every result by up to that long.
            first = self._consumer.poll(0.1)
            if first is None:
                continue
            messages = [first, *self._consumer.consume(1000, timeout=0)]
            with self._changed:
                for message in messages:
                    if message.error() is not None:
                        continue
                    try:
                        completion = codec.decode(message.value() or b"")
                    except codec.CodecError:
                        continue
                    if isinstance(completion, Completion):
                        self.completions[completion.instance_id] = completion
                self._changed.notify_all()
        self._consumer.close()

    def wait(self, instance_id: str, timeout: float | None) -> Completion | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while instance_id not in self.completions:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._changed.wait(left if left is not None else 1.0)
            return self.completions[instance_id]

    def close(self) -> None:
        self._stopping.set()


class Client:
    def __init__(
        self,
        settings: Settings | None = None,
        watch_completions: bool = True,
        send_timeout: float = FLUSH_TIMEOUT,
    ) -> None:
        """With watch_completions (the default) the client follows the completions
        topic from its first start, so results of what it started are never missed.
        A long-running sender that never reads results (an API process) turns it off.
        Every command is acknowledged by Kafka within `send_timeout` seconds, or the
        call raises DeliveryError."""
        self.settings = settings or Settings.from_env()
        self.send_timeout = send_timeout
        self.topics = Topics(self.settings)
        self._producer = clients.producer(self.settings)
        self._partitions: dict[str, int] = {}
        self._watcher: _CompletionWatcher | None = None
        self._watch = watch_completions
        self._lock = threading.Lock()

    # -- commands --------------------------------------------------------------------

    def start(
        self,
        workflow: str | WorkflowDef,
        input: Any = None,
        id: str | None = None,
        version: str | None = None,
    ) -> Handle:
        """Start an instance. With an id that exists already nothing changes (the first
        start wins) and the handle reads that instance's result."""
        return self.start_many([(workflow, input, id)], version=version)[0]

    def start_many(
        self,
        starts: Iterable[tuple[str | WorkflowDef, Any, str | None]],
        version: str | None = None,
    ) -> list[Handle]:
        if self._watch:
            self._ensure_watcher()
        handles = []
        records = []
        now = time.time()
        for workflow, input, instance_id in starts:
            name = workflow.name if isinstance(workflow, WorkflowDef) else workflow
            instance_id = check_instance_id(instance_id or f"{name}-{uuid.uuid4().hex}")
            command = StartWorkflow(
                instance_id=instance_id,
                workflow=name,
                input=dump(input, "the workflow input"),
                version=version,
            )
            records.append(self._record(command, telemetry.start_headers(name, instance_id)))
            handles.append(Handle(self, instance_id, now))
        self._send(*records)
        return handles

    def send_event(self, instance_id: str, name: str, payload: Any = None) -> None:
        event = SendEvent(
            instance_id=instance_id, name=name, payload=dump(payload, "the event payload")
        )
        self._send(self._record(event))

    def cancel(self, instance_id: str, reason: str = "") -> None:
        self._send(self._record(CancelWorkflow(instance_id=instance_id, reason=reason)))

    def terminate(self, instance_id: str, reason: str = "") -> None:
        self._send(self._record(TerminateWorkflow(instance_id=instance_id, reason=reason)))

    def pause(self, instance_id: str, reason: str = "") -> None:
        """Hold the instance: results are still recorded, its code waits for resume()."""
        self._send(self._record(PauseWorkflow(instance_id=instance_id, reason=reason)))

    def resume(self, instance_id: str, reason: str = "") -> None:
        """Continue a paused instance, or retry a suspended one after a code fix."""
        self._send(self._record(ResumeWorkflow(instance_id=instance_id, reason=reason)))

    def restart(
        self,
        instance_id: str,
        from_step: str | None = None,
        reason: str = "",
    ) -> Handle:
        """Run the instance again from the start, or from a named step (the results
        recorded before it are kept). Its next completion is read with the handle."""
        self._ensure_watcher()
        command = RestartWorkflow(instance_id=instance_id, from_step=from_step, reason=reason)
        self._send(self._record(command))
        return Handle(self, instance_id, time.time())

    def _record(self, command: Command, headers: telemetry.KafkaHeaders | None = None) -> Record:
        return Record(
            self.topics.commands,
            codec.encode(command),
            key=command.instance_id.encode(),
            headers=headers,
        )

    def _send(self, *records: Record) -> None:
        """Produce commands and wait for Kafka to acknowledge them: DeliveryError when it
        does not (the commands may or may not have arrived; sending again is safe)."""
        deliver(self._producer, records, self.send_timeout)

    # -- results and history ---------------------------------------------------------

    def completion(
        self, instance_id: str, timeout: float | None = 60.0, since: float | None = None
    ) -> Completion:
        """The instance's completion record, waiting up to `timeout` seconds."""
        watcher = self._watcher
        if watcher is not None:
            found = watcher.completions.get(instance_id)
            if found is not None:
                return found
        if since is None or watcher is None:
            # Not started by this client: it may have finished long ago, so look back.
            # The watcher starts first: a completion landing during the scan is then
            # past the scan's end but not before the watcher's start, so none is missed.
            watcher = self._ensure_watcher()
            found = self._find_completion(instance_id)
            if found is not None:
                return found
        found = watcher.wait(instance_id, timeout)
        if found is None:
            raise ResultTimeout(f"no completion for {instance_id!r} within {timeout} s")
        return found

    def result(
        self, instance_id: str, timeout: float | None = 60.0, since: float | None = None
    ) -> Any:
        """The output of a completed instance; WorkflowError for any other ending."""
        completion = self.completion(instance_id, timeout, since)
        if completion.status != "COMPLETED":
            raise WorkflowError(instance_id, completion.status, completion.error)
        return load(completion.output, "the workflow output")

    def history(self, instance_id: str, wait_final: float = 0.0) -> list[HistoryEvent]:
        """Every history event of an instance, in order. With `wait_final` > 0, read
        again until a final event appears or that many seconds pass."""
        deadline = time.monotonic() + wait_final
        while True:
            events = [
                e
                for e in self._scan(self.topics.history, instance_id)
                if getattr(e, "instance_id", None) == instance_id
            ]
            if (
                not wait_final
                or any(type(e).__name__ in _FINAL_EVENTS for e in events)
                or time.monotonic() > deadline
            ):
                return events
            time.sleep(0.2)

    def _find_completion(self, instance_id: str) -> Completion | None:
        found = None
        for record in self._scan(self.topics.completions, instance_id):
            if isinstance(record, Completion) and record.instance_id == instance_id:
                found = record
        return found

    def _scan(self, topic: str, instance_id: str) -> list[Any]:
        """Decode the records of one key, reading its partition to the current end."""
        key = instance_id.encode()
        partition = murmur2_partition(key, self._partition_count(topic))
        consumer = clients.consumer(self.settings, None)
        try:
            records = []
            for messages in read_to_end(consumer, topic, [partition]):
                for message in messages:
                    if message.key() == key:
                        try:
                            records.append(codec.decode(message.value() or b""))
                        except codec.CodecError:
                            continue
            return records
        finally:
            consumer.close()

    def _partition_count(self, topic: str) -> int:
        if topic not in self._partitions:
            partitions = topic_partitions(self._producer, topic)
            if not partitions:
                raise ReplayflowError(
                    f"topic {topic!r} does not exist: run `replayflow topics apply`"
                )
            self._partitions[topic] = len(partitions)
        return self._partitions[topic]

    def _ensure_watcher(self) -> _CompletionWatcher:
        with self._lock:
            if self._watcher is None:
                topic = self.topics.completions
                self._watcher = _CompletionWatcher(
                    self.settings, topic, self._partition_count(topic)
                )
                self._watcher.start()
            return self._watcher

    def close(self) -> None:
        self._producer.flush(30)
        if self._watcher is not None:
            self._watcher.close()
            self._watcher.join(5)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """The same operations for asyncio code; blocking work runs in threads."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._client = Client(settings)

    async def start(
        self,
        workflow: str | WorkflowDef,
        input: Any = None,
        id: str | None = None,
        version: str | None = None,
    ) -> Handle:
        return await asyncio.to_thread(self._client.start, workflow, input, id, version)

    async def start_many(
        self, starts: Sequence[tuple[str | WorkflowDef, Any, str | None]]
    ) -> list[Handle]:
        return await asyncio.to_thread(self._client.start_many, starts)

    async def send_event(self, instance_id: str, name: str, payload: Any = None) -> None:
        await asyncio.to_thread(self._client.send_event, instance_id, name, payload)

    async def cancel(self, instance_id: str, reason: str = "") -> None:
        await asyncio.to_thread(self._client.cancel, instance_id, reason)

    async def terminate(self, instance_id: str, reason: str = "") -> None:
        await asyncio.to_thread(self._client.terminate, instance_id, reason)

    async def result(self, instance_id: str, timeout: float | None = 60.0) -> Any:
        return await asyncio.to_thread(self._client.result, instance_id, timeout)

    async def history(self, instance_id: str) -> list[HistoryEvent]:
        return await asyncio.to_thread(self._client.history, instance_id)

    async def pause(self, instance_id: str, reason: str = "") -> None:
        await asyncio.to_thread(self._client.pause, instance_id, reason)

    async def resume(self, instance_id: str, reason: str = "") -> None:
        await asyncio.to_thread(self._client.resume, instance_id, reason)

    async def restart(
        self, instance_id: str, from_step: str | None = None, reason: str = ""
    ) -> Handle:
        return await asyncio.to_thread(self._client.restart, instance_id, from_step, reason)

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)


__all__ = [
    "FINAL_STATUSES",
    "AsyncClient",
    "Client",
    "DeliveryError",
    "Handle",
    "ResultTimeout",
]
