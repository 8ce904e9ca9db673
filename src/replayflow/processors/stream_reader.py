"""Following one instance's records on replayflow.streams: the Kafka side of every
stream reader (the Python client, the API's server-sent events, the CLI).

A stream is the instance's key on a partition of the topic, so a reader assigns that
one partition (no consumer group, nothing committed) from the offset it was given and
keeps the records of its instance. Offsets are the partition's: a reader that stops
at offset n and comes back with start=n + 1 misses nothing and repeats nothing.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from replayflow import codec
from replayflow.core.errors import ReplayflowError
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.partition import murmur2_partition
from replayflow.kafka.reading import watermarks
from replayflow.settings import Settings
from replayflow.topics import Topics

# Stream readers wait on the broker at most this long per fetch: a value written while
# a fetch waits is still answered at once, this bounds the rare parked fetch.
FETCH_WAIT_MS = 5


class StreamFollower:
    """(offset, record) of one instance, in log order, from `start` (0: the first)."""

    def __init__(self, settings: Settings, instance_id: str, start: int = 0) -> None:
        self.instance_id = instance_id
        self._key = instance_id.encode()
        self.topic = Topics(settings).streams
        self._consumer = clients.consumer(
            settings, None, **{"fetch.wait.max.ms": FETCH_WAIT_MS, "fetch.min.bytes": 1}
        )
        try:
            partitions = topic_partitions(self._consumer, self.topic)
            if not partitions:
                raise ReplayflowError(
                    f"topic {self.topic!r} does not exist: run `replayflow topics apply`"
                )
            self.partition = murmur2_partition(self._key, len(partitions))
            offset = start if start > 0 else OFFSET_BEGINNING
            self._consumer.assign([TopicPartition(self.topic, self.partition, offset)])
        except BaseException:
            self._consumer.close()
            raise
        self.position = max(start, 0)  # the next offset to read

    def end(self) -> int:
        """The partition's end now (its last stable offset)."""
        return watermarks(self._consumer, self.topic, self.partition)[1]

    def caught_up(self, end: int) -> bool:
        """Whether everything before `end` was read (markers and other keys included)."""
        [tp] = self._consumer.position([TopicPartition(self.topic, self.partition)])
        return tp.offset >= end or self.position >= end

    def poll(self, timeout: float = 0.1, batch: int = 500) -> list[tuple[int, Any]]:
        # consume(n, t) waits for n records or t: a reader waits for the first one only,
        # then takes what else is there.
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        out = []
        for message in [first, *self._consumer.consume(batch - 1, timeout=0)]:
            if message.error() is not None:
                continue
            offset = message.offset() or 0
            self.position = max(self.position, offset + 1)
            if message.key() != self._key:
                continue
            try:
                out.append((offset, codec.decode(message.value() or b"")))
            except codec.CodecError:
                continue  # not a stream record: nothing a reader could show
        return out

    def close(self) -> None:
        self._consumer.close()


def wait_time(deadline: float | None, step: float = 0.1) -> float:
    """How long the next poll may wait before `deadline` (monotonic seconds)."""
    if deadline is None:
        return step
    return max(0.0, min(step, deadline - time.monotonic()))
