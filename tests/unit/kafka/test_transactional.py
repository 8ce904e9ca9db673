"""TransactionalProducer: librdkafka's transactional calls under deadlines, and what is
tried again. A fake producer answers as librdkafka does (KafkaException with a
KafkaError that says whether it is retriable, fatal or needs an abort)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from replayflow.kafka.transactional import (
    TransactionalProducer,
    fatal_error,
    is_fatal,
    is_retriable,
)
from replayflow.kafka.watchdog import Hung


def error(code: int = KafkaError._TIMED_OUT, **flags: bool) -> KafkaException:
    return KafkaException(KafkaError(code, "test", **flags))


class FakeProducer:
    """Answers each call from a script: an exception to raise, "hang", or None (ok)."""

    def __init__(self, **scripts: list[Any]) -> None:
        self.scripts = scripts
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.release = threading.Event()

    def _answer(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        script = self.scripts.get(name, [])
        answer = script.pop(0) if script else None
        if answer == "hang":
            self.release.wait(30)
        elif answer is not None:
            raise answer

    def init_transactions(self, timeout: float) -> None:
        self._answer("init_transactions", timeout)

    def begin_transaction(self) -> None:
        self._answer("begin_transaction")

    def send_offsets_to_transaction(self, offsets: Any, metadata: Any, timeout: float) -> None:
        self._answer("send_offsets_to_transaction", timeout)

    def commit_transaction(self, timeout: float) -> None:
        self._answer("commit_transaction", timeout)

    def abort_transaction(self, timeout: float) -> None:
        self._answer("abort_transaction", timeout)

    def flush(self, timeout: float) -> int:
        self._answer("flush", timeout)
        return 0


@pytest.fixture
def fakes() -> Iterator[list[FakeProducer]]:
    made: list[FakeProducer] = []
    yield made
    for fake in made:
        fake.release.set()  # let stuck helper threads end


def producer(fakes: list[FakeProducer], **scripts: list[Any]) -> TransactionalProducer:
    fake = FakeProducer(**scripts)
    fakes.append(fake)
    return TransactionalProducer(fake, "txn-1", call_timeout=0.2, grace=0.1)  # type: ignore[arg-type]


def on_clock(fake: object, now: list[float], **timing: float) -> TransactionalProducer:
    """A producer over `fake` whose deadlines are reckoned on the clock `now[0]`."""
    return TransactionalProducer(fake, "txn-1", clock=lambda: now[0], **timing)  # type: ignore[arg-type]


def names(p: TransactionalProducer) -> list[str]:
    return [name for name, _ in p.producer.calls]  # type: ignore[attr-defined]


def test_the_error_kinds_are_read_from_the_kafka_error() -> None:
    assert is_retriable(error(retriable=True)) and not is_fatal(error(retriable=True))
    assert is_fatal(error(fatal=True)) and not is_retriable(error(fatal=True, retriable=True))
    assert not is_fatal(ValueError("x")) and not is_retriable(ValueError("x"))


def test_a_fatal_error_handed_to_a_message_is_fatal_without_its_flag() -> None:
    # librdkafka gives a message or delivery report the code _FATAL without the fatal
    # flag (a static consumer fenced by its successor after a broker restart).
    fenced = KafkaError(KafkaError._FATAL, "Fatal error: Broker: Static consumer fenced")
    assert not fenced.fatal()
    assert fatal_error(fenced) and is_fatal(KafkaException(fenced))
    assert fatal_error(KafkaError(KafkaError._TIMED_OUT, "x", fatal=True))
    assert not fatal_error(KafkaError(KafkaError._TIMED_OUT, "x", retriable=True))
    assert not fatal_error(None)


def test_each_call_hands_librdkafka_the_short_timeout(fakes: list[FakeProducer]) -> None:
    p = producer(fakes)
    p.init()
    p.begin()
    p.send_offsets([], None)
    p.commit()
    assert p.producer.calls == [  # type: ignore[attr-defined]
        ("init_transactions", (0.2,)),
        ("begin_transaction", ()),
        ("send_offsets_to_transaction", (0.2,)),
        ("commit_transaction", (0.2,)),
    ]


def test_a_commit_with_an_unknown_outcome_is_tried_again(fakes: list[FakeProducer]) -> None:
    p = producer(fakes, commit_transaction=[error(retriable=True), error(retriable=True)])
    p.commit()
    assert names(p) == ["commit_transaction"] * 3


def test_a_retriable_commit_gives_up_after_its_patience(fakes: list[FakeProducer]) -> None:
    now = [0.0]
    fake = FakeProducer(commit_transaction=[error(retriable=True)] * 10)
    fakes.append(fake)
    p = on_clock(fake, now, call_timeout=0.2, patience=2.0)

    def later(timeout: float) -> None:
        now[0] += 1.5
        fake._answer("commit_transaction", timeout)

    fake.commit_transaction = later  # type: ignore[method-assign]
    with pytest.raises(KafkaException):
        p.commit()
    assert len(fake.calls) == 2  # at 1.5 s it tried again; at 3.0 s it gave up


@pytest.mark.parametrize("flags", [{"fatal": True}, {"txn_requires_abort": True}, {}])
def test_other_errors_are_raised_at_once(flags: dict[str, bool], fakes: list[FakeProducer]) -> None:
    p = producer(fakes, commit_transaction=[error(KafkaError._FENCED, **flags)])
    with pytest.raises(KafkaException):
        p.commit()
    assert names(p) == ["commit_transaction"]
    assert p.dead is None


@pytest.mark.parametrize(
    "call", ["send_offsets_to_transaction", "commit_transaction", "abort_transaction"]
)
def test_a_call_that_hangs_past_its_deadline_kills_the_producer(
    call: str, fakes: list[FakeProducer]
) -> None:
    p = producer(fakes, **{call: ["hang"]})
    run = {
        "send_offsets_to_transaction": lambda: p.send_offsets([], None),
        "commit_transaction": p.commit,
        "abort_transaction": p.abort,
    }[call]
    with pytest.raises(Hung, match=f"{call} did not return within"):
        run()
    assert p.dead is not None and call in p.dead
    with pytest.raises(Hung):
        p.begin()
    p.close()  # a dead producer is not flushed: its stuck call may still hold it
    assert "flush" not in names(p)


def test_init_that_hangs_is_reported_like_any_call(fakes: list[FakeProducer]) -> None:
    p = producer(fakes, init_transactions=["hang"])
    with pytest.raises(Hung, match="init_transactions"):
        p.init()


def test_close_flushes_a_live_producer(fakes: list[FakeProducer]) -> None:
    p = producer(fakes)
    p.close()
    assert names(p) == ["flush"]


def test_a_producer_that_kept_failing_is_given_up_without_a_last_flush(
    fakes: list[FakeProducer],
) -> None:
    now = [0.0]
    fake = FakeProducer(
        send_offsets_to_transaction=[error(KafkaError._TRANSPORT, retriable=True)] * 3
    )
    fakes.append(fake)
    p = on_clock(fake, now, call_timeout=0.2, patience=1.0)

    def later(offsets: Any, metadata: Any, timeout: float) -> None:
        now[0] += 0.6
        fake._answer("send_offsets_to_transaction", timeout)

    fake.send_offsets_to_transaction = later  # type: ignore[method-assign]
    with pytest.raises(KafkaException):
        p.send_offsets([], None)
    assert p.dead is not None and "send_offsets_to_transaction" in p.dead
    p.close()  # the broker is away: no flush that would wait for it
    assert names(p) == ["send_offsets_to_transaction"] * 2


def test_offsets_sent_while_the_caller_works(fakes: list[FakeProducer]) -> None:
    """begin_with_offsets begins, then runs send_offsets on the helper thread and
    returns while it is still running; wait() gives its outcome."""
    p = producer(fakes, send_offsets_to_transaction=["hang"])
    pending = p.begin_with_offsets([], None)
    assert names(p) == ["begin_transaction", "send_offsets_to_transaction"]  # running now
    p.producer.release.set()  # type: ignore[attr-defined]
    assert pending.wait() is None
    p.commit()
    assert names(p)[-1] == "commit_transaction"


def test_offsets_sent_meanwhile_retry_and_raise_like_send_offsets(
    fakes: list[FakeProducer],
) -> None:
    p = producer(fakes, send_offsets_to_transaction=[error(retriable=True)])
    p.begin_with_offsets([], None).wait()  # a retriable error is tried again
    assert names(p).count("send_offsets_to_transaction") == 2
    failing = producer(fakes, send_offsets_to_transaction=[error(fatal=True)])
    with pytest.raises(KafkaException) as raised:
        failing.begin_with_offsets([], None).wait()
    assert is_fatal(raised.value) and failing.dead is None


def test_offsets_sent_meanwhile_that_hang_kill_the_producer(fakes: list[FakeProducer]) -> None:
    fake = FakeProducer(send_offsets_to_transaction=["hang"])
    fakes.append(fake)
    p = TransactionalProducer(
        fake,  # type: ignore[arg-type]
        "txn-1",
        call_timeout=0.1,
        grace=0.1,
        patience=0.1,
    )
    pending = p.begin_with_offsets([], None)
    with pytest.raises(Hung, match="send_offsets_to_transaction did not return"):
        pending.wait()
    assert p.dead is not None
    with pytest.raises(Hung, match="is dead"):
        p.commit()


def test_a_commit_started_runs_while_the_caller_goes_on(fakes: list[FakeProducer]) -> None:
    p = producer(fakes, commit_transaction=["hang", error(retriable=True)])
    pending = p.commit_started()
    assert names(p) == ["commit_transaction"]  # running on the helper thread now
    p.producer.release.set()  # type: ignore[attr-defined]
    assert pending.wait() is None
    assert pending.finished_at > 0
    # An unknown outcome is tried again, as commit() does.
    again = producer(fakes, commit_transaction=[error(retriable=True)])
    again.commit_started().wait()
    assert names(again) == ["commit_transaction"] * 2


class QueueFull:
    """A producer whose queue is full for `full` produce calls (BufferError, as
    librdkafka's), then takes records; `poll` lets deliveries drain and moves the clock."""

    def __init__(self, full: int, clock: list[float]) -> None:
        self.full = full
        self.clock = clock
        self.records: list[tuple[str, bytes | None, dict[str, Any]]] = []
        self.polls = 0

    def produce(self, topic: str, value: bytes | None, key: bytes | None, **extra: Any) -> None:
        if self.full > 0:
            self.full -= 1
            raise BufferError("Local: Queue full")
        self.records.append((topic, key, extra))

    def poll(self, timeout: float) -> int:
        self.polls += 1
        self.clock[0] += timeout
        return 0


def queue_full_producer(full: int) -> tuple[TransactionalProducer, QueueFull]:
    clock = [0.0]
    fake = QueueFull(full, clock)
    return on_clock(fake, clock, call_timeout=0.2, grace=0.1), fake


def test_a_record_goes_straight_to_the_queue_when_it_has_room() -> None:
    p, fake = queue_full_producer(full=0)
    p.produce("history", b"k", b"v", partition=3)
    assert fake.records == [("history", b"k", {"partition": 3})] and fake.polls == 0
    p.guard.close()


def test_a_full_queue_is_drained_until_the_record_fits() -> None:
    p, fake = queue_full_producer(full=3)
    p.produce("tasks", b"k", b"v", headers=None)
    assert fake.records == [("tasks", b"k", {"headers": None})]
    assert fake.polls == 3  # one drain per refusal
    p.guard.close()


def test_a_queue_that_stays_full_past_the_deadline_raises_hung() -> None:
    p, fake = queue_full_producer(full=1000)
    with pytest.raises(Hung, match="queue stayed full"):
        p.produce("tasks", b"k", b"v")
    # 0.3 s of deadline at 0.05 s a drain: given up after about seven drains, not 1000.
    assert 6 <= fake.polls <= 8 and fake.records == []
    p.guard.close()
