"""A transactional producer whose blocking calls all run under a deadline.

Each call hands librdkafka a short timeout (CALL_TIMEOUT) and gets a watchdog deadline a
little longer than that (watchdog.GRACE): a call that keeps its timeout fails with
librdkafka's own error, one that does not raises watchdog.Hung and leaves the producer
dead. Either way the owner's loop gets control back within seconds, also while the
broker is down, and can tell the cases apart:

    error.retriable()             the outcome is unknown: the same call is tried again for
                                  PATIENCE seconds, then the producer is given up (dead)
    error.txn_requires_abort()    abort, then re-read the batch
    error.fatal() / Hung          this producer is done: build a new one (same
                                  transactional.id: it fences this one)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from replayflow.core.clip import clip
from replayflow.kafka.watchdog import GRACE, Guard, Hung, Pending

log = logging.getLogger("replayflow.kafka")

#: The timeout each transactional call passes to librdkafka, in seconds.
CALL_TIMEOUT = 5.0
#: How long a call that fails retriably (its outcome unknown, or the broker away) is
#: tried again, in seconds: about the group session timeout. A broker back within that
#: finds the same clients going on; one away longer finds the producer given up (dead),
#: and its owner builds new clients: the new producer's init_transactions completes or
#: aborts the open transaction and the owner restores from what was committed. Clients
#: that kept retrying through a longer outage came back slowly (a consumer fenced, a
#: stale coordinator), fresh ones at once.
PATIENCE = 10.0


def kafka_error(exc: BaseException) -> KafkaError | None:
    """The KafkaError a KafkaException carries, if any."""
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return error if isinstance(error, KafkaError) else None


def fatal_error(error: KafkaError | None) -> bool:
    """Whether a client's error leaves the client unusable. librdkafka hands a fatal
    error to messages and delivery reports with the code _FATAL but without the fatal
    flag (a static consumer fenced by its own successor after a broker restart, say),
    so both are checked."""
    return error is not None and (error.fatal() or error.code() == KafkaError._FATAL)


def is_fatal(exc: BaseException) -> bool:
    return fatal_error(kafka_error(exc))


def is_retriable(exc: BaseException) -> bool:
    error = kafka_error(exc)
    return error is not None and error.retriable() and not fatal_error(error)


class TransactionalProducer:
    """One confluent_kafka Producer with a transactional.id, its calls under deadlines.
    `produce` goes straight to the producer: it blocks only while its queue is full."""

    def __init__(
        self,
        producer: Producer,
        name: str,
        *,
        call_timeout: float = CALL_TIMEOUT,
        grace: float = GRACE,
        patience: float = PATIENCE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.producer = producer
        self.name = name
        self.guard = Guard(name)
        self.call_timeout = call_timeout
        self.grace = grace
        self.patience = patience
        self._clock = clock

    @property
    def dead(self) -> str | None:
        """Why this producer must be replaced (a call hung), or None."""
        return self.guard.dead

    def _call(self, what: str, function: Callable[..., Any], *args: Any) -> Any:
        return self.guard.run(what, self.call_timeout + self.grace, function, *args)

    def init(self) -> None:
        """init_transactions: fences an older producer with this transactional.id and
        completes its open transaction. Retriable errors (the broker not there yet)
        raise: the caller decides how long to keep trying."""
        self._call("init_transactions", self.producer.init_transactions, self.call_timeout)

    def begin(self) -> None:
        self._call("begin_transaction", self.producer.begin_transaction)

    def send_offsets(self, offsets: list[TopicPartition], group_metadata: Any) -> None:
        self._until_known(
            "send_offsets_to_transaction",
            self.producer.send_offsets_to_transaction,
            offsets,
            group_metadata,
            self.call_timeout,
        )

    def begin_with_offsets(self, offsets: list[TopicPartition], group_metadata: Any) -> Pending:
        """begin_transaction, then send_offsets_to_transaction on the helper thread:
        returns once the latter runs there, for the caller to work meanwhile (the
        orchestrator folds its batch while the coordinator answers). `Pending.wait()`
        gives its outcome as `send_offsets` would."""

        # Begun first, in its own call: inside one call the helper thread would come
        # back from begin_transaction to a GIL the folding caller holds, and wait for it.
        self.begin()
        return self._started(
            "send_offsets_to_transaction",
            self.producer.send_offsets_to_transaction,
            offsets,
            group_metadata,
            self.call_timeout,
        )

    def _started(self, what: str, function: Callable[..., Any], *args: Any) -> Pending:
        """`_until_known` on the helper thread, while the caller goes on: the deadline
        covers every attempt (patience) and the last one's own."""
        deadline = self.patience + self.call_timeout + self.grace
        return self.guard.start(what, deadline, self._retrying, what, function, *args)

    def _retrying(self, what: str, function: Callable[..., Any], *args: Any) -> None:
        """`_until_known` for a call already on the helper thread."""
        self._retry_loop(what, lambda: function(*args))

    def produce(self, topic: str, key: bytes | None, value: bytes | None, **extra: Any) -> None:
        """Queue a record in the transaction; while the queue is full, let deliveries
        drain, and raise Hung when nothing drains for a call's deadline (the broker is
        away)."""
        try:
            self.producer.produce(topic, value=value, key=key, **extra)
        except BufferError:
            # The deadline is reckoned only here: the orchestrator queues some six
            # records a command, at about a microsecond each, and the queue is rarely full.
            self._produce_when_drained(topic, key, value, extra)

    def _produce_when_drained(
        self, topic: str, key: bytes | None, value: bytes | None, extra: dict[str, Any]
    ) -> None:
        give_up = self._clock() + self.call_timeout + self.grace
        while True:
            self.producer.poll(0.05)
            try:
                self.producer.produce(topic, value=value, key=key, **extra)
                return
            except BufferError:
                if self._clock() > give_up:
                    raise Hung("produce: the producer's queue stayed full") from None

    def commit(self) -> None:
        """Commit. A retriable error leaves the outcome unknown, so the commit is tried
        again (aborting then could abort a transaction that in fact committed)."""
        self._until_known("commit_transaction", self.producer.commit_transaction, self.call_timeout)

    def commit_started(self) -> Pending:
        """Commit on the helper thread, tried again as `commit` is, while the caller
        goes on; `Pending.wait()` gives its outcome as `commit` would."""
        return self._started(
            "commit_transaction", self.producer.commit_transaction, self.call_timeout
        )

    def abort(self) -> None:
        self._until_known("abort_transaction", self.producer.abort_transaction, self.call_timeout)

    def _until_known(self, what: str, function: Callable[..., Any], *args: Any) -> None:
        self._retry_loop(what, lambda: self._call(what, function, *args))

    def _retry_loop(self, what: str, attempt: Callable[[], Any]) -> None:
        """Run `attempt` until it succeeds, raises what trying again cannot cure, or
        retriable errors have lasted `patience`."""
        give_up = self._clock() + self.patience
        while True:
            try:
                attempt()
                return
            except KafkaException as exc:
                if not is_retriable(exc):
                    raise
                if self._clock() > give_up:
                    # Retrying longer would not tell more: the owner replaces this
                    # producer without a last abort or flush (the broker is away).
                    self.guard.dead = f"{what} kept failing for {self.patience:g} s"
                    raise
                log.warning("%s of %s failed (%s), trying again", what, self.name, clip(str(exc)))

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued (a live producer only) and end the helper thread. A dead
        producer is left to itself: its stuck call may still hold it."""
        if self.dead is None:
            try:
                self._call("flush", self.producer.flush, timeout)
            except Exception as exc:  # closing is best effort: the producer is dropped
                log.info("closing %s: %s", self.name, clip(str(exc)))
        self.guard.close()
