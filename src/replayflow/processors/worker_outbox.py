"""The worker's results on their way to replayflow.commands: none is ever dropped, and a
task counts as done (processors/task_offsets.py) only once its result is acknowledged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message

from replayflow import telemetry
from replayflow.core.clip import MAX_ECHO, clip
from replayflow.kafka.transactional import fatal_error
from replayflow.processors.task_offsets import TaskOffsets

log = logging.getLogger("replayflow.worker")


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
class Result:
    """A step's outcome on its way to replayflow.commands."""

    instance_id: str
    value: bytes
    headers: telemetry.KafkaHeaders | None
    task_at: tuple[int, int] | None  # (partition, offset) of its task


class Outbox:
    """Results not yet acknowledged by the broker, so none is ever dropped: a failed
    delivery goes back in line, and a producer that is replaced hands over all of its
    results. The task's offset stays in flight until its result is acknowledged."""

    def __init__(self, offsets: TaskOffsets, stats: WorkerStats) -> None:
        self._offsets = offsets
        self._stats = stats
        self._pending: dict[int, Result] = {}
        self._again: list[int] = []
        self._next = 0
        self.producer_failed: str | None = None  # why the producer must be replaced

    def add(self, result: Result) -> int:
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

    def unacknowledged(self) -> bool:
        """Whether results wait for the broker's acknowledgement."""
        return bool(self._pending)

    def later(self, number: int) -> None:
        self._again.append(number)

    def take_again(self) -> list[int]:
        again, self._again = self._again, []
        return [n for n in again if n in self._pending]

    def take_all(self) -> list[int]:
        """Everything still unacknowledged, for a new producer."""
        self._again = []
        return sorted(self._pending)

    def get(self, number: int) -> Result | None:
        return self._pending.get(number)
