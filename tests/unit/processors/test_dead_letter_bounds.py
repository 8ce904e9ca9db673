"""No input can make a dead letter too large for the log, and none is echoed unbounded:
the reason, the key and the value are kept up to their limits, and past them described
by size and SHA-256 (schemas/dlq/DeadLetter.v2.avsc)."""

from __future__ import annotations

import hashlib
import logging
import os

import pytest

from replayflow import codec
from replayflow.core.clip import MAX_REASON, clip, clip_repr, clip_traceback
from replayflow.core.messages import DeadLetter, StartWorkflow
from replayflow.kafka.partition import murmur2_partition
from replayflow.processors.fold_records import (
    MAX_KEPT_KEY,
    MAX_KEPT_VALUE,
    MAX_RECORD_BYTES,
    dead_letter_record,
)
from replayflow.processors.intake import Refused, accept

MIB = 1024 * 1024


def test_clip_keeps_short_text_and_says_how_much_was_cut() -> None:
    assert clip("abc", 5) == "abc"
    assert clip("x" * 100, 40) == "x" * 15 + "... (85 more characters)"
    assert len(clip("x" * 3_000_000, 200)) <= 200
    text = clip_repr("y" * 3_000_000, 100)
    assert len(text) <= 100 and text.startswith("'yyyy") and "more characters" in text
    assert len(clip_repr(b"\x00" * 5000, 100)) <= 100
    assert clip_repr(12345) == "12345"


def test_a_traceback_is_clipped_around_its_middle() -> None:
    try:
        raise ValueError("v" * 100_000)
    except ValueError as exc:
        text = clip_traceback(exc, 1000)
    assert len(text) < 1100
    assert text.startswith("Traceback") and "characters left out" in text


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"k" * 3 * MIB, b"v" * 3 * MIB),  # a 3 MB instance id, as key and in the value
        (b"k" * (MAX_KEPT_KEY + 1), os.urandom(8 * MIB)),  # incompressible, at the topic limit
        (None, b"\x00" * (MAX_KEPT_VALUE + 1)),
    ],
)
def test_a_dead_letter_of_any_size_fits_the_log(key: bytes | None, value: bytes) -> None:
    reason = f"invalid instance id {'k' * 3 * MIB!r}"
    record = dead_letter_record("t.replayflow.commands", 2, 77, key, value, reason, "Rejected", 1)
    encoded = codec.encode(record)
    assert len(encoded) < MAX_KEPT_VALUE + 64 * 1024 < MAX_RECORD_BYTES
    assert len(record.reason) <= MAX_REASON
    assert record.value is None and record.value_size == len(value)
    assert record.value_sha256 == hashlib.sha256(value).hexdigest()
    assert "is not kept: see its size and SHA-256" in record.reason
    if key is not None:
        assert record.key is None and record.key_size == len(key)
        assert record.key_sha256 == hashlib.sha256(key).hexdigest()
    assert (record.source_topic, record.partition, record.offset) == (
        "t.replayflow.commands",
        2,
        77,
    )
    assert codec.decode(encoded) == record


def test_a_dead_letter_within_the_limits_keeps_the_original_bytes() -> None:
    key, value = b"order-1", b"\xc3\x01garbage"
    record = dead_letter_record("topic", 0, 5, key, value, "undecodable", "CodecError", 9)
    assert (record.key, record.value, record.reason) == (key, value, "undecodable")
    assert record.key_size == 7 and record.value_size == len(value)
    assert record.value_sha256 == hashlib.sha256(value).hexdigest()


def test_a_dead_letter_written_with_v1_reads_with_the_new_fields_empty() -> None:
    v1 = codec.Codec.load()
    schema = v1.schema_for("DeadLetter", 1)
    from io import BytesIO

    from fastavro import parse_schema, schemaless_writer

    out = BytesIO()
    out.write(codec.MAGIC + codec.fingerprint_bytes(schema))
    old = {
        "source_topic": "t",
        "partition": 1,
        "offset": 2,
        "key": b"k",
        "value": b"v",
        "reason": "r",
        "error_type": "CodecError",
        "at": 3,
    }
    schemaless_writer(out, parse_schema(schema), old)
    record = codec.decode(out.getvalue())
    assert record == DeadLetter(**old)
    assert record.value_sha256 is None and record.key_size is None


def _start(instance_id: str) -> tuple[bytes, bytes]:
    command = StartWorkflow(instance_id=instance_id, workflow="w", input="null")
    return instance_id.encode(), codec.encode(command)


def test_a_3_mb_instance_id_is_refused_with_a_short_reason() -> None:
    key, value = _start("a" * 3 * MIB)
    with pytest.raises(Refused) as refused:
        accept(key, value, murmur2_partition(key, 3), 3, None)
    assert refused.value.error_type == "Rejected"
    assert len(refused.value.reason) < 500
    assert f"({3 * MIB} characters)" in refused.value.reason


@pytest.mark.parametrize(
    ("key", "partition", "error_type"),
    [(b"x" * MIB, None, "WrongKey"), (None, 99, "WrongPartition")],
)
def test_wrong_keys_and_partitions_are_refused_with_short_reasons(
    key: bytes | None, partition: int | None, error_type: str
) -> None:
    right_key, value = _start("order-1")
    where = murmur2_partition(right_key, 3) if partition is None else partition
    with pytest.raises(Refused) as refused:
        accept(key if key is not None else right_key, value, where, 3, None)
    assert refused.value.error_type == error_type
    assert len(refused.value.reason) < 600


def test_the_dead_letter_log_line_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    from replayflow.core.decide import Decider
    from replayflow.core.definitions import Registry
    from replayflow.processors.fold import PartitionFolder
    from replayflow.store.memory import MemoryStore

    folder = PartitionFolder(MemoryStore(0), Decider(Registry()))
    with caplog.at_level(logging.WARNING, logger="replayflow.orchestrator"):
        folder.dead_letter(("t", 0, 1, b"k" * MIB, b"v" * 5 * MIB), "r" * 5 * MIB, "X", 1)
    [line] = [r.getMessage() for r in caplog.records]
    assert len(line) < 1000
    [record] = folder.records
    assert record.key is None and len(record.value or b"") < 64 * 1024
