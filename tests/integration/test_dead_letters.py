"""Bad input on replayflow.commands goes to the dead-letter topic with its reason and its
original bytes, and does not hold up the good commands around it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Producer

import replayflow as rf
from replayflow import codec
from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.messages import (
    AcquireSlot,
    Completion,
    DeadLetter,
    StartWorkflow,
    WorkflowQueued,
)
from replayflow.kafka.config import producer_config
from replayflow.kafka.partition import murmur2_partition
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics
from tests.chaos.workloads import read_topic, wait_until

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]


@rf.step
def double(n: int) -> int:
    return 2 * n


@rf.workflow(name="doubling")
async def doubling(ctx: rf.Context, n: int) -> int:
    return await ctx.step("double", double, n)


def ids_on(partition: int, partitions: int, count: int, prefix: str) -> list[str]:
    """`count` instance ids whose key hashes to `partition`."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        candidate = f"{prefix}-{n}"
        if murmur2_partition(candidate.encode(), partitions) == partition:
            found.append(candidate)
        n += 1
    return found


def bad_records(partition: int, partitions: int) -> list[tuple[str, bytes | None, bytes]]:
    """(kind, key, value) of every kind of bad input, distinct per partition; each is
    produced to `partition`."""
    start = StartWorkflow
    [nobody] = ids_on(partition, partitions, 1, "nobody")
    [elsewhere] = ids_on((partition + 1) % partitions, partitions, 1, "elsewhere")
    return [
        ("garbage", b"junk", b"\x00\xffnot avro at all " + bytes([partition])),
        ("unknown-fingerprint", b"fp", codec.MAGIC + os.urandom(8) + b"\x02\x04body"),
        (
            "unknown-workflow",
            nobody.encode(),
            codec.encode(start(instance_id=nobody, workflow="no-such-workflow", input="1")),
        ),
        (
            "bad-id-spaces",
            b"has spaces",
            codec.encode(
                start(instance_id=f"has spaces {partition}", workflow="doubling", input="1")
            ),
        ),
        ("bad-id-empty", b"", codec.encode(start(instance_id="", workflow="doubling", input="1"))),
        (
            "not-a-command",
            b"queued",
            codec.encode(
                WorkflowQueued(
                    instance_id=f"x-{partition}", seq=1, at=1, limiter="~limiter:doubling"
                )
            ),
        ),
        (
            # A good start on a partition its id does not hash to (a non-murmur2 client).
            "wrong-partition",
            elsewhere.encode(),
            codec.encode(start(instance_id=elsewhere, workflow="doubling", input="1")),
        ),
        (
            "wrong-key",
            b"some-other-key",
            codec.encode(start(instance_id=f"keyed-{partition}", workflow="doubling", input="1")),
        ),
        (
            # Admission commands are the orchestrator's own.
            "internal-command",
            b"~limiter:doubling",
            codec.encode(AcquireSlot(limiter="~limiter:doubling", instance_id="x", limit=1)),
        ),
    ]


