"""Workflows and steps for the chaos tests, and the Kafka helpers the Kafka tests share.

The chaos tests run real processes: `python -m replayflow.cli orchestrator -m
tests.chaos.workloads` and `... worker -m tests.chaos.workloads`, from the repository
root (the CLI puts the working directory on sys.path). Only the @rf.step / @rf.workflow
objects below end up in their registry; the helpers are for the test process.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, IsolationLevel, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

import replayflow as rf
from replayflow import codec
from replayflow.kafka.config import consumer_config, group_name, producer_config
from replayflow.settings import Settings
from replayflow.topics import Topics

# ---------------------------------------------------------------------------------------
# Workloads


@rf.step
async def bump(n: int) -> int:
    await asyncio.sleep(0.005)
    return n + 1


@rf.workflow(name="chaos-trivial")
async def trivial(ctx: rf.Context, n: int) -> int:
    """Three trivial steps: n + 3."""
    a = await ctx.step("one", bump, n)
    b = await ctx.step("two", bump, a)
    return await ctx.step("three", bump, b)


@rf.step(retry=rf.Retry(limit=5, delay="200ms"))
def slow_marked(marker: str, seconds: float) -> str:
    """Sleeps `seconds`; appends "start|end <pid> <attempt>" to the file `marker` so the
    test sees when (and in which process) it runs."""
    attempt = rf.current_step().attempt
    with open(marker, "a", encoding="utf-8") as handle:
        handle.write(f"start {os.getpid()} {attempt}\n")
    time.sleep(seconds)
    with open(marker, "a", encoding="utf-8") as handle:
        handle.write(f"end {os.getpid()} {attempt}\n")
    return f"slept {seconds}"


@rf.workflow(name="chaos-slow")
async def slow(ctx: rf.Context, args: dict[str, Any]) -> str:
    return await ctx.step("nap", slow_marked, args["marker"], args["seconds"])


@rf.workflow(name="chaos-waiter")
async def waiter(ctx: rf.Context, n: int) -> dict[str, Any]:
    """Waits for the event "go", then runs a step."""
    payload = await ctx.wait_for_event("go")
    return {"n": n, "got": payload, "after": await ctx.step("after", bump, n)}


@rf.workflow(name="chaos-sleeper")
async def sleeper(ctx: rf.Context, seconds: float) -> int:
    """A durable sleep, then a step."""
    await ctx.sleep("nap", seconds)
    return await ctx.step("after", bump, 0)


@rf.step
def measure(text: str) -> int:
    return len(text)


@rf.workflow(name="chaos-size")
async def size(ctx: rf.Context, text: str) -> int:
    """The length of its input, measured by a step (the input goes through a task)."""
    return await ctx.step("measure", measure, text)


# ---------------------------------------------------------------------------------------
# Kafka helpers for the tests (not used by the subprocesses)


@dataclass(frozen=True)
class Rec:
    """One record as read back: where it was, when, and its raw key and value."""

    partition: int
    offset: int
    timestamp: int  # ms, the producer's create time
    key: bytes | None
    value: bytes | None

    def decoded(self) -> Any:
        return codec.decode(self.value or b"")


class TopicTail:
    """Reads a whole topic from the beginning (read_committed); `poll()` returns what
    arrived since the last call."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self._bootstrap = settings.bootstrap
        self._consumer = Consumer(
            consumer_config(settings, None, **{"group.id": f"replayflow-test-{uuid.uuid4().hex}"})
        )
        metadata = self._consumer.list_topics(topic, timeout=30).topics[topic]
        self.partitions = sorted(metadata.partitions)
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in self.partitions])

    def poll(self, timeout: float = 0.2, limit: int = 10_000) -> list[Rec]:
        out: list[Rec] = []
        for message in self._consumer.consume(limit, timeout=timeout):
            if message.error() is not None:
                continue
            out.append(
                Rec(
                    message.partition() or 0,
                    message.offset() or 0,
                    message.timestamp()[1],
                    message.key(),
                    message.value(),
                )
            )
        return out

    def stable_ends(self) -> dict[int, int]:
        """Each partition's last stable offset now: the end a read_committed reader can
        reach (an open transaction holds it back until it ends)."""
        admin = AdminClient({"bootstrap.servers": self._bootstrap})
        wanted = {TopicPartition(self.topic, p): OffsetSpec.latest() for p in self.partitions}
        found = admin.list_offsets(
            wanted, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=30
        )
        return {tp.partition: future.result().offset for tp, future in found.items()}

    def reached(self, ends: dict[int, int]) -> bool:
        """True when every partition's position is at its end in `ends`. librdkafka's
        position moves past transaction markers and aborted records too."""
        wanted = [TopicPartition(self.topic, p) for p in ends]
        for tp in self._consumer.position(wanted):
            if ends[tp.partition] > 0 and tp.offset < ends[tp.partition]:
                return False
        return True

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> TopicTail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_topic(settings: Settings, topic: str, timeout: float = 60.0) -> list[Rec]:
    """Every committed record of a topic, up to the last stable offset it has now."""
    records: list[Rec] = []
    deadline = time.monotonic() + timeout
    with TopicTail(settings, topic) as tail:
        ends = tail.stable_ends()
        while time.monotonic() < deadline:
            records.extend(tail.poll(0.3))
            if tail.reached(ends):
                return records
    raise TimeoutError(f"reading {topic} to {ends} did not finish in {timeout} s")


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def produce_located(
    settings: Settings, records: list[tuple[bytes, bytes]]
) -> list[tuple[int, int]]:
    """Produce (key, value) commands by key (murmur2, like every replayflow producer);
    returns the (partition, offset) of each, in order."""
    producer = Producer(producer_config(settings))
    where: dict[int, tuple[int, int]] = {}

    def delivered(index: int) -> Callable[[Any, Any], None]:
        def callback(err: Any, msg: Any) -> None:
            if err is None:
                where[index] = (msg.partition(), msg.offset())

        return callback

    topic = Topics(settings).commands
    for index, (key, value) in enumerate(records):
        producer.produce(topic, key=key, value=value, on_delivery=delivered(index))
    producer.flush(30)
    assert len(where) == len(records), "some commands were not delivered"
    return [where[i] for i in range(len(records))]


