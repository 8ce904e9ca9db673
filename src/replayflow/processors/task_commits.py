"""The worker's offset commits on replayflow.tasks: decided on every turn of its loop,
run off the loop.

The decision (`due`) is made in every turn: each partition whose commit point
(processors/task_offsets.py) moved since the last commit. Points move when results are
acknowledged, so a task is committed in the turn its result reached the log, not on a
timer: a worker killed after that does not run the step again (what is left is the
commit's own round trip).

The commit itself runs on a thread of its own, one at a time (a due commit waits for
the one in flight), under a deadline (kafka/watchdog.py): steps go on running and
reporting while its round trip lasts. A commit that hung is left to return on its own
while the consumer goes on; one that has not returned after COMMIT_HUNG_LIMIT, or one
that failed for good, makes the worker replace its consumer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from replayflow.core.clip import clip
from replayflow.kafka.watchdog import GRACE, Guard, Hung
from replayflow.processors.task_offsets import CommitPoint, TaskOffsets

log = logging.getLogger("replayflow.worker")

COMMIT_TIMEOUT = 5.0  # seconds librdkafka gets for an offset commit
# A commit that hung (the broker away) is waited for this long before the consumer is
# replaced: replacing it while the broker is away would leave a member behind in the
# group that the new one waits for, and the same consumer usually recovers by itself.
COMMIT_HUNG_LIMIT = 60.0


class TaskCommits:
    def __init__(self, topic: str, offsets: TaskOffsets) -> None:
        self.topic = topic
        self.offsets = offsets
        self.committed: dict[int, CommitPoint] = {}  # sent, and not known to have failed
        self._generation = 0  # of the consumer: a replaced one's commits count for nothing
        self._guard = Guard("worker offset commits")
        self._hung: tuple[Guard, float] | None = None  # its guard, and since when
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="replayflow-commit")
        self.in_flight: asyncio.Future[str | None] | None = None

    def due(self) -> list[TopicPartition]:
        """Each partition whose commit point moved since the last commit. A turn that
        had no acknowledgement commits nothing."""
        return [
            self.position(partition, point)
            for partition, point in self.offsets.commit_points().items()
            if self.committed.get(partition) != point
        ]

    def position(self, partition: int, point: CommitPoint) -> TopicPartition:
        return TopicPartition(self.topic, partition, point.offset, metadata=point.metadata)

    def turn(self, consumer: Consumer) -> str | None:
        """The loop's turn: collect the commit in flight if it is done, and send what
        is due. Returns why the consumer must be replaced, or None."""
        if self.in_flight is not None:
            if not self.in_flight.done():
                return None
            done, self.in_flight = self.in_flight, None
            failed = done.result()
            if failed is not None:
                return failed
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
        commit = functools.partial(self._commit, consumer, offsets, self._generation)
        self.in_flight = asyncio.get_running_loop().run_in_executor(self._thread, commit)
        return None

    def _commit(
        self, consumer: Consumer, offsets: list[TopicPartition], generation: int
    ) -> str | None:
        """On the commit thread: one commit under its deadline. The loop reads what it
        learns only once the commit is done."""
        guard = self._guard
        try:
            guard.run("offset commit", COMMIT_TIMEOUT + GRACE, _commit_sync, consumer, offsets)
        except Hung as exc:
            log.warning("%s; the consumer goes on, and commits again once it returns", exc)
            self._hung = (guard, time.monotonic())
            self._guard = Guard("worker offset commits")
            return None
        except KafkaException as exc:  # a failed commit only means some steps may run again
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.fatal():
                return f"fatal error committing offsets: {error}"
            log.warning("offset commit failed: %s", clip(str(exc)))
            return None
        except RuntimeError as exc:  # the consumer was closed meanwhile (replaced)
            log.info("offset commit: %s", clip(str(exc)))
            return None
        if generation == self._generation:
            for tp in offsets:
                self.committed[tp.partition] = CommitPoint(tp.offset, tp.metadata or "")
        return None

    async def last(self, consumer: Consumer) -> None:
        """On the way out: the commit in flight, then what is due after it."""
        for _ in range(2):
            if self.in_flight is not None:
                await asyncio.wait({self.in_flight})
            self.turn(consumer)
        if self.in_flight is not None:
            await asyncio.wait({self.in_flight})

    def replaced(self) -> None:
        """The consumer was replaced: its commits, done or not, count for nothing."""
        self._generation += 1
        self._hung = None
        self.in_flight = None
        self.committed.clear()

    def close(self) -> None:
        self._thread.shutdown(wait=False)
        self._guard.close()


def _commit_sync(consumer: Consumer, offsets: list[TopicPartition]) -> None:
    consumer.commit(offsets=offsets, asynchronous=False)
