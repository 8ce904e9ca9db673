"""The dead-letter API on a real broker: what `list` shows of replayflow.dlq, and what a
redrive writes to the topics (the original record back on its source topic, a marker
on the dlq) or, when it is refused, that it writes nothing."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from replayflow import codec
from replayflow.api.dlq import MARKER_HEADER, DeadLetterError, DeadLetters
from replayflow.core.messages import (
    DeadLetter,
    SendEvent,
    StartWorkflow,
    Task,
)
from replayflow.core.replies import OrchestratorWorkflows
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics

pytestmark = pytest.mark.kafka


@dataclass
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def read(settings: Settings, topic: str, timeout: float = 30.0) -> list[Record]:
    """Every committed record of `topic`, up to its end now."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap,
            "group.id": f"test-dlq-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in partitions}
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in consumer.consume(1000, timeout=0.3):
                if m.error() is None:
                    headers = {name: value for name, value in m.headers() or ()}
                    records.append(Record(m.partition(), m.offset(), m.key(), m.value(), headers))
            positions = consumer.position([TopicPartition(topic, p) for p in partitions])
            # A committed transaction ends in a control record the position steps over.
            if all(tp.offset >= ends[tp.partition] or ends[tp.partition] == 0 for tp in positions):
                return records
        raise TimeoutError(f"reading {topic} did not reach its end in {timeout} s")
    finally:
        consumer.close()


def produce(settings: Settings, topic: str, partition: int, key: bytes, value: bytes) -> str:
    """Produce one record; its dead-letter id `<partition>-<offset>`."""
    located: list[str] = []
    producer = Producer({"bootstrap.servers": settings.bootstrap})
    producer.produce(
        topic,
        key=key,
        value=value,
        partition=partition,
        on_delivery=lambda err, m: located.append(f"{m.partition()}-{m.offset()}"),
    )
    assert producer.flush(10) == 0
    return located[0]


@pytest.fixture
def topics(settings: Settings) -> Topics:
    apply_topics(settings.bootstrap, load_topics(settings))
    return Topics(settings)


def dead_letter(
    settings: Settings, partition: int, key: bytes, value: bytes | None, at: int, source: str
) -> str:
    record = DeadLetter(source, 1, 7, key, value, f"reason {key.decode()}", "CodecError", at)
    return produce(settings, Topics(settings).dlq, partition, key, codec.encode(record))


def test_list_shows_the_newest_entries_and_what_they_hold(
    settings: Settings, topics: Topics
) -> None:
    start = codec.encode(StartWorkflow(instance_id="i-1", workflow="w", input="1"))
    old = dead_letter(settings, 0, b"old", b"junk", 1_000, topics.commands)
    new = dead_letter(settings, 1, b"new", start, 3_000, topics.commands)
    middle = dead_letter(settings, 2, b"middle", None, 2_000, topics.tasks)
    produce(settings, topics.dlq, 0, b"x", b"not a dead letter")

    letters = DeadLetters(settings, "node-a")
    entries = letters.list()
    assert [e["id"] for e in entries] == [old, middle, new]
    by_id = {e["id"]: e for e in entries}
    assert by_id[old]["source_topic"] == topics.commands
    assert (by_id[old]["source_partition"], by_id[old]["source_offset"]) == (1, 7)
    assert by_id[old]["key"] == "old"
    assert by_id[old]["value_hex"] == b"junk".hex() and by_id[old]["value_size"] == 4
    assert by_id[old]["original"] is None  # not a replayflow record
    # Inspectable: the record decoded, its JSON payloads as values.
    assert by_id[new]["original"] == {
        "type": "StartWorkflow",
        "instance_id": "i-1",
        "workflow": "w",
        "input": 1,
        "version": None,
        "parent_id": None,
        "parent_step": None,
        "schedule_id": None,
        "schedule_slot": None,
    }
    assert by_id[middle]["source_topic"] == topics.tasks
    assert by_id[middle]["value_hex"] is None and by_id[middle]["value_size"] == 0
    assert (by_id[old]["reason"], by_id[old]["error_type"]) == ("reason old", "CodecError")
    assert not any(e["redriven"] for e in entries)
    assert [e["id"] for e in letters.list(limit=2)] == [middle, new]


