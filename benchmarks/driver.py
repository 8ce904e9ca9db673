"""The benchmark's client: start instances and watch their completions, cheaply.

The client shares the machine's two cores with the broker, the orchestrator and the
worker, so every microsecond it spends is taken from them. It therefore encodes each
start once, produces without a delivery callback per record (librdkafka reports only
failures), never waits on a per-instance handle, and reads completions in batches:
one poll that blocks until the first record arrives, then whatever else is already
fetched (a batch `consume(n, timeout)` would wait the whole timeout for n records).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, TopicPartition

from replayflow import codec
from replayflow.core.messages import Completion, StartWorkflow
from replayflow.kafka import clients
from replayflow.kafka.reading import watermarks
from replayflow.settings import Settings


def encode_start(instance_id: str, workflow: str, n: int) -> bytes:
    return codec.encode(StartWorkflow(instance_id=instance_id, workflow=workflow, input=str(n)))


@dataclass
class Done:
    read_at: float  # wall-clock seconds when this client read it
    ok: bool
    detail: str  # why not ok, or ""


def engine_completion(expected: dict[str, str]) -> Callable[[Message], tuple[str, Done]]:
    """Reads an engine Completion and checks its output against `expected`."""

    def check(message: Message) -> tuple[str, Done]:
        now = time.time()
        completion = codec.decode(message.value() or b"")
        assert isinstance(completion, Completion)
        want = expected.get(completion.instance_id)
        if completion.status != "COMPLETED":
            return completion.instance_id, Done(now, False, f"ended {completion.status}")
        if want is not None and completion.output != want:
            return completion.instance_id, Done(
                now, False, f"output {completion.output!r}, expected {want!r}"
            )
        return completion.instance_id, Done(now, True, "")

    return check


class Starter:
    """Produces pre-encoded start records; remembers when each was produced."""

    def __init__(self, settings: Settings, topic: str, linger_ms: int = 1) -> None:
        self.topic = topic
        self.failures: list[str] = []
        self.produced_at: dict[str, float] = {}
        self._producer = clients.producer(
            settings,
            **{
                "linger.ms": linger_ms,
                "delivery.report.only.error": True,
                "on_delivery": self._failed,
            },
        )

    def _failed(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failures.append(f"{message.key()!r}: {error.str()}")

    def send(self, records: Iterable[tuple[str, bytes]]) -> None:
        """Produce (instance id, value) records, keyed by the id; no flush."""
        produce = self._producer.produce
        topic = self.topic
        produced_at = self.produced_at
        for instance_id, value in records:
            key = instance_id.encode()
            produced_at[instance_id] = time.time()
            while True:
                try:
                    produce(topic, value, key)
                    break
                except BufferError:
                    self._producer.poll(0.01)
        self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        left = self._producer.flush(timeout)
        if left or self.failures:
            raise RuntimeError(
                f"starts not delivered: {left} unacknowledged, failures: {self.failures[:3]}"
            )


class Watcher(threading.Thread):
    """Follows a topic of completions from its end at construction; `wait()` returns
    once every awaited id was read."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        partitions: int,
        read: Callable[[Message], tuple[str, Done]],
    ) -> None:
        super().__init__(name="bench-watcher", daemon=True)
        self._consumer = clients.consumer(settings, None)
        ends = [
            TopicPartition(topic, p, watermarks(self._consumer, topic, p)[1])
            for p in range(partitions)
        ]
        self._consumer.assign(ends)
        self._read = read
        self.done: dict[str, Done] = {}
        self.errors: list[str] = []
        self._awaited: set[str] = set()
        self._all_done = threading.Event()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def expect(self, ids: Iterable[str]) -> None:
        with self._lock:
            self._awaited = {i for i in ids if i not in self.done}
            self._all_done.clear()
            if not self._awaited:
                self._all_done.set()

    def run(self) -> None:
        consumer = self._consumer
        while not self._stopping.is_set():
            first = consumer.poll(0.1)
            if first is None:
                continue
            messages = [first, *consumer.consume(10_000, timeout=0)]
            with self._lock:
                for message in messages:
                    if message.error() is not None:
                        self.errors.append(str(message.error()))
                        continue
                    instance_id, done = self._read(message)
                    self.done.setdefault(instance_id, done)
                    self._awaited.discard(instance_id)
                if not self._awaited:
                    self._all_done.set()
        consumer.close()

    def wait(self, timeout: float, alive: Callable[[], Any] | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._all_done.wait(1.0):
                return True
            if alive is not None:
                alive()
        return False

    def missing(self) -> int:
        with self._lock:
            return len(self._awaited)

    def close(self) -> None:
        self._stopping.set()
        self.join(5)


def offered(
    starter: Starter,
    records: list[tuple[str, bytes]],
    rate: float,
) -> float:
    """Produce `records` at `rate` per second (each at its due time); returns the
    rate achieved."""
    began = time.time()
    for i, record in enumerate(records):
        delay = began + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        starter.send((record,))
    starter.flush()
    return len(records) / max(1e-9, time.time() - began)
