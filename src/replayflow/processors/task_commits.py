"""The worker's offset commits on replayflow.tasks, decided on every turn of its loop.

The decision (`due`): each partition whose commit point (processors/task_offsets.py)
moved since the last commit. Points move when results are acknowledged, so a task is
committed in the turn its result reached the log, or, when the worker committed less
than its commit interval before (REPLAYFLOW_TASK_COMMIT_MS, COMMIT_EVERY by default),
as soon as that much time has passed: a worker killed after that does not run the step
again. Otherwise a point moves only when a partition's first task is read while the
group has nothing committed there: the point is then the position before that task,
committed like any other.

The commit runs under a deadline (kafka/watchdog.py). A commit that hung is left to
return on its own while the consumer goes on; one that has not returned after
COMMIT_HUNG_LIMIT, or one that failed for good, makes the worker replace its consumer.

The commit is synchronous, on the loop's turn, never beside a poll: confluent-kafka
(2.16) lets one call at a time into a consumer, so a commit sent while another thread
polls waits for that poll to return.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from replayflow.core.clip import clip
from replayflow.kafka.transactional import fatal_error
from replayflow.kafka.watchdog import GRACE, Guard, Hung
from replayflow.processors.task_offsets import CommitPoint, TaskOffsets
from replayflow.settings import DEFAULT_TASK_COMMIT_MS

log = logging.getLogger("replayflow.worker")

COMMIT_TIMEOUT = 5.0  # seconds librdkafka gets for an offset commit
# A commit that hung (the broker away) is waited for this long before the consumer is
# replaced: a new consumer would not reach the broker sooner, and the same consumer
# usually recovers by itself once the broker answers.
COMMIT_HUNG_LIMIT = 60.0
#: Least time (s) between two offset commits, by default (the worker takes REPLAYFLOW_
#: TASK_COMMIT_MS, settings.py). Each commit is a request the broker's group
#: coordinator writes to __consumer_offsets, and the worker waits for its answer. At a
#: hundred three-step workflows a second the worker committed in nearly every turn
#: (about a hundred commits a second): the broker's time and the worker's stalled
#: turns showed in every hop (docs/performance.md, "The worker's poll and its
#: commits"). A commit due sooner waits for the next turn past this; an idle worker
#: still commits its first result at once. What it costs: a worker killed within this
#: time after a result reached the log may run that step again (steps are at least
#: once; the fold keeps the first result).
COMMIT_EVERY = DEFAULT_TASK_COMMIT_MS / 1000


class TaskCommits:
    def __init__(self, topic: str, offsets: TaskOffsets, every: float = COMMIT_EVERY) -> None:
        self.topic = topic
        self.offsets = offsets
        self.every = every
        self._sent_at = float("-inf")  # time.monotonic() of the last commit sent
        self.committed: dict[int, CommitPoint] = {}  # sent, and not known to have failed
        self._guard = Guard("worker offset commits")
        self._hung: tuple[Guard, float] | None = None  # its guard, and since when

    def due(self) -> list[TopicPartition]:
        """Each partition whose commit point moved since the last commit."""
        return [
            self.position(partition, point)
            for partition, point in self.offsets.commit_points().items()
            if self.committed.get(partition) != point
        ]

    def position(self, partition: int, point: CommitPoint) -> TopicPartition:
        return TopicPartition(self.topic, partition, point.offset, metadata=point.metadata)

    def deferred(self, now: float) -> float | None:
        """Seconds until what is due may be committed, while the last commit is more
        recent than `every`; None when nothing waits (the worker's poll need not end
        early for a commit)."""
        left = self._sent_at + self.every - now
        if left <= 0 or not self.due():
            return None
        return left

    def turn(
        self, consumer: Consumer, now: float | None = None, *, at_once: bool = False
    ) -> str | None:
        """Commit what is due, unless the last commit is more recent than `every` (then
        a later turn commits it) or `at_once`. Returns why the consumer must be
        replaced, or None."""
        offsets = self.due()
        if not offsets:
            return None
        if self._hung is not None:
            hung, since = self._hung
            if hung.running:
                waited = time.monotonic() - since
                if waited > COMMIT_HUNG_LIMIT:
                    return f"an offset commit has not returned for {waited:.0f} s"
                return None  # the consumer goes on; commit again once that one returns
            self._hung = None
        now = time.monotonic() if now is None else now
        if not at_once and now - self._sent_at < self.every:
            return None
        self._sent_at = now
        try:
            self._guard.run(
                "offset commit", COMMIT_TIMEOUT + GRACE, _commit_sync, consumer, offsets
            )
            for tp in offsets:
                self.committed[tp.partition] = CommitPoint(tp.offset, tp.metadata or "")
        except Hung as exc:
            log.warning("%s; the consumer goes on, and commits again once it returns", exc)
            self._hung = (self._guard, time.monotonic())
            self._guard = Guard("worker offset commits")
        except KafkaException as exc:  # a failed commit only means some steps may run again
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and fatal_error(error):
                return f"fatal error committing offsets: {error}"
            log.warning("offset commit failed: %s", clip(str(exc)))
        return None

    def replaced(self) -> None:
        """The consumer was replaced: what it committed is read again on assignment."""
        self._hung = None
        self.committed.clear()

    def close(self) -> None:
        self._guard.close()


def _commit_sync(consumer: Consumer, offsets: list[TopicPartition]) -> None:
    consumer.commit(offsets=offsets, asynchronous=False)
