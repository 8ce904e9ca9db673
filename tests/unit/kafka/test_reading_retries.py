"""Which failed offsets requests a reader asks again, and which it raises at once."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from replayflow.kafka.reading import end_offsets, watermarks, worth_asking_again


def failure(code: int) -> KafkaException:
    return KafkaException(KafkaError(code))


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._DESTROY_BROKER,  # the node asked was killed and left the metadata
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    ],
)
def test_a_passing_failure_is_asked_again(code: int) -> None:
    assert worth_asking_again(failure(code))


@pytest.mark.parametrize(
    "code", [KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError._INVALID_ARG, KafkaError._FATAL]
)
def test_a_refusal_is_not(code: int) -> None:
    assert not worth_asking_again(failure(code))


class FlakyConsumer:
    """Fails its first `failures` offsets requests with `code`, then answers."""

    def __init__(self, code: int, failures: int = 1) -> None:
        self.code, self.failures, self.asked = code, failures, 0

    def _ask(self) -> None:
        self.asked += 1
        if self.asked <= self.failures:
            raise failure(self.code)

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        self._ask()
        return 3, 17

    def offsets_for_times(self, asked: list[TopicPartition], timeout: float) -> list:
        self._ask()
        return [TopicPartition(tp.topic, tp.partition, 17) for tp in asked]


def test_watermarks_outlast_a_broker_dropped_from_the_cluster() -> None:
    consumer = FlakyConsumer(KafkaError._DESTROY_BROKER, failures=2)
    assert watermarks(consumer, "t", 0, timeout=10) == (3, 17)
    assert consumer.asked == 3


def test_end_offsets_outlast_a_broker_dropped_from_the_cluster() -> None:
    consumer = FlakyConsumer(KafkaError._DESTROY_BROKER)
    ends = end_offsets(consumer, "t", [0, 1], timeout=10)
    assert [(tp.partition, tp.offset) for tp in ends] == [(0, 17), (1, 17)]


def test_a_refused_request_is_raised_at_once() -> None:
    consumer = FlakyConsumer(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    with pytest.raises(KafkaException):
        watermarks(consumer, "t", 0, timeout=10)
    assert consumer.asked == 1


def test_asking_stops_at_the_deadline() -> None:
    consumer = FlakyConsumer(KafkaError._TRANSPORT, failures=1_000)
    with pytest.raises(KafkaException):
        watermarks(consumer, "t", 0, timeout=0.5)
    assert 1 < consumer.asked < 10
