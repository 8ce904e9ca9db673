"""Consume, produce and commit the consumed offsets in one Kafka transaction (KIP-447).

    loop = TransactionalLoop(settings, "trigger.orders", member_id="trigger-1",
                             topics=["orders"])
    loop.start()
    while running:
        messages = loop.next_batch(2000)
        loop.commit(lambda produce: [produce(r) for r in out], loop.offsets_of(messages),
                    messages)

One consumer group member (read_committed, no auto commit, static membership under
`member_id`) and one transactional producer whose id is made from the group and the
member id. A restarted process with the same member id fences its predecessor's
producer (its open transaction is aborted at once) and takes its partitions back
without waiting for the session to time out. The consumed offsets go into the
transaction with the consumer's group metadata, so a zombie of an older group
generation cannot commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from replayflow.kafka import clients
from replayflow.kafka.config import group_name
from replayflow.kafka.membership import close_consumer
from replayflow.kafka.producing import Record, produce
from replayflow.kafka.reading import located
from replayflow.settings import Settings

log = logging.getLogger("replayflow.kafka")

Offsets = dict[tuple[str, int], int]
Rebalance = Callable[[Any, list[TopicPartition]], None]


def commit_transaction(producer: Any, attempts: int = 5, timeout: float = 60) -> None:
    """Commit; a retriable error leaves the outcome unknown, so the commit is tried
    again (aborting then could abort a transaction that in fact committed)."""
    for attempt in range(1, attempts + 1):
        try:
            producer.commit_transaction(timeout)
            return
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if attempt == attempts or not isinstance(error, KafkaError) or not error.retriable():
                raise
            log.warning("commit failed (%s), trying again", error)


class TransactionalLoop:
    def __init__(
        self,
        settings: Settings,
        role: str,
        member_id: str,
        topics: list[str],
        *,
        session_timeout_ms: int = 10_000,
        transaction_timeout_ms: int = 30_000,
        on_assign: Rebalance | None = None,
        on_revoke: Rebalance | None = None,
    ) -> None:
        self.settings = settings
        self.group = group_name(settings, role)
        self.member_id = member_id
        self.topics = topics
        self._session_timeout_ms = session_timeout_ms
        self._transaction_timeout_ms = transaction_timeout_ms
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self.consumer: Any = None
        self.producer: Any = None
        self.aborts = 0

    def start(self) -> TransactionalLoop:
        self.producer = clients.transactional_producer(
            self.settings,
            f"{self.group}.{self.member_id}",
            **{"transaction.timeout.ms": self._transaction_timeout_ms},
        )
        self.consumer = clients.consumer(
            self.settings,
            None,
            **{
                "group.id": self.group,
                "group.instance.id": self.member_id,
                "session.timeout.ms": self._session_timeout_ms,
                "max.poll.interval.ms": 120_000,
                # A source topic created after the trigger started is found within
                # seconds, not librdkafka's default five minutes.
                "topic.metadata.refresh.interval.ms": 10_000,
            },
        )
        callbacks: dict[str, Rebalance] = {}
        if self._on_assign is not None:
            callbacks["on_assign"] = self._on_assign
        if self._on_revoke is not None:
            callbacks["on_revoke"] = callbacks["on_lost"] = self._on_revoke
        self.consumer.subscribe(self.topics, **callbacks)
        return self

    def next_batch(self, size: int, wait: float = 0.05) -> list[Message]:
        """Block up to `wait` s for the first record, then take what is already fetched:
        a lone record goes at once, a burst in large batches. Consumer errors are
        raised when fatal and logged otherwise; only good messages are returned."""
        first = self.consumer.poll(wait)
        if first is None:
            return []
        messages = [first, *self.consumer.consume(size - 1, timeout=0)]
        good = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            elif error.fatal():
                raise KafkaException(error)
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer %s: %s", self.group, error)
        return good

    @staticmethod
    def offsets_of(messages: Iterable[Message]) -> Offsets:
        """The next offset to read in each (topic, partition) the messages came from."""
        offsets: Offsets = {}
        for message in messages:
            topic, partition, offset = located(message)
            offsets[(topic, partition)] = offset + 1
        return offsets

    def commit(
        self,
        write: Callable[[Callable[[Record], None]], None],
        offsets: Offsets,
        messages: list[Message],
    ) -> bool:
        """In one transaction: `write(produce)` produces the batch's records, then the
        consumed `offsets` are sent with the group metadata and the transaction commits.
        True when it committed. A failed transaction is aborted and the consumer is
        rewound to the first message of the batch in each partition (False): the batch
        is read and written again. A fatal error (this producer was fenced) is raised."""
        if not offsets:
            return True
        producer = self.producer
        try:
            producer.begin_transaction()
            write(lambda record: produce(producer, record))
            producer.send_offsets_to_transaction(
                [TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                self.consumer.consumer_group_metadata(),
                30,
            )
            commit_transaction(producer)
            return True
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.fatal():
                log.error("fatal producer error in %s, stopping: %s", self.group, error)
                raise
            log.warning("transaction failed in %s, aborting and reading again: %s", self.group, exc)
            self.aborts += 1
            producer.abort_transaction(30)
            self._rewind(messages)
            return False

    def _rewind(self, messages: list[Message]) -> None:
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            topic, partition, offset = located(message)
            first.setdefault((topic, partition), offset)
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        for (topic, partition), offset in first.items():
            if (topic, partition) in assigned:
                self.consumer.seek(TopicPartition(topic, partition, offset))

    def close(self) -> None:
        if self.consumer is not None:
            close_consumer(self.consumer)
        if self.producer is not None:
            self.producer.flush(10)
