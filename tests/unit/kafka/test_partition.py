"""murmur2 as Kafka's Java client computes it (values from Kafka's UtilsTest)."""

from __future__ import annotations

import pytest

from replayflow.kafka.partition import murmur2, murmur2_partition

JAVA_MURMUR2 = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("key", "expected"), JAVA_MURMUR2)
def test_murmur2_matches_the_java_client(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@pytest.mark.parametrize(("key", "expected"), JAVA_MURMUR2)
def test_partition_is_the_positive_hash_modulo_the_count(key: bytes, expected: int) -> None:
    # Java: Utils.toPositive(Utils.murmur2(key)) % numPartitions
    for partitions in (1, 3, 12, 100):
        assert murmur2_partition(key, partitions) == (expected & 0x7FFFFFFF) % partitions


def test_every_tail_length_and_the_empty_key_hash_in_range() -> None:
    for length in range(9):
        value = murmur2(bytes(range(length)))
        assert -(2**31) <= value < 2**31


def test_a_topic_without_partitions_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        murmur2_partition(b"x", 0)