def test_bad_commands_go_to_the_dlq(settings: Settings, tmp_path: Path) -> None:
    apply_topics(settings.bootstrap, load_topics(settings))
    topics = Topics(settings)
    partitions = settings.partitions or 3

    # Interleave good starts and bad records on every partition: good, bad, good, ...
    sent: dict[tuple[int, int], tuple[str, bytes]] = {}  # (partition, offset) -> kind, value
    good: dict[str, int] = {}
    producer = Producer(producer_config(settings))

    def delivered(kind: str, value: bytes):  # type: ignore[no-untyped-def]
        def callback(err, msg):  # type: ignore[no-untyped-def]
            assert err is None, err
            sent[(msg.partition(), msg.offset())] = (kind, value)

        return callback

    for p in range(partitions):
        bad = bad_records(p, partitions)
        ids = ids_on(p, partitions, len(bad) + 1, f"good-{settings.namespace}")
        for i, instance_id in enumerate(ids):
            value = codec.encode(
                StartWorkflow(
                    instance_id=instance_id, workflow="doubling", input=json.dumps(10 * p + i)
                )
            )
            good[instance_id] = 10 * p + i
            producer.produce(
                topics.commands,
                key=instance_id.encode(),
                value=value,
                on_delivery=delivered("good", value),
            )
            if i < len(bad):
                kind, key, bad_value = bad[i]
                producer.produce(
                    topics.commands,
                    key=key,
                    value=bad_value,
                    partition=p,
                    on_delivery=delivered(kind, bad_value),
                )
    producer.flush(30)
    bad_sent = {where: kv for where, kv in sent.items() if kv[0] != "good"}
    assert len(bad_sent) == len(bad_records(0, partitions)) * partitions
    # Every partition got both kinds, interleaved.
    for p in range(partitions):
        kinds = [sent[k][0] for k in sorted(k for k in sent if k[0] == p)]
        assert kinds[:3] == ["good", "garbage", "good"], kinds

    runtime = LocalRuntime(
        settings.replace(data_dir=tmp_path),
        Registry.of(double, doubling),
        orchestrator_id="dlq-test",
    )
    with runtime, Client(settings) as client:
        for instance_id, n in good.items():
            assert client.result(instance_id, timeout=30) == 2 * n
        dead = wait_until(
            lambda: (lambda recs: recs if len(recs) >= len(bad_sent) else None)(
                read_topic(settings, topics.dlq)
            ),
            30,
            "every bad command on the dlq",
        )
    assert not runtime.errors, runtime.errors

    letters = [r.decoded() for r in dead]
    assert all(isinstance(d, DeadLetter) for d in letters)
    by_source = {(d.partition, d.offset): d for d in letters}
    assert len(by_source) == len(letters), "a bad command was dead-lettered twice"
    assert set(by_source) == set(bad_sent), "the dlq holds exactly the bad commands"
    expected_type = {
        "garbage": "CodecError",
        "unknown-fingerprint": "CodecError",
        "unknown-workflow": "Rejected",
        "bad-id-spaces": "Rejected",
        "bad-id-empty": "Rejected",
        "not-a-command": "NotACommand",
        "wrong-partition": "WrongPartition",
        "wrong-key": "WrongKey",
        "internal-command": "NotACommand",
    }
    for where, (kind, value) in bad_sent.items():
        letter = by_source[where]
        assert letter.source_topic == topics.commands
        assert letter.value == value, f"{kind}: the original bytes were not kept"
        assert letter.reason, kind
        assert letter.error_type == expected_type[kind], (kind, letter)
        assert letter.at > 0
    reasons = {kind: by_source[w].reason for w, (kind, _) in bad_sent.items()}
    assert "fingerprint" in reasons["unknown-fingerprint"]
    assert "no-such-workflow" in reasons["unknown-workflow"]
    assert "instance id" in reasons["bad-id-spaces"]
    assert "instance id" in reasons["bad-id-empty"]
    assert "murmur2" in reasons["wrong-partition"]

    # Every good one completed exactly once, and nothing else did.
    completions = [r.decoded() for r in read_topic(settings, topics.completions)]
    assert all(isinstance(c, Completion) for c in completions)
    assert sorted(c.instance_id for c in completions) == sorted(good)
    assert {c.status for c in completions} == {"COMPLETED"}

    # The CLI lists them and exits 0.
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.bootstrap,
        "REPLAYFLOW_NAMESPACE": settings.namespace,
    }
    listed = subprocess.run(
        [sys.executable, "-m", "replayflow.cli", "dlq", "--limit", "1000"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.splitlines()
    assert header.split() == ["ID", "TIME", "KEY", "TYPE", "REASON"]
    assert len(lines) == len(bad_sent), listed.stdout
    assert f"{len(bad_sent)} dead-letter entries" in listed.stderr
    assert sum("CodecError" in line for line in lines) == 2 * partitions
    assert sum("no-such-workflow" in line for line in lines) == partitions
    as_json = subprocess.run(
        [sys.executable, "-m", "replayflow.cli", "dlq", "--json", "--limit", "1000"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert as_json.returncode == 0, as_json.stderr
    entries = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert {(e["source_partition"], e["source_offset"]) for e in entries} == set(bad_sent)
    assert {bytes.fromhex(e["value_hex"]) for e in entries} == {v for _, v in bad_sent.values()}
