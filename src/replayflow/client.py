"""The Python client: start workflows, send events, cancel, terminate, read results and
history. Everything it does is a record on a topic, so any language can do the same
(schemas/README.md).

    client = rf.Client()                                  # KAFKA_BOOTSTRAP, namespace
    handle = client.start("checkout", {"id": 1}, id="order-1")   # idempotent by id
    print(handle.result(timeout=60))
    client.schedules.create("nightly", "report", rf.Schedule(cron="0 2 * * *"))
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from replayflow import codec, telemetry
from replayflow.client_schedules import AsyncSchedules, ClientSchedules
from replayflow.client_watchers import CompletionWatcher, ReplyWatcher, ServedCache, scan_key
from replayflow.core.definitions import WorkflowDef
from replayflow.core.errors import (
    CommandRejected,
    ReplayflowError,
    UnknownInstance,
    UnknownWorkflow,
    rejection,
    workflow_error,
)
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
from replayflow.core.replies import REQUEST_ID_HEADER, Reply
from replayflow.core.state import FINAL_STATUSES
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.config import FLUSH_TIMEOUT
from replayflow.kafka.outage import KafkaUnreachable
from replayflow.kafka.partition import murmur2_partition
from replayflow.kafka.producing import DeliveryError, Record, deliver
from replayflow.processors.served import Served
from replayflow.settings import Settings
from replayflow.streams import AsyncStream, Stream
from replayflow.topics import Topics

_FINAL_EVENTS = {
    "WorkflowCompleted",
    "WorkflowFailed",
    "WorkflowCancelled",
    "WorkflowTerminated",
    "WorkflowTimedOut",
}
_FINAL = {str(getattr(s, "value", s)) for s in FINAL_STATUSES}


class ResultTimeout(ReplayflowError, TimeoutError):
    """No completion arrived in time; the instance may still be running."""


class Handle:
    """A started (or restarted) instance. `outcome` is the orchestrator's answer to the
    start: ACCEPTED (a new instance), UNCHANGED (it existed: its `status` then), or None
    when no orchestrator answered in time (the start waits on the log)."""

    def __init__(
        self,
        client: Client,
        instance_id: str,
        started_at: float,
        reply: Reply | None = None,
        after: int | None = None,
    ) -> None:
        self._client = client
        self.id = instance_id
        self.started_at = started_at
        self.outcome = reply.outcome if reply is not None else None
        self.status = reply.status if reply is not None else None
        # Completions of this instance the client had seen when the handle was made: a
        # new instance's or a restarted one's result is the next one.
        self._after = after

    def result(self, timeout: float | None = 60.0) -> Any:
        return self._client._output(self.completion(timeout))

    def completion(self, timeout: float | None = 60.0) -> Completion:
        return self._client._completion_of(self, timeout)

    def stream(self, name: str, **options: Any) -> Stream:
        """Read a named stream of this instance live (see Client.stream)."""
        return self._client.stream(self.id, name, **options)

    def __repr__(self) -> str:
        return f"Handle({self.id!r})"


class Client:
    def __init__(
        self,
        settings: Settings | None = None,
        watch_completions: bool = True,
        send_timeout: float = FLUSH_TIMEOUT,
        *,
        confirm: bool = True,
        confirm_timeout: float = 10.0,
        check: bool = True,
    ) -> None:
        """With watch_completions (the default) the client follows the completions
        topic from its first start, so results of what it started are never missed.
        A long-running sender that never reads results (an API process) turns it off.
        Every command is acknowledged by Kafka within `send_timeout` seconds, or the
        call raises DeliveryError.

        Fail fast: with `check`, a start of a workflow (or version) no orchestrator runs
        raises UnknownWorkflow before anything is sent. With `confirm`, each command
        waits up to `confirm_timeout` seconds for the orchestrator's answer: a rejected
        one raises (UnknownWorkflow, UnknownInstance, CommandRejected); without an
        answer in time (no orchestrator runs) the command stays on the log and runs
        when one starts. Raises KafkaUnreachable when no broker answers within
        settings.connect_timeout."""
        self.settings = settings or Settings.from_env()
        self.send_timeout = send_timeout
        self.confirm = confirm
        self.confirm_timeout = confirm_timeout
        self.check = check
        self.topics = Topics(self.settings)
        clients.check_reachable(self.settings)
        self._producer = clients.producer(self.settings)
        self._partitions: dict[str, int] = {}
        self._watcher: CompletionWatcher | None = None
        self._replies: ReplyWatcher | None = None
        self._served = ServedCache(self.settings)
        self._watch = watch_completions
        self._lock = threading.Lock()
        # create, update, delete, pause, unpause, trigger, backfill, describe, list
        self.schedules = ClientSchedules(
            self.settings, lambda r: deliver(self._producer, [r], self.send_timeout), self._scan
        )

    # -- commands --------------------------------------------------------------------

    def start(
        self,
        workflow: str | WorkflowDef,
        input: Any = None,
        id: str | None = None,
        version: str | None = None,
    ) -> Handle:
        """Start an instance. With an id that exists already nothing changes (the first
        start wins) and the handle reads that instance's result, also one that ended
        long ago. UnknownWorkflow when no orchestrator runs `workflow`."""
        return self.start_many([(workflow, input, id)], version=version)[0]

    def start_many(
        self,
        starts: Iterable[tuple[Any, ...]],
        version: str | None = None,
    ) -> list[Handle]:
        """Start several instances: (workflow, input, id) each, or (workflow, input, id,
        version) to give each its own version. A start that is refused raises (its
        `index` in `starts` is on the exception); the others were accepted."""
        watcher = self._ensure_watcher() if self._watch else None
        commands = []
        for workflow, input, instance_id, *own in starts:
            name = workflow.name if isinstance(workflow, WorkflowDef) else workflow
            instance_id = check_instance_id(instance_id or f"{name}-{uuid.uuid4().hex}")
            command = StartWorkflow(
                instance_id=instance_id,
                workflow=name,
                input=dump(input, "the workflow input"),
                version=own[0] if own and own[0] is not None else version,
            )
            commands.append(command)
        if self.check:
            self._served.check(commands)
        seen = [0 if watcher is None else watcher.seen(c.instance_id) for c in commands]
        now = time.time()
        headers = [telemetry.start_headers(c.workflow, c.instance_id) for c in commands]
        replies = self._send(list(zip(commands, headers, strict=True)))
        handles = []
        for index, (start, reply) in enumerate(zip(commands, replies, strict=True)):
            if reply is not None and reply.outcome == "REJECTED":
                raise _rejected(start, reply, index if len(commands) > 1 else None)
            after = seen[index] if reply is not None and reply.outcome == "ACCEPTED" else None
            handles.append(Handle(self, start.instance_id, now, reply, after))
        return handles

    def send_event(self, instance_id: str, name: str, payload: Any = None) -> Reply | None:
        """Send an event; UnknownInstance when there is no such instance."""
        event = SendEvent(
            instance_id=instance_id, name=name, payload=dump(payload, "the event payload")
        )
        return self._command(event)

    def cancel(self, instance_id: str, reason: str = "") -> Reply | None:
        return self._command(CancelWorkflow(instance_id=instance_id, reason=reason))

    def terminate(self, instance_id: str, reason: str = "") -> Reply | None:
        return self._command(TerminateWorkflow(instance_id=instance_id, reason=reason))

    def pause(self, instance_id: str, reason: str = "") -> Reply | None:
        """Hold the instance: results are still recorded, its code waits for resume()."""
        return self._command(PauseWorkflow(instance_id=instance_id, reason=reason))

    def resume(self, instance_id: str, reason: str = "") -> Reply | None:
        """Continue a paused instance, or retry a suspended one after a code fix."""
        return self._command(ResumeWorkflow(instance_id=instance_id, reason=reason))

    def restart(
        self,
        instance_id: str,
        from_step: str | None = None,
        reason: str = "",
    ) -> Handle:
        """Run the instance again from the start, or from a named step (the results
        recorded before it are kept). Its next completion is read with the handle."""
        watcher = self._ensure_watcher()
        seen = watcher.seen(instance_id)
        command = RestartWorkflow(instance_id=instance_id, from_step=from_step, reason=reason)
        reply = self._command(command)
        return Handle(self, instance_id, time.time(), reply, after=seen)

    def _command(self, command: Command) -> Reply | None:
        """Send one command; the orchestrator's reply (None without one in time)."""
        [reply] = self._send([(command, None)])
        if reply is not None and reply.outcome == "REJECTED":
            raise _rejected(command, reply, None)
        return reply

    def _send(
        self, commands: Sequence[tuple[Command, telemetry.KafkaHeaders | None]]
    ) -> list[Reply | None]:
        """Produce commands and wait for Kafka to acknowledge them (DeliveryError when it
        does not: the commands may or may not have arrived; sending again is safe), then,
        when confirming, for the orchestrator's replies."""
        replies = self._ensure_replies() if self._confirming() else None
        if replies is None:
            deliver(self._producer, [self._record(c, h) for c, h in commands], self.send_timeout)
            return [None] * len(commands)
        ids = [uuid.uuid4().hex for _ in commands]
        replies.expect(ids)
        records = [
            self._record(c, [*_header_list(h), (REQUEST_ID_HEADER, i.encode())])
            for (c, h), i in zip(commands, ids, strict=True)
        ]
        deliver(self._producer, records, self.send_timeout)
        got = replies.wait(ids, self.confirm_timeout)
        return [got.get(i) for i in ids]

    def _confirming(self) -> bool:
        # Nothing answers where no orchestrator ever said what it runs (a fresh
        # namespace, or orchestrators older than replies): do not wait for an answer.
        return self.confirm and (not self.check or self._served.get().known)

    def _record(self, command: Command, headers: Any = None) -> Record:
        return Record(
            self.topics.commands,
            codec.encode(command),
            key=command.instance_id.encode(),
            headers=headers,
        )

    def workflows(self, refresh: bool = False) -> Served:
        """The workflow versions the orchestrators run and the deployed documents."""
        return self._served.get(refresh)

    # -- results and history ---------------------------------------------------------

    def completion(
        self, instance_id: str, timeout: float | None = 60.0, since: float | None = None
    ) -> Completion:
        """The instance's latest completion record, waiting up to `timeout` seconds for
        one. It may have ended long ago: the completions topic is read back (the
        instance's partition) unless `since` says it was started after this client
        began watching."""
        watcher = self._ensure_watcher()
        found = watcher.latest(instance_id)
        if found is None and since is None:
            # The watcher started first: a completion landing during the scan is past
            # the scan's end but not before the watcher's start, so none is missed.
            found = self._find_completion(instance_id)
        if found is None:
            found = watcher.wait(instance_id, timeout)
        if found is None:
            raise ResultTimeout(f"no completion for {instance_id!r} within {timeout} s")
        return found

    def result(
        self, instance_id: str, timeout: float | None = 60.0, since: float | None = None
    ) -> Any:
        """The output of a completed instance. Any other ending raises WorkflowError,
        which is also the error that ended it where that was replayflow's
        (rf.EventTimeout, rf.StepFailed, rf.Cancelled)."""
        return self._output(self.completion(instance_id, timeout, since))

    def _output(self, completion: Completion) -> Any:
        if completion.status != "COMPLETED":
            raise workflow_error(completion.instance_id, completion.status, completion.error)
        return load(completion.output, "the workflow output")

    def _completion_of(self, handle: Handle, timeout: float | None) -> Completion:
        if handle._after is None or (handle.status in _FINAL and handle.outcome != "ACCEPTED"):
            # Existed before (or unconfirmed): its completion may be long past.
            return self.completion(handle.id, timeout)
        found = self._ensure_watcher().wait(handle.id, timeout, after=handle._after)
        if found is None:
            raise ResultTimeout(f"no completion for {handle.id!r} within {timeout} s")
        return found

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

    def stream(
        self,
        instance_id: str,
        name: str,
        *,
        start: int | str = 0,
        settled: bool = False,
        follow: bool = True,
        idle_timeout: float | None = None,
    ) -> Stream:
        """Iterate a named stream of an instance, live and in order (replayflow.streams):
        from `start` (an offset, 0 the first; or a reader's or an item's `cursor`, to go
        on right after it), until it closes or the instance ends."""
        return Stream(
            self.settings,
            instance_id,
            name,
            start=start,
            settled=settled,
            follow=follow,
            idle_timeout=idle_timeout,
        )

    def _find_completion(self, instance_id: str) -> Completion | None:
        found = None
        for record in self._scan(self.topics.completions, instance_id):
            if isinstance(record, Completion) and record.instance_id == instance_id:
                found = record
        return found

    def _scan(self, topic: str, instance_id: str) -> list[Any]:
        """Decode the records of one key (an instance id, or a schedule's key), reading
        its partition to the current end."""
        key = instance_id.encode()
        partition = murmur2_partition(key, self._partition_count(topic))
        return scan_key(self.settings, topic, partition, key)

    def _partition_count(self, topic: str) -> int:
        if topic not in self._partitions:
            partitions = topic_partitions(self._producer, topic)
            if not partitions:
                raise ReplayflowError(
                    f"topic {topic!r} does not exist: run `replayflow topics apply`"
                )
            self._partitions[topic] = len(partitions)
        return self._partitions[topic]

    def _ensure_watcher(self) -> CompletionWatcher:
        with self._lock:
            if self._watcher is None:
                topic = self.topics.completions
                self._watcher = CompletionWatcher(
                    self.settings, topic, self._partition_count(topic)
                )
                self._watcher.start()
            return self._watcher

    def _ensure_replies(self) -> ReplyWatcher:
        with self._lock:
            if self._replies is None:
                topic = self.topics.replies
                self._replies = ReplyWatcher(self.settings, topic, self._partition_count(topic))
                self._replies.start()
            return self._replies

    def close(self) -> None:
        self._producer.flush(30)
        for follower in (self._watcher, self._replies):
            if follower is not None:
                follower.close()
                follower.join(5)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _header_list(headers: Any) -> list[tuple[str, Any]]:
    if not headers:
        return []
    return list(headers.items()) if isinstance(headers, dict) else list(headers)


