"""ConsumerLiveness on a fake consumer: positions, committed offsets and end offsets
as librdkafka reports them, and a clock the test moves."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from replayflow.kafka.liveness import EARLIEST, LATEST, ConsumerLiveness

TOPIC = "ns.replayflow.tasks"


class FakeConsumer:
    def __init__(self) -> None:
        self.assigned = [0, 1]
        self.positions = {0: 10, 1: 5}
        self.committed_at = {0: 10, 1: 5}
        self.ends = {0: 10, 1: 5}
        self.starts = {0: 0, 1: 0}
        self.down = False
        self.asked: list[tuple[int, list[int]]] = []  # (LATEST/EARLIEST, partitions)

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

    def offsets_for_times(
        self, partitions: list[TopicPartition], timeout: float
    ) -> list[TopicPartition]:
        """-1 asks for a partition's end, -2 for its start (ListOffsets)."""
        if self.down:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "down"))
        [which] = {tp.offset for tp in partitions}
        self.asked.append((which, [tp.partition for tp in partitions]))
        offsets = self.ends if which == LATEST else self.starts
        return [TopicPartition(TOPIC, tp.partition, offsets[tp.partition]) for tp in partitions]


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


def test_a_partition_that_keeps_moving_is_not_asked_about() -> None:
    consumer = FakeConsumer()
    consumer.assigned = [0, 1, 2]
    consumer.positions[2] = consumer.committed_at[2] = 0
    consumer.ends[1] = consumer.ends[2] = 10_000
    consumer.starts[2] = 0
    liveness, now = watch(consumer)
    for _ in range(12):
        consumer.positions[1] += 1
        consumer.positions[2] += 1
        assert advance(liveness, now, 5) == []
    # Only partition 0 stood still, and it was asked about alone, once per check.
    assert consumer.asked and all(asked == (LATEST, [0]) for asked in consumer.asked)


def test_partitions_that_stand_still_are_asked_about_in_one_request() -> None:
    consumer = FakeConsumer()
    consumer.assigned = [0, 1, 2, 3]
    for p in (2, 3):
        consumer.positions[p] = consumer.committed_at[p] = consumer.ends[p] = 7
        consumer.starts[p] = 0
    liveness, now = watch(consumer)
    advance(liveness, now, 10)  # the first check sees them, the second asks
    assert consumer.asked == [(LATEST, [0, 1, 2, 3])]  # nothing waits: no start asked


def test_starts_are_asked_only_for_partitions_where_records_seem_to_wait() -> None:
    consumer = FakeConsumer()
    consumer.ends[1] = 50
    liveness, now = watch(consumer)
    advance(liveness, now, 10)
    assert consumer.asked == [(LATEST, [0, 1]), (EARLIEST, [1])]


def test_records_below_the_start_of_the_log_do_not_wait() -> None:
    consumer = FakeConsumer()
    consumer.ends[1] = consumer.starts[1] = 50  # deleted beneath the position: empty
    liveness, now = watch(consumer)
    assert advance(liveness, now, 120) == []
