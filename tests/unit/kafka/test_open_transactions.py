"""Which partitions hold a transaction nobody ends: the LSO tracker and the offsets
partition of a group (the Kafka side is tests/integration/test_open_transactions.py)."""

from __future__ import annotations

from replayflow.kafka.open_transactions import (
    Hanging,
    OpenTransactions,
    java_hash,
    offsets_partition,
    report,
)


def test_a_stable_offset_unmoved_behind_the_end_hangs_after_the_wait() -> None:
    tracker = OpenTransactions(after=120)
    history = ("replayflow.history", 3)
    assert tracker.observe({history: (40, 45)}, now=0) == []
    assert tracker.observe({history: (40, 47)}, now=119) == []  # records go on: still open
    assert tracker.observe({history: (40, 47)}, now=121) == [
        Hanging("replayflow.history", 3, 40, 47, 121)
    ]


def test_a_transaction_that_ends_or_moves_starts_the_wait_again() -> None:
    tracker = OpenTransactions(after=120)
    state = ("replayflow.state", 0)
    tracker.observe({state: (10, 12)}, now=0)
    assert tracker.observe({state: (12, 12)}, now=100) == []  # ended: nothing open
    assert tracker.observe({state: (12, 20)}, now=110) == []  # a new one begins
    assert tracker.observe({state: (15, 20)}, now=200) == []  # that one ended, another open
    assert tracker.observe({state: (15, 20)}, now=300) == []  # open for 100 s only
    assert [h.stable for h in tracker.observe({state: (15, 20)}, now=320)] == [15]


def test_a_partition_not_answered_keeps_its_wait() -> None:
    tracker = OpenTransactions(after=10)
    tasks = ("replayflow.tasks", 5)
    tracker.observe({tasks: (7, 9)}, now=0)
    assert tracker.observe({}, now=5) == []
    assert [h.partition for h in tracker.observe({tasks: (7, 9)}, now=11)] == [5]


def test_the_report_gives_each_partition_the_command_that_ends_its_transaction() -> None:
    found = [
        Hanging("replayflow.history", 3, 40, 47, 130),
        Hanging("__consumer_offsets", 17, 900, 905, 131),
    ]
    text = report(found, "127.0.0.1:9092")
    assert (
        "kafka-transactions.sh --bootstrap-server 127.0.0.1:9092 abort "
        "--topic replayflow.history --partition 3 --start-offset 40"
    ) in text
    assert "--topic __consumer_offsets --partition 17 --start-offset 900" in text
    assert "find-hanging" in text


def test_java_string_hash() -> None:
    # Values of Java's String.hashCode().
    assert java_hash("") == 0
    assert java_hash("a") == 97
    assert java_hash("hello") == 99162322
    assert java_hash("polygenelubricants") == -(2**31)
    assert java_hash("\u00e9t\u00e9") == 227742  # UTF-16 code units, not UTF-8 bytes


def test_the_offsets_partition_of_a_group() -> None:
    assert offsets_partition("hello", 50) == 99162322 % 50
    assert offsets_partition("polygenelubricants", 50) == 0  # abs(MIN_VALUE) is 0
    assert offsets_partition("a", 50) == 47