def _rejected(command: Command, reply: Reply, index: int | None) -> CommandRejected:
    error = rejection(
        command.instance_id, type(command).__name__, reply.reason, reply.error_type or "Rejected"
    )
    error.index = index
    return error


class AsyncClient:
    """The same operations for asyncio code; blocking work runs in threads."""

    def __init__(self, settings: Settings | None = None, **options: Any) -> None:
        self._client = Client(settings, **options)
        self.schedules = AsyncSchedules(self._client.schedules)  # await .create(...), ...

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

    async def send_event(self, instance_id: str, name: str, payload: Any = None) -> Reply | None:
        return await asyncio.to_thread(self._client.send_event, instance_id, name, payload)

    async def cancel(self, instance_id: str, reason: str = "") -> Reply | None:
        return await asyncio.to_thread(self._client.cancel, instance_id, reason)

    async def terminate(self, instance_id: str, reason: str = "") -> Reply | None:
        return await asyncio.to_thread(self._client.terminate, instance_id, reason)

    async def result(self, instance_id: str, timeout: float | None = 60.0) -> Any:
        return await asyncio.to_thread(self._client.result, instance_id, timeout)

    async def history(self, instance_id: str) -> list[HistoryEvent]:
        return await asyncio.to_thread(self._client.history, instance_id)

    async def stream(self, instance_id: str, name: str, **options: Any) -> AsyncStream:
        """`async for item in await client.stream(id, "tokens")`; options as Client.stream."""
        stream = await asyncio.to_thread(self._client.stream, instance_id, name, **options)
        return AsyncStream(stream)

    async def pause(self, instance_id: str, reason: str = "") -> Reply | None:
        return await asyncio.to_thread(self._client.pause, instance_id, reason)

    async def resume(self, instance_id: str, reason: str = "") -> Reply | None:
        return await asyncio.to_thread(self._client.resume, instance_id, reason)

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
    "CommandRejected",
    "DeliveryError",
    "Handle",
    "KafkaUnreachable",
    "ResultTimeout",
    "UnknownInstance",
    "UnknownWorkflow",
]
