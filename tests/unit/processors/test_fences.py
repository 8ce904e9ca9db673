"""A static member's own rejoin after a broker outage fences it once: new clients cure
that. Another process with the same id fences again and again: that ends the process."""

from __future__ import annotations

from confluent_kafka import KafkaError

from replayflow.processors.fatal import Fences

FENCED = KafkaError(
    KafkaError._FATAL,
    "Fatal error: Broker: Static consumer fenced by other consumer with same group.instance.id",
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_first_fence_asks_for_new_clients_once() -> None:
    fences = Fences(clock=Clock())
    assert not fences.repeated(FENCED)
    assert fences.take() == str(FENCED)
    assert fences.take() is None


def test_one_fence_reported_twice_counts_once() -> None:
    clock = Clock()
    fences = Fences(clock=clock)
    assert not fences.repeated(FENCED)  # the error callback
    clock.now += 0.1
    assert not fences.repeated(FENCED)  # the same fence, as a consumer message


def test_a_second_fence_within_the_window_is_another_process() -> None:
    clock = Clock()
    fences = Fences(window=60, clock=clock)
    assert not fences.repeated(FENCED)
    fences.take()
    clock.now += 5
    assert fences.repeated(FENCED)


def test_fences_far_apart_are_each_cured_by_new_clients() -> None:
    clock = Clock()
    fences = Fences(window=60, clock=clock)
    assert not fences.repeated(FENCED)
    clock.now += 3600  # the next broker outage, an hour later
    assert not fences.repeated(FENCED)
    assert fences.take() is not None


def test_other_errors_are_not_fences() -> None:
    fences = Fences(clock=Clock())
    for _ in range(3):
        assert not fences.repeated(KafkaError(KafkaError._TRANSPORT, "down"))
    assert fences.take() is None


def test_fences_right_after_outages_never_end_the_process() -> None:
    # Two broker outages 25 s apart, each ending in the consumer's own rejoin fence.
    clock = Clock()
    fences = Fences(window=60, clock=clock)
    assert not fences.repeated(FENCED, after_outage=True)
    assert fences.take() is not None
    clock.now += 25
    assert not fences.repeated(FENCED, after_outage=True)
    assert fences.take() is not None


def test_a_fence_while_kafka_answers_after_an_outage_fence_is_counted_alone() -> None:
    clock = Clock()
    fences = Fences(window=60, clock=clock)
    assert not fences.repeated(FENCED, after_outage=True)
    fences.take()
    clock.now += 5
    assert not fences.repeated(FENCED)  # the first while Kafka answers: new clients
    clock.now += 5
    assert fences.repeated(FENCED)  # and the second: another process has this id