def test_a_redrive_puts_the_original_back_once(settings: Settings, topics: Topics) -> None:
    # An event for an instance that did not exist then: a redrive may succeed now.
    original = codec.encode(SendEvent(instance_id="k1", name="go", payload="1"))
    entry = dead_letter(settings, 1, b"k1", original, 1_000, topics.commands)
    letters = DeadLetters(settings, "node-a")

    result = letters.redrive(entry)
    assert result["id"] == entry and result["redriven"] and result["to"] == topics.commands

    [back] = read(settings, topics.commands)
    assert (back.key, back.value) == (b"k1", original)
    assert back.headers["replayflow-redriven-from"] == entry.encode()
    markers = [r for r in read(settings, topics.dlq) if MARKER_HEADER in r.headers]
    assert [(m.partition, m.key) for m in markers] == [(1, b"k1")]

    [listed] = letters.list()
    assert listed["id"] == entry
    assert listed["redriven"] and listed["redriven_at"] == result["at"]

    # A second redrive, here or from another node, is refused and writes nothing.
    for node in ("node-a", "node-b"):
        with pytest.raises(DeadLetterError) as again:
            DeadLetters(settings, node).redrive(entry)
        assert again.value.status == 409 and "already" in str(again.value)
    assert len(read(settings, topics.commands)) == 1
    assert len([r for r in read(settings, topics.dlq) if MARKER_HEADER in r.headers]) == 1


def test_what_cannot_be_redriven_is_refused_and_writes_nothing(
    settings: Settings, topics: Topics
) -> None:
    empty = dead_letter(settings, 0, b"empty", None, 1_000, topics.commands)
    other = produce(settings, topics.dlq, 0, b"x", b"not a dead letter")
    # What would only be dead-lettered again: bytes that are no record, a record that
    # is no command, a start of a workflow no orchestrator runs (one has said what it
    # runs), a key that is not the instance id.
    junk = dead_letter(settings, 1, b"junk", b"original bytes", 1_000, topics.commands)
    task = codec.encode(
        Task(
            instance_id="t",
            workflow="w",
            step="s",
            function="f",
            attempt=1,
            input="null",
            scheduled_at=1,
        )
    )
    not_a_command = dead_letter(settings, 1, b"t", task, 1_000, topics.commands)
    start = codec.encode(StartWorkflow(instance_id="s-1", workflow="nosuch"))
    unknown = dead_letter(settings, 2, b"s-1", start, 1_000, topics.commands)
    wrong_key = produce(
        settings,
        topics.dlq,
        2,
        b"other-key",
        codec.encode(
            DeadLetter(
                topics.commands, 1, 8, b"other-key", start, "the record key ...", "WrongKey", 1
            )
        ),
    )
    published = OrchestratorWorkflows("o-1", "h", 1, ["known:1"])
    produce(settings, topics.orchestrators, 0, b"o-1", codec.encode(published))
    letters = DeadLetters(settings, "node-a")

    refused = {
        "99-0": (404, "no dead-letter entry"),  # no such partition
        "0-999999": (404, "no dead-letter entry"),  # no such offset
        other: (404, "is not a dead-letter entry"),  # a record, but not a dead letter
        empty: (409, "no original value"),  # a dead letter without an original value
        junk: (409, "its bytes are not a replayflow record"),
        not_a_command: (409, "a Task is not a command"),
        unknown: (409, "unknown workflow 'nosuch': the orchestrators run known"),
        wrong_key: (409, "its key is not its instance id"),
    }
    for entry, (status, says) in refused.items():
        with pytest.raises(DeadLetterError) as raised:
            letters.redrive(entry)
        assert raised.value.status == status, entry
        assert says in str(raised.value), entry

    assert read(settings, topics.commands) == []
    assert not any(MARKER_HEADER in r.headers for r in read(settings, topics.dlq))
    assert not any(e["redriven"] for e in letters.list())


def test_an_entry_that_kept_only_a_hash_is_listed_as_such_and_not_redriven(
    settings: Settings, topics: Topics
) -> None:
    record = DeadLetter(
        topics.commands, 2, 41, None, None, "too big", "Rejected", 5_000,
        key_size=3_000_000, key_sha256="ab" * 32, value_size=9_000_000, value_sha256="cd" * 32,
    )  # fmt: skip
    entry = produce(settings, topics.dlq, 0, b"", codec.encode(record))
    letters = DeadLetters(settings, "node-a")
    [listed] = letters.list()
    assert (listed["value_size"], listed["value_sha256"]) == (9_000_000, "cd" * 32)
    assert listed["value_kept"] is False and listed["value_hex"] is None
    with pytest.raises(DeadLetterError) as refused:
        letters.redrive(entry)
    assert refused.value.status == 409
    assert "kept only the size (9000000 bytes) and SHA-256" in str(refused.value)
    assert f"{topics.commands} partition 2 offset 41" in str(refused.value)