def wait_folded(settings: Settings, located: list[tuple[int, int]], timeout: float = 30.0) -> None:
    """Wait until the orchestrator has committed its consumed offsets past every
    (partition, offset) given: those commands are folded."""
    last: dict[int, int] = {}
    for partition, offset in located:
        last[partition] = max(last.get(partition, -1), offset)
    topic = Topics(settings).commands
    consumer = Consumer(
        consumer_config(settings, None, **{"group.id": group_name(settings, "orchestrator")})
    )

    def folded() -> bool:
        committed = consumer.committed([TopicPartition(topic, p) for p in last], timeout=10)
        return all(tp.offset > last[tp.partition] for tp in committed)

    try:
        wait_until(folded, timeout, f"the orchestrator to fold up to {last}")
    finally:
        consumer.close()


# ---------------------------------------------------------------------------------------
# A crash the CLI cannot produce on purpose: between the commit of a transaction and the
# RocksDB write of the same batch (steps 4 and 5 of the orchestrator's loop).
#
#   python -m tests.chaos.workloads crash-after-commit N ID DATA_DIR
#
# runs an orchestrator (KAFKA_BOOTSTRAP, REPLAYFLOW_NAMESPACE) that exits with status 86
# right after its N-th committed batch, before writing that batch to RocksDB.

CRASH_STATUS = 86


def crash_after_commit(count: int, instance_id: str, data_dir: str) -> None:
    import logging
    import sys
    from pathlib import Path

    from replayflow.core.definitions import Registry
    from replayflow.processors import fold
    from replayflow.processors.orchestrator import Orchestrator

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    original = fold.PartitionFolder.committed
    committed_batches = 0

    def committed(self: fold.PartitionFolder, changelog_offset: int | None) -> None:
        nonlocal committed_batches
        if self.pending.changes:
            committed_batches += 1
            if committed_batches >= count:
                logging.getLogger("replayflow.chaos").warning(
                    "crashing after the commit of changelog offset %s of partition %d, "
                    "before the RocksDB write",
                    changelog_offset,
                    self.partition,
                )
                sys.stderr.flush()
                os._exit(CRASH_STATUS)
        original(self, changelog_offset)

    fold.PartitionFolder.committed = committed  # type: ignore[method-assign]
    registry = Registry.of(sys.modules[__name__])
    Orchestrator(
        Settings.from_env(), registry, instance_id=instance_id, data_dir=Path(data_dir)
    ).run()


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 5 or sys.argv[1] != "crash-after-commit":
        raise SystemExit("usage: python -m tests.chaos.workloads crash-after-commit N ID DATA")
    crash_after_commit(int(sys.argv[2]), sys.argv[3], sys.argv[4])
