"""Is a group consumer still consuming? The watchdog for the poll loop's other half.

librdkafka recovers most broker trouble by itself, but not all of it: after a broker
restart a consumer can keep its assignment and stop fetching one partition without any
error (quix-streams issue #1124 shows the same), or be dropped from its group. The loop
that owns a consumer reports each round to a `ConsumerLiveness`; when records wait on
an assigned partition and the consumer's position has not moved for `stall_after`
seconds while the broker answers, `stalled()` says why, and the owner replaces the
consumer (a new one rejoins and reads from the committed offsets).

The check costs one watermark query per assigned partition, at most every
`check_every` seconds, and only while nothing arrives.
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
        stuck = {}
        for partition in assigned:
            low, high = guarded(
                "get_watermark_offsets",
                QUERY_TIMEOUT + GRACE,
                self.consumer.get_watermark_offsets,
                TopicPartition(self.topic, partition),
                QUERY_TIMEOUT,
            )
            at = positions.get(partition, -1)
            last, since = self._seen.get(partition, (None, now))
            if at != last or high <= max(at, low):
                self._seen[partition] = (at, now)  # moved, or nothing waits
                continue
            self._seen[partition] = (at, since)
            if now - since >= self.stall_after:
                stuck[partition] = (at, high, since)
        return stuck
