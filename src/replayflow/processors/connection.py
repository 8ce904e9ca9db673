"""The orchestrator's two Kafka clients, kept working.

One transactional producer and one static member of the orchestrator group, built
together and, when either is lost, replaced together: a call that hung past its
deadline (kafka/watchdog.py), a fatal error, an abort that failed, or a consumer that
stopped moving (kafka/liveness.py). Replacing is what a process restart would do,
without the restart:

1. the open transaction is aborted if the producer still answers (the new producer's
   init_transactions would abort it anyway, and fences the old producer for good);
2. the consumer is closed under a deadline (a static member leaves no gap in the
   group: the new consumer takes its place and assignment at once), or left behind;
3. a new producer with the same transactional.id is initialised, retried until the
   broker answers, and a new consumer subscribes; its assignment restores each
   partition from the changelog as on a fresh start.

The owner drops its in-flight batch and partition state before calling `replace`.
Callbacks of a replaced consumer (its revoke on close) do nothing. When replacing
does not help (REPLACE_LIMIT times within REPLACE_WINDOW seconds), `Unrecoverable`
ends the process with a clear message, and its supervisor starts it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from replayflow.core.clip import clip
from replayflow.core.errors import ReplayflowError
from replayflow.kafka import clients
from replayflow.kafka.config import group_name
from replayflow.kafka.liveness import ConsumerLiveness
from replayflow.kafka.membership import close_consumer
from replayflow.kafka.transactional import TransactionalProducer, is_retriable
from replayflow.kafka.watchdog import Hung
from replayflow.settings import Settings

log = logging.getLogger("replayflow.orchestrator")

Rebalance = Callable[[Consumer, list[TopicPartition]], None]
ErrorCallback = Callable[[KafkaError], None]

REPLACE_LIMIT = 5
REPLACE_WINDOW = 300.0
#: Consecutive fatal errors of init_transactions (not timeouts) that end the process.
INIT_FATAL_LIMIT = 5
CONSUMER_SETTINGS = {"session.timeout.ms": 10_000, "max.poll.interval.ms": 120_000}


class Unrecoverable(ReplayflowError):
    """The orchestrator cannot keep working Kafka clients. The process exits non-zero
    so that its supervisor starts it again."""


class Connection:
    def __init__(
        self,
        settings: Settings,
        instance_id: str,
        topic: str,
        *,
        on_assign: Rebalance,
        on_revoke: Rebalance,
        stop: threading.Event,
        on_error: ErrorCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.instance_id = instance_id
        self.topic = topic
        self.transactional_id = group_name(settings, instance_id)
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._stop = stop
        self._on_error = on_error
        self._clock = clock
        self.producer: TransactionalProducer | None = None
        self.consumer: Consumer | None = None
        self.liveness: ConsumerLiveness | None = None
        self.generation = 0
        self.replaced: list[float] = []  # when, for the budget

    # -- building ----------------------------------------------------------------------

    def open(self) -> bool:
        """Build both clients; False when stop() came first."""
        generation = self.generation + 1
        producer = self._ready_producer(self._errors_of(generation))
        if producer is None:
            return False
        consumer = clients.consumer(
            self.settings,
            "orchestrator",
            **{"group.instance.id": self.instance_id, **CONSUMER_SETTINGS},
            error_cb=self._errors_of(generation),
        )
        consumer.subscribe(
            [self.topic],
            on_assign=self._current(generation, self._on_assign),
            on_revoke=self._current(generation, self._on_revoke),
            on_lost=self._current(generation, self._on_revoke),
        )
        self.producer, self.consumer, self.generation = producer, consumer, generation
        self.liveness = ConsumerLiveness(consumer, self.topic)
        return True

    def _current(self, generation: int, callback: Rebalance) -> Rebalance:
        def call(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            if generation == self.generation:
                callback(consumer, partitions)

        return call

    def _errors_of(self, generation: int) -> ErrorCallback:
        """The error callback of one generation's clients: a replaced client's errors
        (the old producer fenced by its successor) are not the owner's concern."""

        def call(error: KafkaError) -> None:
            if self._on_error is not None and generation in (self.generation, self.generation + 1):
                self._on_error(error)

        return call

    def _ready_producer(self, on_error: ErrorCallback) -> TransactionalProducer | None:
        """A producer whose init_transactions succeeded. While the broker does not
        answer, init is tried again (a hung producer is left behind and a new one
        built) until it does, or until stop()."""
        fatal = 0
        waited = self._clock()
        while not self._stop.is_set():
            producer = clients.guarded_transactional_producer(
                self.settings, self.transactional_id, error_cb=on_error
            )
            while not self._stop.is_set():
                try:
                    producer.init()
                    if self._clock() - waited > 5:
                        log.info(
                            "transactional producer ready after %.1f s", self._clock() - waited
                        )
                    return producer
                except KafkaException as exc:
                    if is_retriable(exc):
                        log.info("init_transactions: %s; trying again", clip(str(exc)))
                        self._stop.wait(0.2)
                        continue
                    fatal += 1
                    if fatal >= INIT_FATAL_LIMIT:
                        producer.close()
                        raise Unrecoverable(
                            f"init_transactions of {self.transactional_id} failed "
                            f"{fatal} times: {clip(str(exc))}"
                        ) from exc
                    log.warning("init_transactions failed: %s; building a new producer", exc)
                    break
                except Hung as exc:
                    log.warning("%s; building a new producer", exc)
                    break
            producer.close()
            self._stop.wait(1.0)
        return None

    # -- replacing ---------------------------------------------------------------------

    def replace(self, reason: str) -> bool:
        """Replace both clients (see the module docstring); False when stop() came
        first. Raises Unrecoverable when replacing has stopped helping."""
        now = self._clock()
        self.replaced = [t for t in self.replaced if now - t < REPLACE_WINDOW] + [now]
        if len(self.replaced) > REPLACE_LIMIT:
            raise Unrecoverable(
                f"the Kafka clients were replaced {REPLACE_LIMIT} times within "
                f"{REPLACE_WINDOW:g} s and fail again: {clip(reason)}"
            )
        log.warning("replacing the Kafka clients: %s", clip(reason))
        self.close(abort=True)
        return self.open()

    def close(self, *, abort: bool = False) -> None:
        producer, consumer = self.producer, self.consumer
        self.producer = self.consumer = self.liveness = None
        self.generation += 1  # the old consumer's callbacks do nothing from now on
        if producer is not None:
            if abort and producer.dead is None:
                producer.patience = 0.0  # one attempt: init on the new one aborts anyway
                try:
                    producer.abort()
                except Exception as exc:  # best effort, see above
                    log.info("abort before replacing: %s", clip(str(exc)))
            producer.close()
        if consumer is not None:
            close_consumer(consumer)
