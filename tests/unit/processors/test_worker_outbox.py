"""The worker's outbox: no result is dropped. A failed delivery goes back in line; a
producer that failed for good hands everything unacknowledged to its successor; a
task's offset stays in flight until its result is acknowledged."""

from __future__ import annotations

from confluent_kafka import KafkaError

from replayflow.processors.task_offsets import CommitPoint, TaskOffsets
from replayflow.processors.worker_outbox import Outbox, Result, WorkerStats


def outbox() -> tuple[Outbox, TaskOffsets, WorkerStats]:
    offsets, stats = TaskOffsets(), WorkerStats()
    return Outbox(offsets, stats), offsets, stats


def result(offset: int) -> Result:
    return Result(f"order-{offset}", b"value", None, (0, offset))


def test_an_acknowledged_result_ends_its_task() -> None:
    box, offsets, _ = outbox()
    offsets.begin(0, 5)
    number = box.add(result(5))
    assert offsets.commit_points() == {0: CommitPoint(5, "")}
    box.delivered(number)(None, None)  # type: ignore[arg-type]
    assert offsets.commit_points() == {0: CommitPoint(6, "")}
    assert box.take_all() == []


def test_a_failed_delivery_is_sent_again_and_keeps_its_task_in_flight() -> None:
    box, offsets, stats = outbox()
    offsets.begin(0, 5)
    number = box.add(result(5))
    box.delivered(number)(KafkaError(KafkaError._MSG_TIMED_OUT, "timed out"), None)  # type: ignore[arg-type]
    assert stats.undelivered == 1 and box.producer_failed is None
    assert box.take_again() == [number] and box.take_again() == []
    assert offsets.commit_points() == {0: CommitPoint(5, "")}
    box.later(number)  # the queue was full: next round
    assert box.take_again() == [number]


def test_a_fatal_error_hands_everything_to_a_new_producer() -> None:
    box, offsets, _ = outbox()
    for offset in (1, 2, 3):
        offsets.begin(0, offset)
    numbers = [box.add(result(offset)) for offset in (1, 2, 3)]
    box.delivered(numbers[0])(None, None)  # type: ignore[arg-type]
    fatal = KafkaError(KafkaError._FATAL, "fenced", fatal=True)
    box.delivered(numbers[1])(fatal, None)  # type: ignore[arg-type]
    assert box.producer_failed is not None and "fatal" in box.producer_failed
    assert box.take_all() == numbers[1:]  # the one acknowledged is not sent again
    # A late acknowledgement of a result handed over still counts (it is on the log);
    # sending it again is then skipped.
    box.delivered(numbers[2])(None, None)  # type: ignore[arg-type]
    assert offsets.commit_points() == {0: CommitPoint(2, "done:1")}  # 3 is done, above 2
    assert box.get(numbers[2]) is None and box.get(numbers[1]) is not None


def test_a_fatal_delivery_report_without_the_fatal_flag_replaces_the_producer() -> None:
    # librdkafka reports a fatal producer error to each message as code _FATAL, with
    # the flag unset: the outbox must not send those results again through it forever.
    box, offsets, _ = outbox()
    offsets.begin(0, 1)
    number = box.add(result(1))
    box.delivered(number)(KafkaError(KafkaError._FATAL, "fenced"), None)  # type: ignore[arg-type]
    assert box.producer_failed is not None
    assert box.take_again() == [] and box.take_all() == [number]
