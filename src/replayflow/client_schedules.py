"""`client.schedules`: the schedule operations (core/schedule_ops.py) over Kafka.

Commands go to replayflow.commands keyed `~schedule:<id>`, acknowledged by Kafka before
the call returns. `describe` folds the schedule's facts from replayflow.history (one
partition, read to its end); `list` reads every partition of the history topic, which
grows with the log: on a large deployment ask the HTTP API (its read model keeps one
row per schedule) instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from replayflow import codec
from replayflow.core.entities import route
from replayflow.core.schedule_messages import ScheduleCommand, ScheduleEvent
from replayflow.core.schedule_ops import ScheduleOps
from replayflow.core.schedule_state import SCHEDULE_PREFIX, schedule_key
from replayflow.core.schedule_view import ScheduleDescription, describe, fold
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.membership import close_consumer
from replayflow.kafka.producing import Record
from replayflow.kafka.reading import read_to_end
from replayflow.settings import Settings
from replayflow.topics import Topics


class ClientSchedules(ScheduleOps):
    def __init__(
        self,
        settings: Settings,
        send: Callable[[Record], None],
        scan: Callable[[str, str], list[Any]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`send` produces a record and waits for Kafka; `scan(topic, key)` decodes the
        records of one key (the client's own helpers); `clock` stamps triggers and the
        next fire times of descriptions (seconds, as time.time)."""
        self._clock = clock
        self._settings = settings
        self._topics = Topics(settings)
        self._send_record = send
        self._scan = scan

    def _send(self, command: ScheduleCommand) -> None:
        record_key = route(command).record_key
        self._send_record(Record(self._topics.commands, codec.encode(command), key=record_key))

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def describe(self, schedule_id: str, next: int = 5) -> ScheduleDescription | None:
        facts = self._scan(self._topics.history, schedule_key(schedule_id))
        row = fold(facts).get(schedule_id)
        if row is None or row["deleted"]:
            return None
        return describe(row, self._now_ms(), next)

    def history(self, schedule_id: str) -> list[ScheduleEvent]:
        """The schedule's facts, in order."""
        facts = self._scan(self._topics.history, schedule_key(schedule_id))
        return [f for f in facts if isinstance(f, ScheduleEvent)]

    def list(self, next: int = 1) -> list[ScheduleDescription]:
        rows = fold(self._every_fact())
        now = self._now_ms()
        return [describe(row, now, next) for _, row in sorted(rows.items()) if not row["deleted"]]

    def _every_fact(self) -> Iterator[Any]:
        topic = self._topics.history
        consumer = clients.consumer(self._settings, None)
        prefix = SCHEDULE_PREFIX.encode()
        try:
            partitions = topic_partitions(consumer, topic)
            for messages in read_to_end(consumer, topic, partitions):
                for message in messages:
                    if (message.key() or b"").startswith(prefix):
                        try:
                            yield codec.decode(message.value() or b"")
                        except codec.CodecError:
                            continue
        finally:
            close_consumer(consumer)


class AsyncSchedules:
    """`AsyncClient.schedules`: the same operations as coroutines (each runs the
    blocking call in a thread)."""

    def __init__(self, schedules: ClientSchedules) -> None:
        self._schedules = schedules

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._schedules, name)
        if name.startswith("_") or not callable(method):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call
