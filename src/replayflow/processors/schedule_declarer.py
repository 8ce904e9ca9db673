"""Schedule declarations (the code's `@rf.workflow(schedule=...)`, a deployed document's
schedule) sent to the commands topic by an orchestrator as it starts, or when a document
is deployed. They are upserts and deletes, idempotent by schedule id, so every
orchestrator may send the same ones: the fold keeps one schedule."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from confluent_kafka import Producer

from replayflow import codec
from replayflow.core.entities import route
from replayflow.core.schedule_messages import CreateSchedule, DeleteSchedule
from replayflow.kafka import clients
from replayflow.kafka.producing import Record, deliver
from replayflow.settings import Settings
from replayflow.topics import Topics

log = logging.getLogger("replayflow.orchestrator")


class ScheduleDeclarer:
    """Sends declarations and waits for Kafka to take them; safe from any thread. Its
    producer is made on first use (most orchestrators declare nothing)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = Topics(settings).commands
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def declare(self, commands: Sequence[CreateSchedule | DeleteSchedule]) -> None:
        if not commands:
            return
        records = [Record(self.topic, codec.encode(c), key=route(c).record_key) for c in commands]
        with self._lock:
            if self._producer is None:
                self._producer = clients.producer(self.settings)
            deliver(self._producer, records)
        log.info("declared %d schedule(s)", len(commands))

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None:
            self._producer.flush(timeout)
