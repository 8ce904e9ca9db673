"""The Kafka side of deployed workflow documents: the compacted topic
replayflow.workflows, read to its end at start and then followed in a daemon thread.

    store = DocumentStore(KafkaDocumentLog(settings)).start()

The DSL's DocumentStore knows documents; this log only moves their records (key
'<name>:<version>', an encoded WorkflowDocument, or a tombstone) in and out of Kafka.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.config import METADATA_TIMEOUT
from replayflow.kafka.membership import close_consumer
from replayflow.kafka.producing import Record, deliver
from replayflow.kafka.reading import read_to_end
from replayflow.settings import Settings
from replayflow.topics import Topics

log = logging.getLogger("replayflow.documents")

Apply = Callable[[str, bytes | None], None]


class KafkaDocumentLog:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = Topics(settings).workflows
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, apply: Apply, timeout: float = METADATA_TIMEOUT) -> None:
        """Hand every record so far to `apply`, return once caught up with the topic's
        end, and hand on new records from a daemon thread until close()."""
        consumer = clients.consumer(self.settings, None)
        try:
            partitions = topic_partitions(consumer, self.topic, timeout)
            for messages in read_to_end(consumer, self.topic, partitions, timeout=timeout):
                for message in messages:
                    _hand(apply, message)
        except BaseException:
            close_consumer(consumer)
            raise
        self._thread = threading.Thread(
            target=self._follow, args=(consumer, apply), name="replayflow-documents", daemon=True
        )
        self._thread.start()

    def _follow(self, consumer: Any, apply: Apply) -> None:
        try:
            while not self._stop.is_set():
                try:
                    for message in consumer.consume(100, timeout=0.2):
                        if message.error() is None:
                            _hand(apply, message)
                except Exception:  # keep following; a broken record is logged by `apply`
                    log.exception("document follower")
                    time.sleep(1)
        finally:
            close_consumer(consumer)

    def append(self, key: str, value: bytes) -> None:
        """Write one record and wait for Kafka's acknowledgement (DeliveryError if not)."""
        producer = clients.producer(self.settings)
        deliver(producer, [Record(self.topic, value, key=key.encode())])

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def _hand(apply: Apply, message: Any) -> None:
    apply((message.key() or b"").decode(errors="replace"), message.value())
