"""Where step attempts write their streams: replayflow.streams in a worker
(KafkaStreamSink), a list in memory in rf.testing (MemoryStreamLog). And the built-in
steps a workflow body writes through (`ctx.stream(name).write(value)`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message

from replayflow import codec
from replayflow.core.definitions import Registry, StepDef, step
from replayflow.core.stream_records import StreamRecord
from replayflow.core.streams import CLOSE_STEP, WRITE_STEP
from replayflow.execution import current_step
from replayflow.kafka import clients
from replayflow.kafka.producing import Record, produce
from replayflow.settings import Settings
from replayflow.topics import Topics

log = logging.getLogger("replayflow.streams")


class KafkaStreamSink:
    """Produces stream records keyed by instance id, with its own producer: a value
    waits at most ~1 ms in the producer (linger), not the 5 ms commands may wait, and
    stream traffic never delays a step's result. One producer and one partition per
    instance keep an attempt's values, and its end marker, in the order written."""

    def __init__(self, settings: Settings, producer: Any = None) -> None:
        self.topic = Topics(settings).streams
        # Nagle off: a small produce request sent while the last one's ACK is pending
        # would otherwise wait for the broker's delayed ACK.
        self._producer = producer or clients.producer(
            settings, **{"linger.ms": 1, "socket.nagle.disable": True}
        )
        self._lock = threading.Lock()
        self.failed = 0

    def emit(self, record: StreamRecord) -> None:
        produce(
            self._producer,
            Record(self.topic, codec.encode(record), key=record.instance_id.encode()),
            self._delivered,
        )

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            with self._lock:
                self.failed += 1
            log.error("a stream record was not delivered: %s", error)

    def poll(self) -> None:
        self._producer.poll(0)

    def pending(self) -> int:
        """Records emitted and not yet acknowledged."""
        return len(self._producer)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait until every record emitted so far is on the log; how many are not."""
        return int(self._producer.flush(timeout))


class MemoryStreamLog:
    """Stream records in memory, per instance, in the order written; offsets are list
    positions. Subscribers see each record as it is written (a test reading live)."""

    def __init__(self) -> None:
        self.records: dict[str, list[StreamRecord]] = {}
        self._subscribers: list[Callable[[int, StreamRecord], None]] = []

    def emit(self, record: StreamRecord) -> None:
        log_ = self.records.setdefault(record.instance_id, [])
        log_.append(record)
        for subscriber in list(self._subscribers):
            subscriber(len(log_) - 1, record)

    def subscribe(self, callback: Callable[[int, StreamRecord], None]) -> None:
        self._subscribers.append(callback)

    def of(self, instance_id: str, start: int = 0) -> list[tuple[int, StreamRecord]]:
        records = self.records.get(instance_id, [])
        return [(offset, records[offset]) for offset in range(max(start, 0), len(records))]


@step(name=WRITE_STEP)
def write_step(stream: str, value: Any) -> None:
    current_step().stream(stream).write(value)


@step(name=CLOSE_STEP)
def close_step(stream: str) -> None:
    current_step().stream(stream).close()


STREAM_STEPS: tuple[StepDef, ...] = (write_step, close_step)


def register_stream_steps(registry: Registry) -> None:
    """Add the built-in stream steps that `registry` does not define itself."""
    registry.add([s for s in STREAM_STEPS if s.name not in registry.steps])
