"""No input stops a partition: records at and above every size limit, compressible and
not, interleaved with good commands on every partition of replayflow.commands.

An orchestrator and a worker run as processes (as in tests/chaos). Good commands (some
exactly at a limit) must all complete; every bad record must be in the dead-letter
topic, found by its partition and offset, with a bounded reason and bounded echoes of
its key and value; and the orchestrator's log must stay small however large the input
(before the dead letters were bounded, one 3 MB instance id aborted its transaction
forever and logged 12 GB in 3 minutes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, Producer

from replayflow import codec
from replayflow.core.clip import MAX_REASON, MAX_TRACE
from replayflow.core.messages import Completion, DeadLetter, SendEvent, StartWorkflow
from replayflow.core.names import MAX_ID_LENGTH, MAX_NAME_LENGTH
from replayflow.core.payloads import DEFAULT_MAX_PAYLOAD, MAX_DEPTH
from replayflow.kafka.config import producer_config
from replayflow.kafka.partition import murmur2_partition
from replayflow.processors.fold_records import MAX_KEPT_KEY, MAX_KEPT_VALUE
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics
from tests.chaos.conftest import Process
from tests.chaos.workloads import read_topic, wait_until

pytestmark = pytest.mark.kafka

MIB = 1024 * 1024
TOPIC_LIMIT = 8 * MIB  # max.message.bytes of the topics (topics.yaml)
WORKLOADS = "tests.integration.limits_workloads"
LOGGED_AT_MOST = 512 * 1024  # bytes of the orchestrator's whole log in this test


@dataclass
class Sent:
    name: str
    key: bytes | None
    value: bytes
    partition: int
    good: bool
    instance_id: str | None = None  # of a good start
    where: tuple[int, int] | None = None  # (partition, offset) once delivered
    refused: str | None = None  # the producer's error, for records over the topic limit


def start(instance_id: str, value: Any = 1, workflow: str = "limits-echo", **more: Any) -> bytes:
    text = value.text if isinstance(value, Raw) else _json(value)
    return codec.encode(
        StartWorkflow(instance_id=instance_id, workflow=workflow, input=text, **more)
    )


@dataclass(frozen=True)
class Raw:
    """JSON text as it is (deeper than json.dumps can write)."""

    text: str


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def nested(levels: int) -> Raw:
    return Raw("[" * levels + "0" + "]" * levels)


Make = Callable[[str], tuple[bytes | None, bytes]]  # a tag -> (key, value)


def bad_records() -> list[tuple[str, Make]]:
    """Records that must end in the dead-letter topic: (name, make). `make(tag)` builds
    one with `tag` in its instance id, so each can be put where murmur2 routes it."""
    random = os.urandom

    def keyed(instance: Callable[[str], str], value: Callable[[str], bytes]) -> Make:
        return lambda tag: (instance(tag).encode(), value(tag))

    def huge_id(tag: str) -> str:
        return tag + "a" * (3 * MIB)

    over_payload = "x" * (DEFAULT_MAX_PAYLOAD + 10)
    long_id = "i" * MAX_ID_LENGTH
    return [
        ("id over its limit", keyed(lambda t: long_id + t, lambda t: start(long_id + t))),
        ("3 MB instance id", keyed(huge_id, lambda t: start(huge_id(t)))),
        (
            "workflow name at its limit, unknown",
            keyed(lambda t: f"w1{t}", lambda t: start(f"w1{t}", workflow="w" * MAX_NAME_LENGTH)),
        ),
        (
            "workflow name over its limit",
            keyed(
                lambda t: f"w2{t}", lambda t: start(f"w2{t}", workflow="w" * (MAX_NAME_LENGTH + 1))
            ),
        ),
        (
            "1 MB workflow name",
            keyed(lambda t: f"w3{t}", lambda t: start(f"w3{t}", workflow="n" * MIB)),
        ),
        ("1 MB version", keyed(lambda t: f"v1{t}", lambda t: start(f"v1{t}", version="1" * MIB))),
        (
            "input over the payload limit",
            keyed(lambda t: f"p1{t}", lambda t: start(f"p1{t}", over_payload)),
        ),
        (
            "input nested past the depth limit",
            keyed(lambda t: f"d1{t}", lambda t: start(f"d1{t}", nested(MAX_DEPTH + 1))),
        ),
        (
            "input nested 100,000 deep",
            keyed(lambda t: f"d2{t}", lambda t: start(f"d2{t}", nested(100_000))),
        ),
        (
            "event to no instance, 1 MB name",
            keyed(lambda t: f"e1{t}", lambda t: _event(f"e1{t}", "n" * MIB)),
        ),
        (
            "event name over its limit",
            keyed(lambda t: f"e2{t}", lambda t: _event(f"e2{t}", "n" * (MAX_NAME_LENGTH + 1))),
        ),
        (
            "key over the kept-key limit",
            lambda t: (b"k" * (MAX_KEPT_KEY + 1) + t.encode(), start(f"k1{t}")),
        ),
        ("3 MB key", lambda t: (b"K" * (3 * MIB) + t.encode(), start(f"k2{t}"))),
        ("no key", lambda t: (None, start(f"k3{t}"))),
        ("random bytes", lambda t: (f"r1{t}".encode(), random(4096))),
        (
            "random bytes at the kept-value limit",
            lambda t: (f"r2{t}".encode(), random(MAX_KEPT_VALUE)),
        ),
        (
            "random bytes over the kept-value limit",
            lambda t: (f"r3{t}".encode(), random(MAX_KEPT_VALUE + 1)),
        ),
        ("truncated Avro", keyed(lambda t: f"t1{t}", lambda t: start(f"t1{t}")[:-3])),
        (
            "invalid UTF-8 in the id",
            lambda t: (f"u1{t}".encode(), start(f"u1{t}").replace(b"u1", b"\xff\xfe", 1)),
        ),
        ("empty value", lambda t: (f"z1{t}".encode(), b"")),
        # Just under the topic's limit, incompressible: the broker takes it as it is.
        (
            "random bytes near the topic limit",
            lambda t: (f"r4{t}".encode(), random(TOPIC_LIMIT - 64 * 1024)),
        ),
        # Compressible: lz4 makes 9.5 MiB small enough for the topic (the producer's own
        # limit is 10 MiB), so a command can be larger on the log than the topic limit.
        (
            "9.5 MiB compressible input",
            keyed(lambda t: f"c1{t}", lambda t: start(f"c1{t}", "z" * (9 * MIB + MIB // 2))),
        ),
    ]


def placed(make: Make, partition: int, partitions: int) -> tuple[bytes | None, bytes]:
    """`make`'s record with a tag whose key murmur2 routes to `partition` (a record
    without a key goes anywhere)."""
    for n in range(1000):
        tag = f"-{n}"
        key, value = make(tag)
        if key is None or murmur2_partition(key, partitions) == partition:
            return key, value
    raise AssertionError("no tag routes there")


def _event(instance_id: str, name: str) -> bytes:
    return codec.encode(SendEvent(instance_id=instance_id, name=name, payload="null"))


def over_the_topic_limit() -> list[tuple[str, bytes | None, bytes]]:
    """Records the broker itself refuses: they never reach the engine."""
    return [("random bytes over the topic limit", b"o1", os.urandom(TOPIC_LIMIT + 1024))]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()


def test_no_input_stops_a_partition(
    settings: Settings, tmp_path: Path, processes: list[Process]
) -> None:
    apply_topics(settings.bootstrap, load_topics(settings))
    topics = Topics(settings)
    partitions = settings.partitions or 1
    orchestrator = Process(
        "orchestrator",
        [
            "-m",
            "replayflow.cli",
            "orchestrator",
            "-m",
            WORKLOADS,
            "--id",
            "limits",
            "--data",
            str(tmp_path / "data"),
        ],
        settings,
        tmp_path / "orchestrator.log",
    )
    processes.append(orchestrator)
    processes.append(
        Process(
            "worker",
            ["-m", "replayflow.cli", "worker", "-m", WORKLOADS],
            settings,
            tmp_path / "worker.log",
        )
    )

    # Good starts on every partition, some exactly at a limit.
    good_values: dict[str, Any] = {}
    for i in range(12 * partitions):
        good_values[f"good-{i:03d}"] = i
    good_values["i" * MAX_ID_LENGTH] = "id at its limit"
    good_values["good-payload"] = "y" * (DEFAULT_MAX_PAYLOAD - 2)  # JSON text: exactly 1 MiB
    good_values["good-depth"] = nested(MAX_DEPTH)
    assert len(_json(good_values["good-payload"])) == DEFAULT_MAX_PAYLOAD
    good_values["good-depth"] = json.loads(nested(MAX_DEPTH).text)
    good = [
        Sent(
            f"start {instance_id[:20]}",
            instance_id.encode(),
            start(instance_id, value),
            murmur2_partition(instance_id.encode(), partitions),
            True,
            instance_id,
        )
        for instance_id, value in good_values.items()
    ]
    assert {s.partition for s in good} == set(range(partitions))
    # Each bad record goes to every partition, between good ones.
    bad = [
        Sent(name, *placed(make, partition, partitions), partition, False)
        for name, make in bad_records()
        for partition in range(partitions)
    ]
    refused = [Sent(name, key, value, 0, False) for name, key, value in over_the_topic_limit()]
    order: list[Sent] = []
    for i in range(max(len(good), len(bad))):
        order += good[i : i + 1] + bad[i : i + 1]
    order += refused
    _produce(settings, topics.commands, order)
    for sent in refused:
        assert sent.where is None and sent.refused is not None, sent.name
    missing = [s.name for s in order if s not in refused and s.where is None]
    assert not missing, f"not delivered: {missing}"

    # Every good start completes, each exactly once.
    wanted = {s.instance_id for s in good}
    done: dict[str, int] = {}

    def completed() -> bool:
        for process in processes:
            assert process.alive(), f"{process.name} exited:\n{process.output()[-3000:]}"
        done.clear()
        for record in read_topic(settings, topics.completions):
            completion = record.decoded()
            assert isinstance(completion, Completion)
            done[completion.instance_id] = done.get(completion.instance_id, 0) + 1
        return wanted <= set(done)

    wait_until(completed, 240, "every good start to complete", interval=2)
    assert set(done) == wanted and set(done.values()) == {1}

    # Every bad record is in the dead-letter topic, bounded.
    letters: dict[tuple[int, int], DeadLetter] = {}
    for record in read_topic(settings, topics.dlq):
        assert record.value is not None and len(record.value) < MAX_KEPT_VALUE + 64 * 1024
        letter = record.decoded()
        assert isinstance(letter, DeadLetter)
        assert letter.source_topic == topics.commands
        letters[(letter.partition, letter.offset)] = letter
    for sent in bad:
        assert sent.where is not None
        letter = letters.get(sent.where)
        assert letter is not None, f"{sent.name} on partition {sent.partition} is not in the DLQ"
        assert len(letter.reason) <= MAX_REASON, sent.name
        assert letter.value_size == len(sent.value), sent.name
        if len(sent.value) <= MAX_KEPT_VALUE:
            assert letter.value == sent.value, sent.name
        else:
            assert letter.value is None and letter.value_sha256 is not None, sent.name
        if sent.key is not None and len(sent.key) > MAX_KEPT_KEY:
            assert letter.key is None and letter.key_size == len(sent.key), sent.name
        else:
            assert letter.key == sent.key, sent.name
    goods = {s.where for s in good}
    assert not goods & set(letters), "a good command was dead-lettered"
    deep = [letters[s.where] for s in bad if s.name.startswith("input nested") and s.where]
    assert all(f"over the limit of {MAX_DEPTH}" in d.reason for d in deep), [d.reason for d in deep]
    assert all(d.error_type == "Rejected" for d in deep)

    # What the orchestrator logged stays small, whatever it was fed.
    log_text = orchestrator.output()
    assert len(log_text.encode()) < LOGGED_AT_MOST, f"{len(log_text)} bytes logged"
    longest = max(len(line) for line in log_text.splitlines())
    assert longest <= MAX_TRACE, longest
    assert "RecursionError" not in log_text and "Traceback" not in log_text
    print(
        f"\n{len(good)} good, {len(bad)} bad on {partitions} partitions; "
        f"the orchestrator logged {len(log_text.encode())} bytes (longest line {longest})"
    )


def _produce(settings: Settings, topic: str, records: list[Sent]) -> None:
    producer = Producer(producer_config(settings))

    def report(sent: Sent) -> Callable[[KafkaError | None, Message], None]:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                sent.where = (message.partition() or 0, message.offset() or 0)
            else:
                sent.refused = error.str()

        return delivered

    for sent in records:
        try:
            producer.produce(
                topic,
                key=sent.key,
                value=sent.value,
                partition=sent.partition,
                on_delivery=report(sent),
            )
        except Exception as exc:  # the producer's own size check
            sent.refused = str(exc)
        producer.poll(0)
    assert producer.flush(120) == 0
