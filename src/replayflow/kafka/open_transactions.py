"""Transactions that no producer will end, found from the partitions' last stable offsets.

A read_committed reader stops at a partition's last stable offset (LSO): the first
record of a transaction still open. Every replayflow producer's transaction ends within
TRANSACTION_TIMEOUT_MS, or the coordinator aborts it then, so an LSO that stays behind
its partition's end, unmoved, for much longer belongs to a transaction the coordinator
no longer tracks. A single broker killed and restarted can leave one (the producer's
records and its group's offsets written, the coordinator's record of the transaction
or its markers lost; docs/performance.md). Its readers wait forever: the orchestrator
that wrote it cannot read its own committed offsets (UNSTABLE_OFFSET_COMMIT), workers
and clients stop at it.

Nothing replayflow runs can end it safely: librdkafka writes markers only for its own
producer id, and whether the open records were committed (the coordinator may have
recorded a commit whose markers are missing) or not is the coordinator's to say, not a
guess to make. Kafka's own tool can (Admin abortTransaction), so `HangingWatch` finds
such partitions and logs, once per transaction, the partition, its offsets and the
command an operator runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from confluent_kafka import IsolationLevel, KafkaException, TopicPartition

# Exported at run time, but missing from the package's type information (2.16).
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.config import TRANSACTION_TIMEOUT_MS

# A logger of its own: replayflow.kafka's filter lets one line of a kind through per
# interval, and this line must not be held back.
log = logging.getLogger("replayflow.kafka.open_transactions")

#: An LSO unmoved this long, with records after it, is a transaction nobody ends: twice
#: the longest a replayflow transaction may stay open.
HANGING_AFTER = 2 * TRANSACTION_TIMEOUT_MS / 1000
CHECK_EVERY = 30.0
QUERY_TIMEOUT = 10.0
#: Kafka's internal topic of committed offsets (and of the offsets a transaction sends).
OFFSETS_TOPIC = "__consumer_offsets"

Key = tuple[str, int]


@dataclass(frozen=True)
class Hanging:
    """A partition whose readers stop at `stable`, the first offset of a transaction
    open for `open_s` seconds, while its records go on to `end`."""

    topic: str
    partition: int
    stable: int
    end: int
    open_s: float

    def command(self, bootstrap: str) -> str:
        """Kafka's command that ends the transaction (with an abort marker)."""
        return (
            f"kafka-transactions.sh --bootstrap-server {bootstrap} abort --topic {self.topic} "
            f"--partition {self.partition} --start-offset {self.stable}"
        )


def report(hanging: Iterable[Hanging], bootstrap: str) -> str:
    """One message for the transactions found: what they are and how to end each."""
    each = "; ".join(
        f"{h.topic} partition {h.partition} stops at offset {h.stable} (records up to "
        f"{h.end}, open {h.open_s:.0f} s): `{h.command(bootstrap)}`"
        for h in hanging
    )
    return (
        "transactions that no producer will end (open longer than any replayflow producer "
        "keeps one; seen after a single broker's unclean restart): read_committed readers "
        "of these partitions wait until each is ended. Kafka's tool lists them "
        f"(`kafka-transactions.sh --bootstrap-server {bootstrap} find-hanging --broker-id "
        f"<id>`) and ends them: {each}"
    )


class OpenTransactions:
    """Each partition's LSO between checks; `observe` says which have hung. No I/O: fed
    the offsets and the time."""

    def __init__(self, after: float = HANGING_AFTER) -> None:
        self.after = after
        self._seen: dict[Key, tuple[int, float]] = {}  # key -> (LSO, since)

    def observe(self, offsets: dict[Key, tuple[int, int]], now: float) -> list[Hanging]:
        """`offsets`: {(topic, partition): (last stable offset, end)} as read at `now`.
        A partition missing from them keeps what was seen of it."""
        hanging = []
        for key, (stable, end) in sorted(offsets.items()):
            if stable >= end:
                self._seen.pop(key, None)  # nothing open
                continue
            seen = self._seen.get(key)
            if seen is None or seen[0] != stable:
                self._seen[key] = (stable, now)  # a transaction began or one ended
                continue
            if now - seen[1] >= self.after:
                hanging.append(Hanging(key[0], key[1], stable, end, now - seen[1]))
        return hanging


