"""ConsumerLiveness on a fake consumer: positions, committed offsets and watermarks
as librdkafka reports them, and a clock the test moves."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from replayflow.kafka.liveness import ConsumerLiveness

TOPIC = "ns.replayflow.tasks"


class FakeConsumer:
    def __init__(self) -> None:
        self.assigned = [0, 1]
        self.positions = {0: 10, 1: 5}
        self.committed_at = {0: 10, 1: 5}
        self.ends = {0: 10, 1: 5}
        self.down = False

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in self.assigned]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(TOPIC, tp.partition, self.positions[tp.partition]) for tp in partitions
        ]

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [
            TopicPartition(TOPIC, tp.partition, self.committed_at[tp.partition])
            for tp in partitions
        ]

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        if self.down:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "down"))
        return 0, self.ends[tp.partition]


def watch(consumer: Any) -> tuple[ConsumerLiveness, list[float]]:
    now = [0.0]
    return ConsumerLiveness(
        consumer, TOPIC, stall_after=30, check_every=5, clock=lambda: now[0]
    ), now


def advance(liveness: ConsumerLiveness, now: list[float], seconds: float) -> list[str]:
    """Move the clock in steps of one second; the reasons given on the way."""
    found = []
    for _ in range(int(seconds)):
        now[0] += 1
        reason = liveness.stalled()
        if reason is not None:
            found.append(reason)
    return found


def test_a_consumer_with_nothing_waiting_is_never_stalled() -> None:
    consumer = FakeConsumer()
    liveness, now = watch(consumer)
    assert advance(liveness, now, 300) == []


def test_a_consumer_that_keeps_moving_is_not_stalled() -> None:
    consumer = FakeConsumer()
    consumer.ends[1] = 10_000
    liveness, now = watch(consumer)
    for _ in range(60):
        consumer.positions[1] += 1
        assert advance(liveness, now, 5) == []


def test_a_partition_that_stops_short_of_its_end_is_reported_after_the_limit() -> None:
    consumer = FakeConsumer()
    liveness, now = watch(consumer)
    consumer.ends[1] = 50  # records arrive; the position stays at 5
    assert advance(liveness, now, 29) == []
    [reason] = advance(liveness, now, 10)[:1]
    assert f"the consumer of {TOPIC} stopped moving while records wait" in reason
    assert "partition 1 at 5 of 50" in reason and "partition 0" not in reason


def test_an_unknown_position_starts_at_the_committed_offset() -> None:
    consumer = FakeConsumer()
    consumer.positions = {0: -1001, 1: -1001}  # nothing delivered since the assignment
    liveness, now = watch(consumer)
    assert advance(liveness, now, 120) == []  # committed == end: nothing waits
    consumer.ends[0] = 12
    assert advance(liveness, now, 40) != []


def test_a_broker_that_does_not_answer_is_not_a_stall() -> None:
    consumer = FakeConsumer()
    consumer.ends[1] = 50
    consumer.down = True
    liveness, now = watch(consumer)
    assert advance(liveness, now, 300) == []


def test_a_busy_owner_resets_the_watch() -> None:
    consumer = FakeConsumer()
    consumer.ends[1] = 50
    liveness, now = watch(consumer)
    for _ in range(20):
        assert advance(liveness, now, 5) == []
        liveness.busy()  # every slot taken: it asked for nothing


def test_revoked_partitions_are_forgotten() -> None:
    consumer = FakeConsumer()
    consumer.ends[1] = 50
    liveness, now = watch(consumer)
    advance(liveness, now, 20)
    consumer.assigned = [0]
    assert advance(liveness, now, 100) == []
