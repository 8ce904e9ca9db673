"""Following one instance's records on replayflow.streams: the Kafka side of every
stream reader (the Python client, the API's server-sent events, the CLI).

A stream is the instance's key on a partition of the topic, so a reader assigns that
one partition (no consumer group, nothing committed) from the offset it was given and
keeps the records of its instance. Offsets are the partition's.

Why read_uncommitted: workers write stream values without a transaction, but the
orchestrator writes its markers (StreamAttemptAccepted, StreamEnded) inside its
transactions, for every instance of the partition. A read_committed reader stops at
the first open transaction: every value behind it, of any instance, waits until that
transaction ends (tens of ms, more on a busy orchestrator). So values are read as soon
as they are on the log, and only this instance's own engine markers wait: each is held
(and everything of this instance after it, to keep the order) until a read_committed
checker either sees it (committed) or passes it (aborted: dropped).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from replayflow import codec
from replayflow.core.errors import ReplayflowError
from replayflow.core.stream_records import ENGINE_RECORDS
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.membership import close_consumer
from replayflow.kafka.partition import murmur2_partition
from replayflow.kafka.reading import watermarks
from replayflow.settings import Settings
from replayflow.topics import Topics

# Stream readers wait on the broker at most this long per fetch: a value written while
# a fetch waits is still answered at once, this bounds the rare parked fetch.
FETCH_WAIT_MS = 5
# Small requests go out at once: with Nagle's algorithm a fetch sent while the last
# one's acknowledgement is pending can wait for the peer's delayed ACK (up to 40 ms).
LOW_LATENCY = {
    "fetch.wait.max.ms": FETCH_WAIT_MS,
    "fetch.min.bytes": 1,
    "socket.nagle.disable": True,
}


class StreamFollower:
    """(offset, record) of one instance, in log order, from `start` (0: the first)."""

    def __init__(self, settings: Settings, instance_id: str, start: int = 0) -> None:
        self.instance_id = instance_id
        self._settings = settings
        self._key = instance_id.encode()
        self.topic = Topics(settings).streams
        self._consumer = clients.consumer(
            settings, None, **{**LOW_LATENCY, "isolation.level": "read_uncommitted"}
        )
        self._checker: Consumer | None = None  # read_committed, made on first need
        self._checked_to = -1  # the checker has handed over every offset below this
        self._queue: deque[tuple[int, Any]] = deque()  # read, not yet handed over
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
            close_consumer(self._consumer)
            raise
        self._read_to = max(start, 0)  # the next offset to read

    @property
    def position(self) -> int:
        """Every record before this offset was handed over (or is not this instance's)."""
        return self._queue[0][0] if self._queue else self._read_to

    def end(self) -> int:
        """The partition's end now (its high watermark)."""
        return watermarks(self._consumer, self.topic, self.partition)[1]

    def caught_up(self, end: int) -> bool:
        """Whether everything before `end` was read and handed over."""
        if self._queue:
            return False
        [tp] = self._consumer.position([TopicPartition(self.topic, self.partition)])
        return tp.offset >= end or self._read_to >= end

    def poll(self, timeout: float = 0.1, batch: int = 500) -> list[tuple[int, Any]]:
        deadline = time.monotonic() + timeout
        self._read(0.0 if self._queue else timeout, batch)
        return self._release(deadline)

    def _read(self, timeout: float, batch: int) -> None:
        # consume(n, t) waits for n records or t: a reader waits for the first one only,
        # then takes what else is there.
        first = self._consumer.poll(timeout)
        if first is None:
            return
        for message in [first, *self._consumer.consume(batch - 1, timeout=0)]:
            if message.error() is not None:
                continue
            offset = message.offset() or 0
            self._read_to = max(self._read_to, offset + 1)
            if message.key() != self._key:
                continue
            try:
                self._queue.append((offset, codec.decode(message.value() or b"")))
            except codec.CodecError:
                continue  # not a stream record: nothing a reader could show

    def _release(self, deadline: float) -> list[tuple[int, Any]]:
        out: list[tuple[int, Any]] = []
        while self._queue:
            offset, record = self._queue[0]
            if isinstance(record, ENGINE_RECORDS):
                committed = self._committed(offset, deadline)
                if committed is None:
                    break  # its transaction is still open: hold it and what follows
                self._queue.popleft()
                if committed:
                    out.append((offset, record))
            else:
                out.append(self._queue.popleft())
        return out

    def _committed(self, offset: int, deadline: float) -> bool | None:
        """Whether the record at `offset` was committed (None: not decided yet)."""
        checker = self._checker_at(offset)
        while True:
            message = checker.poll(max(0.0, deadline - time.monotonic()))
            if message is not None:
                error = message.error()
                at = message.offset() or 0
                if error is None:
                    self._checked_to = at + 1
                    if at >= offset:
                        return at == offset
                elif error.code() == KafkaError._PARTITION_EOF and at > offset:
                    return False  # the end of what is committed lies past it: aborted
            if time.monotonic() >= deadline:
                return None

    def _checker_at(self, offset: int) -> Consumer:
        if self._checker is None:
            self._checker = clients.consumer(
                self._settings,
                None,
                **{**LOW_LATENCY, "isolation.level": "read_committed"},
                **{"enable.partition.eof": True},
            )
        if self._checked_to < 0 or offset < self._checked_to:
            # New, or already past `offset` (it read on to decide an earlier record).
            self._checker.assign([TopicPartition(self.topic, self.partition, offset)])
            self._checked_to = offset
        return self._checker

    def close(self) -> None:
        close_consumer(self._consumer)
        if self._checker is not None:
            self._checker.close()
            self._checker = None


def wait_time(deadline: float | None, step: float = 0.1) -> float:
    """How long the next poll may wait before `deadline` (monotonic seconds)."""
    if deadline is None:
        return step
    return max(0.0, min(step, deadline - time.monotonic()))
