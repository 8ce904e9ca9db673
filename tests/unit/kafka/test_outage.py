"""Kafka down: librdkafka's repeated lines are rate-limited, a long-running process says
"waiting for Kafka" once per interval and says when the broker is back, and a fatal
client error ends the process (here: raises, as outside the CLI)."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from replayflow.kafka.config import RateLimit
from replayflow.kafka.outage import Outage, is_transport
from replayflow.processors import fatal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def librdkafka(message: str, client: str = "rdkafka#producer-1") -> logging.LogRecord:
    # As confluent-kafka hands librdkafka's lines to a Python logger.
    return logging.LogRecord(
        "replayflow.kafka", logging.ERROR, "", 0, "%s [%s] %s", ("FAIL", client, message), None
    )


def test_the_same_line_from_every_client_passes_once_per_interval() -> None:
    clock = Clock()
    limit = RateLimit(30, clock)
    line = "[thrd:127.0.0.1:9092/bootstrap]: Connect to ipv4#127.0.0.1:9092 failed ({} ms)"
    passed = [
        limit.filter(librdkafka(line.format(i), f"rdkafka#consumer-{i % 3}")) for i in range(500)
    ]
    assert passed.count(True) == 1
    clock.now += 31
    record = librdkafka(line.format(7))
    assert limit.filter(record)
    assert record.getMessage().endswith("(499 more like it in the last 30 s)")
    other = librdkafka("Broker: Not coordinator")
    assert limit.filter(other)  # another kind of line is not held back


def test_routine_startup_lines_are_debug() -> None:
    limit = RateLimit(30, Clock())
    record = librdkafka("Failed to acquire transactional PID: retrying")
    record.args = ("GETPID", "rdkafka#producer-1", record.args[2])  # type: ignore[index]
    assert not limit.filter(record)  # the logger is not at DEBUG
    assert record.levelno == logging.DEBUG


def _logger() -> tuple[logging.Logger, Lines]:
    log = logging.getLogger("replayflow.tests.outage")
    log.propagate = False
    log.setLevel(logging.INFO)
    lines = Lines()
    log.handlers = [lines]
    return log, lines


def test_an_outage_says_waiting_once_per_interval_and_when_it_is_over() -> None:
    clock = Clock()
    log, lines = _logger()
    outage = Outage("127.0.0.1:9092", "orchestrator o-1", log, interval=30, retry=2, clock=clock)
    down = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
    assert is_transport(down)
    for _ in range(240):  # four minutes of errors, one a second
        outage.error(down)
        outage.check(lambda: (_ for _ in ()).throw(RuntimeError("no answer")))
        clock.now += 1
    assert outage.down and outage.lines == 8
    assert all("waiting for Kafka at 127.0.0.1:9092" in line for line in lines.lines)
    outage.check(lambda: None)  # the broker answers
    assert not outage.down
    assert lines.lines[-1].startswith("orchestrator o-1: Kafka at 127.0.0.1:9092 answers again")
    assert len(lines.lines) == 9


def test_other_errors_are_logged_rate_limited() -> None:
    clock = Clock()
    log, lines = _logger()
    outage = Outage("b:9092", "worker", log, interval=30, clock=clock)
    error = KafkaError(KafkaError.NOT_COORDINATOR, "Broker: Not coordinator")
    for _ in range(10):
        outage.error(error)
    assert len(lines.lines) == 1 and "Not coordinator" in lines.lines[0]
    assert not outage.down


def test_a_non_fatal_error_is_not_the_end() -> None:
    fatal.on_error(KafkaError(KafkaError._TRANSPORT, "down"), "orchestrator o-1")


def test_a_fenced_client_raises_with_what_to_do() -> None:
    fenced = KafkaError(KafkaError.FENCED_INSTANCE_ID, "Static consumer fenced", fatal=True)
    with pytest.raises(fatal.FatalKafkaError, match="another process runs with the same id"):
        fatal.on_error(fenced, "orchestrator o-1")


def test_a_fatal_error_reported_to_the_error_callback_counts() -> None:
    # librdkafka hands the error callback code _FATAL, the fatal flag not set.
    reported = KafkaError(
        KafkaError._FATAL,
        "Fatal error: Broker: Static consumer fenced by other consumer with same group.instance.id",
    )
    assert fatal.is_fatal(reported)
    with pytest.raises(fatal.FatalKafkaError, match="another process runs with the same id"):
        fatal.on_error(reported, "orchestrator o-1")


def test_a_handler_filter_limits_only_the_loggers_it_names() -> None:
    limit = RateLimit(30, Clock(), only=("aiokafka",))
    ours = logging.LogRecord("replayflow.api", logging.WARNING, "", 0, "x %d", (1,), None)
    theirs = logging.LogRecord("aiokafka.conn", logging.ERROR, "", 0, "down %d", (1,), None)
    assert limit.filter(ours) and limit.filter(ours)
    assert limit.filter(theirs) and not limit.filter(theirs)


def test_lately_says_whether_kafka_was_unreachable_within_a_while() -> None:
    clock = Clock()
    outage = Outage("b:9092", "worker", logging.getLogger("test.outage"), clock=clock)
    assert not outage.lately(60)
    outage.error(KafkaError(KafkaError._TRANSPORT, "down"))
    assert outage.lately(60)
    clock.now += 10
    outage.recovered()
    clock.now += 59
    assert outage.lately(60)
    clock.now += 2
    assert not outage.lately(60)
