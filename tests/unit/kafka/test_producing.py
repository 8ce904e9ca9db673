"""deliver(): produce, flush, and raise when Kafka did not acknowledge every record.
A fake producer stands in for confluent_kafka's: it keeps records and reports
deliveries the way librdkafka does, from flush()."""

from __future__ import annotations

from typing import Any

import pytest

from replayflow.core.errors import ReplayflowError
from replayflow.kafka.producing import DeliveryError, Record, deliver


class _Error:
    def __init__(self, text: str) -> None:
        self.text = text

    def str(self) -> str:
        return self.text


class _Message:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


class FakeProducer:
    """Accepts `room` records before BufferError; fails records on `failing` topics;
    with `stuck`, flush() never reports deliveries (a broker that does not answer)."""

    def __init__(self, room: int = 1000, failing: tuple[str, ...] = (), stuck: bool = False):
        self.room = room
        self.failing = failing
        self.stuck = stuck
        self.queued: list[tuple[Record, Any]] = []
        self.written: list[Record] = []

    def produce(self, topic: str, *, key: Any, value: Any, headers: Any, on_delivery: Any) -> None:
        if len(self.queued) >= self.room:
            raise BufferError("queue full")
        self.queued.append((Record(topic, value, key=key, headers=headers), on_delivery))

    def poll(self, timeout: float) -> int:
        return self._serve()

    def flush(self, timeout: float) -> int:
        self._serve()
        return len(self.queued)

    def _serve(self) -> int:
        if self.stuck:
            return 0
        served = 0
        while self.queued:
            record, callback = self.queued.pop(0)
            if record.topic in self.failing:
                callback(_Error("Broker: topic authorization failed"), _Message(record.topic))
            else:
                self.written.append(record)
                callback(None, _Message(record.topic))
            served += 1
        return served


def test_records_are_written_in_order() -> None:
    producer = FakeProducer()
    deliver(producer, [Record("t", b"1", key=b"a"), Record("t", b"2", key=b"b")])
    assert [r.value for r in producer.written] == [b"1", b"2"]


def test_a_full_queue_is_waited_on_not_lost() -> None:
    producer = FakeProducer(room=1)
    deliver(producer, [Record("t", bytes([i])) for i in range(5)])
    assert len(producer.written) == 5


def test_a_failed_delivery_raises_with_the_reason() -> None:
    producer = FakeProducer(failing=("secret",))
    with pytest.raises(DeliveryError, match="secret: Broker: topic authorization failed"):
        deliver(producer, [Record("t", b"ok"), Record("secret", b"1"), Record("secret", b"2")])
    assert [r.value for r in producer.written] == [b"ok"]


def test_an_unacknowledged_record_raises_after_the_timeout() -> None:
    with pytest.raises(DeliveryError, match=r"did not acknowledge 2 record\(s\) within 0.1 s"):
        deliver(FakeProducer(stuck=True), [Record("t", b"1"), Record("t", b"2")], timeout=0.1)


def test_delivery_errors_are_replayflow_errors() -> None:
    assert issubclass(DeliveryError, ReplayflowError)
