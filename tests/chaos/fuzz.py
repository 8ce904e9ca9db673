"""Bad input for the chaos fuzz scenario and the oversized-input test: every kind of
malformed command, and records at and above every size limit, compressible and not,
produced to every partition of replayflow.commands. `check_dead_letters` then says
whether each one ended where it must: malformed ones on the DLQ with a reason, the ones
at a limit completed, the ones the broker refuses refused at produce time."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer

from replayflow import codec
from replayflow.core.messages import Completion, DeadLetter, StartWorkflow
from replayflow.core.names import MAX_ID_LENGTH
from replayflow.core.payloads import DEFAULT_MAX_PAYLOAD
from replayflow.kafka.config import producer_config
from replayflow.kafka.partition import murmur2_partition
from replayflow.settings import Settings
from replayflow.topics import Topics
from tests.chaos.workloads import Rec, read_topic

MIB = 1024 * 1024
TOPIC_LIMIT = 8 * MIB  # max.message.bytes of replayflow.commands (topics.yaml)


@dataclass
class Sent:
    kind: str
    expect: str  # "dlq", "complete" (with `output`), "handled" (dlq or any end), "refused"
    partition: int = -1
    offset: int = -1
    instance_id: str = ""
    output: Any = None
    error: str = ""


def _start(instance_id: str, workflow: str = "chaos-trivial", input: str = "1") -> bytes:
    return codec.encode(StartWorkflow(instance_id=instance_id, workflow=workflow, input=input))


def _id_on(partition: int, partitions: int, prefix: str, length: int = 0) -> str:
    n = 0
    while True:
        candidate = f"{prefix}-{n}".ljust(length, "x")
        if murmur2_partition(candidate.encode(), partitions) == partition:
            return candidate
        n += 1


def _random_text(size: int) -> str:
    return base64.b64encode(os.urandom(size))[:size].decode()


def malformed(p: int, partitions: int) -> list[tuple[str, bytes | None, bytes]]:
    """(kind, key, value): input that can never be a command; all go to the DLQ."""
    good = _start(f"fz-{p}", input="1")
    bad_utf8 = _start("zzzz", input="1").replace(b"zzzz", b"\xff\xfe\xc0\x80")
    [elsewhere] = [_id_on((p + 1) % partitions, partitions, "elsewhere")]
    return [
        ("random-bytes-short", b"r", os.urandom(7)),
        ("random-bytes-long", b"r", os.urandom(5000)),
        ("magic-then-random", b"m", codec.MAGIC + os.urandom(64)),
        ("truncated-avro", b"t", good[: len(good) // 2]),
        ("truncated-avro-header", b"t", good[:5]),
        ("empty-value", b"e", b""),
        ("invalid-utf8", b"zzzz", bad_utf8),
        ("unknown-workflow", b"u", _start(_id_on(p, partitions, "nobody"), "no-such-workflow")),
        ("id-with-spaces", b"s", _start(f"has spaces {p}")),
        ("wrong-key", b"some-other-key", _start(f"keyed-{p}")),
        ("wrong-partition", elsewhere.encode(), _start(elsewhere)),
        ("deep-json", b"d", _start(_id_on(p, partitions, "deep"), input="[" * 5000 + "]" * 5000)),
        ("not-json-input", b"j", _start(_id_on(p, partitions, "notjson"), input="{nope")),
    ]


def sized(p: int, partitions: int) -> list[tuple[str, str, bytes | None, bytes, str, Any]]:
    """(kind, expect, key, value, instance id, output): at and above every size limit.
    "handled": the engine may end it either way (a 1 MiB input fails its step, whose
    arguments are then over the payload limit); it only must not stop the partition."""
    at_limit = _id_on(p, partitions, f"lim{p}", MAX_ID_LENGTH)
    over = _id_on(p, partitions, f"over{p}", MAX_ID_LENGTH + 1)
    huge = "h" * (3 * MIB)
    text_a = "a" * (DEFAULT_MAX_PAYLOAD - 2)
    text_r = _random_text(DEFAULT_MAX_PAYLOAD - 2)
    big_a = "b" * (7 * MIB)
    big_r = _random_text(7 * MIB)
    in_a = _id_on(p, partitions, "inA")
    in_r = _id_on(p, partitions, "inR")
    big_ia = _id_on(p, partitions, "bigA")
    big_ir = _id_on(p, partitions, "bigR")
    return [
        ("id-at-limit", "complete", at_limit.encode(), _start(at_limit, input="4"), at_limit, 7),
        ("id-over-limit", "dlq", over.encode(), _start(over), "", None),
        ("id-3mb", "dlq", huge.encode(), _start(huge), "", None),
        (
            "input-1mib-compressible",
            "handled",
            in_a.encode(),
            _start(in_a, "chaos-size", json.dumps(text_a)),
            in_a,
            len(text_a),
        ),
        (
            "input-1mib-random",
            "handled",
            in_r.encode(),
            _start(in_r, "chaos-size", json.dumps(text_r)),
            in_r,
            len(text_r),
        ),
        (
            "input-7mib-compressible",
            "handled",
            big_ia.encode(),
            _start(big_ia, "chaos-size", json.dumps(big_a)),
            big_ia,
            None,
        ),
        (
            "input-7mib-random",
            "handled",
            big_ir.encode(),
            _start(big_ir, "chaos-size", json.dumps(big_r)),
            big_ir,
            None,
        ),
        (
            "garbage-at-topic-limit-random",
            "dlq",
            b"g",
            os.urandom(TOPIC_LIMIT - 64 * 1024),
            "",
            None,
        ),
        (
            "garbage-over-topic-limit-compressible",
            "dlq",
            b"g",
            b"c" * (TOPIC_LIMIT + MIB),
            "",
            None,
        ),
        (
            "garbage-over-topic-limit-random",
            "refused",
            b"g",
            os.urandom(TOPIC_LIMIT + MIB),
            "",
            None,
        ),
    ]


def feed_bad_input(
    settings: Settings,
    *,
    malformed_kinds: bool = True,
    sizes: bool = True,
    only: list[int] | None = None,
) -> list[Sent]:
    """Produce every bad record to every partition (by explicit partition); return what
    was sent and where it landed (offset -1: refused by the broker)."""
    partitions = settings.partitions or 1
    producer = Producer(producer_config(settings))
    topic = Topics(settings).commands
    sent: list[Sent] = []

    def delivered(item: Sent) -> Callable[[Any, Any], None]:
        def callback(err: Any, msg: Any) -> None:
            if err is not None:
                item.error = str(err)
            else:
                item.partition, item.offset = msg.partition(), msg.offset()

        return callback

    for p in only if only is not None else range(partitions):
        items: list[tuple[Sent, bytes | None, bytes]] = []
        if malformed_kinds:
            items += [
                (Sent(kind, "dlq"), key, value) for kind, key, value in malformed(p, partitions)
            ]
        if sizes:
            items += [
                (Sent(kind, expect, instance_id=iid, output=out), key, value)
                for kind, expect, key, value, iid, out in sized(p, partitions)
            ]
        for item, key, value in items:
            sent.append(item)
            producer.produce(topic, key=key, value=value, partition=p, on_delivery=delivered(item))
            producer.poll(0)
        producer.flush(60)
    return sent


def check_dead_letters(settings: Settings, sent: list[Sent], dead: list[Rec]) -> dict[str, Any]:
    """Each sent record against where it must be; {"problems": [...], ...} for the
    verdict (an empty problem list: all well)."""
    letters: dict[tuple[int, int], DeadLetter] = {}
    problems: list[str] = []
    for record in dead:
        letter = record.decoded()
        if isinstance(letter, DeadLetter):
            if (letter.partition, letter.offset) in letters:
                problems.append(f"dead-lettered twice: {letter.partition}/{letter.offset}")
            letters[(letter.partition, letter.offset)] = letter
    ends: dict[str, Completion] = {}
    for record in read_topic(settings, Topics(settings).completions):
        completion = record.decoded()
        ends[completion.instance_id] = completion
    outcome: dict[str, str] = {}
    for item in sent:
        where = (item.partition, item.offset)
        letter = letters.get(where)
        end = ends.get(item.instance_id) if item.instance_id else None
        if item.offset < 0:
            got = "refused"
        elif letter is not None:
            got = "dlq" if letter.reason else "dlq without a reason"
        elif end is not None:
            got = "complete" if end.status.lower() == "completed" else f"ended {end.status}"
        else:
            got = "nowhere"
        outcome[f"{item.kind}@{item.partition}"] = got
        ok = got == item.expect or (item.expect == "handled" and got != "nowhere")
        if ok and item.expect == "complete" and end is not None:
            ok = json.loads(end.output or "null") == item.output
        if not ok:
            problems.append(
                f"{item.kind} on partition {item.partition}: expected {item.expect}, got {got}"
            )
    return {
        "problems": problems,
        "sent": len(sent),
        "dead_letters": len(letters),
        "outcomes": outcome,
    }
