"""Is a group consumer still consuming? The watchdog for the poll loop's other half.

librdkafka recovers most broker trouble by itself, but not all of it: after a broker
restart a consumer can keep its assignment and stop fetching one partition without any
error (quix-streams issue #1124 shows the same), or be dropped from its group. The loop
that owns a consumer reports each round to a `ConsumerLiveness`; when records wait on
an assigned partition and the consumer's position has not moved for `stall_after`
seconds while the broker answers, `stalled()` says why, and the owner replaces the
consumer (a new one rejoins and reads from the committed offsets).

The check runs at most every `check_every` seconds, on the owner's loop, so it must
not hold the loop up: a partition whose position moved since the last check is not
asked about (it is consuming), and the others are asked about in one request (the end
offsets of all of them; their start offsets too, only when records seem to wait). It
used to ask for each partition's watermarks one by one: twelve round trips every ten
seconds held a worker's and an orchestrator's loop for some 100 ms, and the workflows
in flight then were a run's slowest percent (docs/performance.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from replayflow.kafka.watchdog import GRACE, Hung, guarded

log = logging.getLogger("replayflow.kafka")

STALL_AFTER = 30.0
CHECK_EVERY = 10.0
QUERY_TIMEOUT = 2.0
#: The timestamps a ListOffsets request reads as "the end" and "the start" of a
#: partition (offsets_for_times passes them through).
LATEST, EARLIEST = -1, -2


class ConsumerLiveness:
    def __init__(
        self,
        consumer: Any,
        topic: str,
        *,
        stall_after: float = STALL_AFTER,
        check_every: float = CHECK_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        self.stall_after = stall_after
        self.check_every = check_every
        self._clock = clock
        self._last_check = clock()
        self._seen: dict[int, tuple[int, float]] = {}  # partition -> (position, since)

    def busy(self) -> None:
        """The owner did not ask for records this round (all its slots are taken): a
        position that does not move says nothing about the consumer."""
        self._seen.clear()

    def stalled(self) -> str | None:
        """Why the consumer looks stuck, or None. Cheap when called every round: it
        looks at most every `check_every` seconds."""
        now = self._clock()
        if now - self._last_check < self.check_every:
            return None
        self._last_check = now
        try:
            stuck = self._stuck(now)
        except (KafkaException, Hung, RuntimeError) as exc:
            # The broker does not answer: a new consumer would not do better.
            log.debug("liveness check of %s: %s", self.topic, exc)
            return None
        if not stuck:
            return None
        shown = ", ".join(
            f"partition {p} at {at} of {end} for {now - since:.0f} s"
            for p, (at, end, since) in sorted(stuck.items())
        )
        return f"the consumer of {self.topic} stopped moving while records wait: {shown}"

    def _stuck(self, now: float) -> dict[int, tuple[int, int, float]]:
        """{partition: (position, end, since)} of the assigned partitions whose position
        has stayed short of their end for `stall_after` seconds."""
        assigned = sorted(
            tp.partition for tp in self.consumer.assignment() if tp.topic == self.topic
        )
        for gone in set(self._seen) - set(assigned):
            del self._seen[gone]
        if not assigned:
            return {}
        wanted = [TopicPartition(self.topic, p) for p in assigned]
        positions = {tp.partition: tp.offset for tp in self.consumer.position(wanted)}
        unknown = [TopicPartition(self.topic, p) for p in assigned if positions.get(p, -1) < 0]
        if unknown:
            # Nothing delivered since the assignment: it starts at the committed offset.
            for tp in guarded(
                "committed", QUERY_TIMEOUT + GRACE, self.consumer.committed, unknown, QUERY_TIMEOUT
            ):
                positions[tp.partition] = tp.offset
        still = []
        for partition in assigned:
            at = positions.get(partition, -1)
            if self._seen.get(partition, (None, now))[0] != at:
                self._seen[partition] = (at, now)  # moved (or first seen): it consumes
            else:
                still.append(partition)
        if not still:
            return {}
        # A read_committed consumer is told the last stable offset: the end of what it
        # may read (records of an open transaction do not wait for it yet).
        ends = self._offsets(still, LATEST)
        waiting = [p for p in still if p in ends and ends[p] > positions.get(p, -1)]
        starts = self._offsets(waiting, EARLIEST) if waiting else {}
        stuck = {}
        for partition in still:
            at, high = positions.get(partition, -1), ends.get(partition)
            if high is None:
                continue  # its end is unknown this time: judged at the next check
            since = self._seen[partition][1]
            if high <= max(at, starts.get(partition, 0)):
                self._seen[partition] = (at, now)  # nothing waits
                continue
            if now - since >= self.stall_after:
                stuck[partition] = (at, high, since)
        return stuck

    def _offsets(self, partitions: list[int], which: int) -> dict[int, int]:
        """{partition: offset} at `which` (LATEST or EARLIEST) in one request; a
        partition the broker answered with an error is left out."""
        asked = [TopicPartition(self.topic, p, which) for p in partitions]
        answered = guarded(
            "offsets_for_times",
            QUERY_TIMEOUT + GRACE,
            self.consumer.offsets_for_times,
            asked,
            QUERY_TIMEOUT,
        )
        return {tp.partition: tp.offset for tp in answered if tp.error is None and tp.offset >= 0}