def java_hash(text: str) -> int:
    """Java's String.hashCode, as a signed 32-bit int."""
    data = text.encode("utf-16-be")  # Java hashes UTF-16 code units
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def offsets_partition(group: str, partitions: int) -> int:
    """The partition of __consumer_offsets that holds `group`'s offsets (Kafka's
    GroupCoordinator.partitionFor: Utils.abs(groupId.hashCode()) % partitions)."""
    h = java_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def stable_and_end(
    admin: Any, partitions: Iterable[Key], timeout: float = QUERY_TIMEOUT
) -> dict[Key, tuple[int, int]]:
    """{(topic, partition): (last stable offset, end)}, two ListOffsets requests; a
    partition the broker answered with an error is left out."""
    asked = [TopicPartition(t, p) for t, p in partitions]
    if not asked:
        return {}
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]  # untyped there too
    found: dict[IsolationLevel, dict[Key, int]] = {}
    for level in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
        futures = admin.list_offsets(
            {tp: latest for tp in asked},
            isolation_level=level,
            request_timeout=timeout,
        )
        offsets: dict[Key, int] = {}
        for tp, future in futures.items():
            try:
                offsets[(tp.topic, tp.partition)] = future.result(timeout=timeout).offset
            except (KafkaException, FutureTimeout):
                continue
        found[level] = offsets
    committed = found[IsolationLevel.READ_COMMITTED]
    ends = found[IsolationLevel.READ_UNCOMMITTED]
    return {key: (committed[key], ends[key]) for key in committed if key in ends}


class HangingWatch:
    """A daemon thread that checks `topics` (every partition) and the offsets partition
    of `groups` every `every` seconds, and logs each transaction that hangs once. It has
    its own admin client: the loop of the process it watches is never held up."""

    def __init__(
        self,
        bootstrap: str,
        topics: Iterable[str],
        groups: Iterable[str] = (),
        *,
        after: float = HANGING_AFTER,
        every: float = CHECK_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.groups = list(groups)
        self.every = every
        self._tracker = OpenTransactions(after)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._told: set[tuple[str, int, int]] = set()
        self.hanging: list[Hanging] = []  # found by the last check

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hanging-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ends the thread after its current check (a daemon: nobody waits for a check
        held up by an unreachable broker)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)

    def check(self, admin: Any) -> list[Hanging]:
        """One check: the transactions found hanging (each logged the first time)."""
        wanted: list[Key] = []
        for topic in self.topics:
            wanted += [(topic, p) for p in topic_partitions(admin, topic, QUERY_TIMEOUT)]
        if self.groups:
            count = len(topic_partitions(admin, OFFSETS_TOPIC, QUERY_TIMEOUT))
            if count:
                held = {offsets_partition(g, count) for g in self.groups}
                wanted += [(OFFSETS_TOPIC, p) for p in sorted(held)]
        hanging = self._tracker.observe(stable_and_end(admin, wanted), self._clock())
        new = [h for h in hanging if (h.topic, h.partition, h.stable) not in self._told]
        if new:
            self._told.update((h.topic, h.partition, h.stable) for h in new)
            log.error("%s", report(new, self.bootstrap))
        self.hanging = hanging
        return hanging

    def _run(self) -> None:
        admin = None  # made at the first check: most processes never live to one
        while not self._stop.wait(self.every):
            try:
                admin = admin or clients.admin(self.bootstrap)
                self.check(admin)
            except (KafkaException, RuntimeError, ValueError) as exc:
                # An unreachable broker is the outage watch's to report.
                log.debug("hanging transaction check: %s", exc)
