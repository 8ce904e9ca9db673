"""Where the DSL's `emit` sends events in a running engine: a CloudEvent (JSON
structured mode) on a Kafka topic of this namespace, keyed by the instance id."""

from __future__ import annotations

import json
import threading
from typing import Any

from replayflow.kafka import clients
from replayflow.kafka.producing import Record, deliver
from replayflow.settings import Settings


class KafkaEmitter:
    """An event sink: `emitter(topic, key, event)` returns once Kafka acknowledged the
    event and raises DeliveryError when it did not (the step then fails and retries)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: Any = None
        self._lock = threading.Lock()

    def __call__(self, topic: str, key: str, event: dict[str, Any]) -> None:
        with self._lock:
            if self._producer is None:  # made on the first emit: most workers never emit
                self._producer = clients.producer(self.settings)
            producer = self._producer
        record = Record(
            self.settings.topic_name(topic),
            json.dumps(event, separators=(",", ":")).encode(),
            key=key.encode(),
            headers={"content-type": "application/cloudevents+json"},
        )
        deliver(producer, [record])
